"""Engines and sessions. SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE` for writers (so two
writers never deadlock on a lock upgrade); PostgreSQL uses row locks (`FOR UPDATE`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool


class Database:
    """Owns the engines. `write()` opens a transaction for changes, `read()` one for queries."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10, busy_timeout_ms: int = 15000) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        if self.is_sqlite:
            self.write_engine = _sqlite_engine(url, immediate=True, echo=echo, busy_ms=busy_timeout_ms)
            self.read_engine = _sqlite_engine(url, immediate=False, echo=echo, busy_ms=busy_timeout_ms)
        else:
            self.write_engine = create_async_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.read_engine = self.write_engine
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on success and rolled back on error."""
        async with self._writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def startup_lock(self) -> AsyncIterator[None]:
        """Serialise start-up work (migrations, seeding) of several processes on PostgreSQL."""
        if self.is_sqlite:
            yield
            return
        async with self.write_engine.connect() as conn:
            await conn.exec_driver_sql("SELECT pg_advisory_lock(7270001)")
            await conn.commit()
            try:
                yield
            finally:
                await conn.exec_driver_sql("SELECT pg_advisory_unlock(7270001)")
                await conn.commit()

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def _sqlite_engine(url: str, *, immediate: bool, echo: bool, busy_ms: int) -> AsyncEngine:
    memory = ":memory:" in url or url.rstrip("/").endswith("sqlite+aiosqlite:")
    kwargs: dict[str, Any] = {"echo": echo, "connect_args": {"timeout": busy_ms / 1000}}
    if not memory:
        kwargs["pool_size"] = 1 if immediate else 8
        kwargs["max_overflow"] = 0 if immediate else 8
    else:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
