"""Alembic environment: runs on the connection handed over by `otklik.adapters.db.migrate`.

`Base.metadata` holds the capabilities' tables once their `models` modules are imported: the callers do it
(`Otklik.build`, `otklik db upgrade`, the migration tests: `platform.plugins.import_models`); the adapters
layer imports no capability."""

from __future__ import annotations

from alembic import context

from otklik.adapters.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline SQL generation is not used
    raise RuntimeError("run migrations through `otklik db upgrade`")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
