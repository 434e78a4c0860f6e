"""Every capability with a migration branch of its own (and the tests' example one): up, down (only its
tables go), up again; its models (the `metadata` of its `models` module) match what the branch built."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import downgrade, upgrade
from otklik.platform.plugins import Capability, folder
from otklik.registry import CAPABILITIES
from tests.capabilities.example import CAPABILITY as EXAMPLE

BRANCHED = [c for c in (*CAPABILITIES, EXAMPLE) if c.migrations]


def _metadata(capability: Capability) -> MetaData:
    assert capability.migrations is not None
    package = capability.migrations.partition(":")[0]
    metadata = importlib.import_module(f"{package}.models").metadata
    assert isinstance(metadata, MetaData) and metadata.tables, f"{capability.name}: models.metadata has no tables"
    return metadata


def test_the_capabilities_with_branches_are_the_expected_ones() -> None:
    assert {c.name for c in BRANCHED} >= {"financing", "sales", "example"}


@pytest.mark.parametrize("capability", BRANCHED, ids=[c.name for c in BRANCHED])
async def test_branch_up_down_up(db_url: str, capability: Capability) -> None:
    assert capability.migrations is not None
    db = Database(db_url)
    metadata = _metadata(capability)
    mine = {t.name for t in metadata.tables.values()}
    locations = [folder(capability.migrations)]

    async def tables() -> set[str]:
        async with db.read_engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))

    async def diff() -> list[object]:
        async with db.read_engine.connect() as conn:
            found = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        return [d for d in found if mine & _tables_of(d)]  # the shared tables are another test's business

    try:
        await upgrade(db, locations=locations)
        assert mine <= await tables()
        assert await diff() == []
        await downgrade(db, f"{capability.name}@base", locations=locations)
        left = await tables()
        assert not (mine & left) and "users" in left
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
