"""Shared fixtures: real SQLite always, real PostgreSQL when OTKLIK_TEST_PG_URL is set."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.bootstrap import Otklik
from otklik.config import Settings
from otklik.platform import users
from otklik.platform.plugins import folder
from otklik.registry import CAPABILITIES

pytest_plugins = ["tests.fixtures.admin", "tests.fixtures.cli"]


def _worker_url(url: str | None) -> str | None:
    """Under pytest-xdist each worker gets its own PostgreSQL database (`<name>_gw0`, `<name>_gw1`, …): the
    storage tests drop and recreate the schema, so two workers must never share one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    return str(make_url(url).set(database=f"{make_url(url).database}_{worker}"))


PG_URL = _worker_url(os.environ.get("OTKLIK_TEST_PG_URL"))
TEST_PACKS = Path(__file__).parent / "packs"
#: Real argon2id, with the cost turned down for the tests (the product's hasher takes ~0.15 s a hash on CI's
#: machine, and the admin fixtures hash one password per role per test). `tests/admin/test_login_throttling.py`
#: and the test of the product's parameters use the product's hasher.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


async def _create_database(url: str) -> None:
    import asyncpg

    target = make_url(url)
    server = target.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", target.database):
            await conn.execute(f'CREATE DATABASE "{target.database}"')
    finally:
        await conn.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    if PG_URL and os.environ.get("OTKLIK_TEST_PG_URL") != PG_URL:  # a worker of pytest-xdist
        asyncio.run(_create_database(PG_URL))


@pytest.fixture(autouse=True)
def fast_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "_hasher", FAST_HASHER)


#: Migrated empty databases, made once per test process: each storage test starts from a copy instead of
#: running every migration again (a file copy for SQLite, `CREATE DATABASE … TEMPLATE` for PostgreSQL). The
#: app's start then finds the database at its heads and skips Alembic (`migrate.upgrade`). The migrations
#: themselves stay tested: the templates are made by them, and tests/adapters/db upgrade from empty.
_TEMPLATES: dict[str, str] = {}


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db, locations=[folder(c.migrations) for c in CAPABILITIES if c.migrations])
    finally:
        await db.dispose()


async def fresh_sqlite(path: Path) -> str:
    """A migrated SQLite database at `path` (a copy of this process's template)."""
    template = _TEMPLATES.get("sqlite")
    if template is None:
        template = str(Path(tempfile.mkdtemp(prefix="otklik-template-")) / "template.db")
        await _migrate(f"sqlite+aiosqlite:///{template}")
        _TEMPLATES["sqlite"] = template
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _admin_sql(url: str, *statements: str) -> None:
    import asyncpg

    server = make_url(url).set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(server.render_as_string(hide_password=False))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def fresh_pg(url: str) -> str:
    """Recreate the database of `url` as a copy of this process's migrated template."""
    name = make_url(url).database
    template = _TEMPLATES.get("pg")
    if template is None:
        template = f"{name}_template"
        await _admin_sql(url, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)', f'CREATE DATABASE "{template}"')
        await _migrate(str(make_url(url).set(database=template)))
        _TEMPLATES["pg"] = template
    await _admin_sql(
        url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}" TEMPLATE "{template}"'
    )
    return url


async def reset_pg(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        await conn.exec_driver_sql("CREATE SCHEMA public")
    await engine.dispose()


def make_settings(tmp_path: Path, url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "demo": False,
        "data_dir": tmp_path / "data",
        "database_url": url,
        "nlu": "keywords",
        "packs_dirs": (TEST_PACKS,),
        "dispatch_poll_seconds": 0.05,
        "timer_poll_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on SQLite and, when configured, on PostgreSQL — on a migrated, empty database."""
    if request.param == "sqlite":
        return await fresh_sqlite(tmp_path / "test.db")
    if not PG_URL:
        pytest.skip("OTKLIK_TEST_PG_URL is not set")
    return await fresh_pg(PG_URL)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def otklik(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    app = Otklik.build(make_settings(tmp_path, db_url))
    await app.start()
    try:
        yield app
    finally:
        await app.close()
