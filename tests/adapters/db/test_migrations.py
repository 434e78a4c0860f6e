"""Alembic stairway and models-match-migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import downgrade, schema_diff, upgrade
from otklik.platform.plugins import import_models
from otklik.registry import CAPABILITIES


async def test_stairway_up_down_up_and_models_match(db_url: str) -> None:
    import_models(CAPABILITIES)  # the capabilities' tables on the shared metadata, as `Otklik.build` does
    db = Database(db_url)
    try:
        await upgrade(db)
        assert await schema_diff(db) == []
        await downgrade(db, "base")
        await upgrade(db)
        assert await schema_diff(db) == []
    finally:
        await db.dispose()
