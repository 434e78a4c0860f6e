"""Programmatic Alembic: upgrade, downgrade and the schema check used by tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import Base

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None, locations: Sequence[Path] = ()) -> Config:
    """`locations`: more version folders — a capability's own migrations, on a branch labelled with its name."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if locations:
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", os.pathsep.join(map(str, [MIGRATIONS / "versions", *locations])))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=16)
def _script_heads(locations: tuple[str, ...]) -> frozenset[str]:
    """The head revisions of the migration scripts (parsed once per process: the files don't change under a
    running process; a new release is a new process)."""
    return frozenset(ScriptDirectory.from_config(alembic_config(None, [Path(p) for p in locations])).get_heads())


def _current_heads(sync: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(sync).get_current_heads())


async def at_heads(db: Database, locations: Sequence[Path] = ()) -> bool:
    """True when the database is at every head of these scripts: nothing to upgrade. Heads of branches these
    scripts don't hold (a capability that is not plugged in here) don't matter."""
    heads = _script_heads(tuple(map(str, locations)))
    async with db.write_engine.connect() as conn:
        return heads <= await conn.run_sync(_current_heads)


async def upgrade(db: Database, revision: str = "heads", locations: Sequence[Path] = ()) -> None:
    """Upgrade to `revision`. At "heads", a database already there costs one read of `alembic_version` (every
    start of a process, every test's app) instead of loading Alembic's environment and every script."""
    if revision == "heads" and await at_heads(db, locations):
        return
    async with db.write_engine.connect() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync, locations), revision))
        await conn.commit()


async def downgrade(db: Database, revision: str, locations: Sequence[Path] = ()) -> None:
    async with db.write_engine.connect() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync, locations), revision))
        await conn.commit()


async def schema_diff(db: Database) -> list[Any]:
    """Differences between the models and the migrated database (empty when they match).

    The capabilities' tables are in `Base.metadata` once their models are imported (`import_models`)."""
    async with db.read_engine.connect() as conn:
        return await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
