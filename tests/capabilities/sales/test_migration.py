"""The capability's own migration branch: up, down (only its tables go), up again; models match."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import downgrade, upgrade
from otklik.capabilities.sales import CAPABILITY
from otklik.capabilities.sales.models import metadata
from otklik.platform.plugins import folder


async def test_branch_up_down_up(db_url: str) -> None:
    db = Database(db_url)
    assert CAPABILITY.migrations is not None
    locations = [folder(CAPABILITY.migrations)]

    async def tables() -> set[str]:
        async with db.read_engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))

    async def diff() -> list[object]:
        async with db.read_engine.connect() as conn:
            found = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        mine = {t.name for t in metadata.tables.values()}
        return [d for d in found if mine & _tables_of(d)]  # the shared tables are another test's business

    try:
        await upgrade(db, locations=locations)
        assert {"sales_products"} <= await tables()
        assert await diff() == []
        await downgrade(db, "sales@base", locations=locations)
        left = await tables()
        assert "sales_products" not in left and "users" in left
        await upgrade(db, locations=locations)
        assert await diff() == []
    finally:
        await db.dispose()


def _tables_of(item: object) -> set[str]:
    """The table names an autogenerate diff item mentions (items are tuples or lists of tuples)."""
    if isinstance(item, list):
        return set().union(*(_tables_of(i) for i in item)) if item else set()
    names: set[str] = set()
    for part in item if isinstance(item, tuple) else ():
        table = getattr(part, "table", None)
        name = getattr(table, "name", None) or getattr(part, "name", None)
        if isinstance(name, str):
            names.add(name)
        if isinstance(part, str):
            names.add(part)
    return names
