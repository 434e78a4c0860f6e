"""One SQL path per operation: the plain-SQL hot path needs a database file, so in-memory SQLite is refused
up front with a clear message instead of failing (or silently taking another path) later."""

from __future__ import annotations

from pathlib import Path

import pytest

from otklik.adapters.db.engine import Database, raw_read, raw_write
from otklik.bootstrap import Otklik
from tests.conftest import make_settings

MEMORY_URLS = [
    "sqlite+aiosqlite:///:memory:",
    "sqlite+aiosqlite://",
    "sqlite:///:memory:",
    "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true",
    "sqlite+aiosqlite:///file:shared?mode=memory&uri=true",
]


@pytest.mark.parametrize("url", MEMORY_URLS)
def test_in_memory_sqlite_is_refused_with_a_clear_message(url: str) -> None:
    with pytest.raises(ValueError, match=r"use a file database; :memory: is not supported"):
        Database(url)


def test_the_app_does_not_start_on_in_memory_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r":memory: is not supported"):
        Otklik.build(make_settings(tmp_path, "sqlite+aiosqlite:///:memory:"))


async def test_a_file_database_has_the_plain_sql_path(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'file.db'}")
    try:
        async with raw_write(db) as tx:
            await tx.execute("CREATE TABLE t (x INTEGER)")
            await tx.execute("INSERT INTO t VALUES (?)", [7])
        async with raw_read(db) as tx:
            assert [tuple(r) for r in await tx.fetch("SELECT x FROM t")] == [(7,)]
    finally:
        await db.dispose()
