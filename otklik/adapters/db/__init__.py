"""Storage: SQLAlchemy 2 (async) tables, engine set-up and Alembic migrations."""
