"""Engines and sessions. SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE` for writers (so two
writers never deadlock on a lock upgrade); PostgreSQL uses row locks (`FOR UPDATE`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
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


# --- the hot path: raw driver statements in one transaction ---------------------------------------------
#
# SQLAlchemy costs ~0.1-0.5 ms of CPU per statement (execution context, ORM bulk code, greenlet and
# adapter layers); the drivers cost 0.02-0.03 ms. The ingest hot path therefore runs a handful of plain
# SQL statements on the pooled connection's driver (aiosqlite / asyncpg), inside a transaction that has
# exactly the semantics of `Database.write()`: `BEGIN IMMEDIATE` on SQLite, a row lock taken by the
# caller's `FOR UPDATE` on PostgreSQL, all or nothing. Values are written in the same formats SQLAlchemy
# uses (naive UTC "YYYY-MM-DD HH:MM:SS.ffffff" on SQLite, timestamptz on PostgreSQL, JSON as text), and
# driver errors are re-raised as SQLAlchemy's exception types so callers and the web app's 503 handler
# see the same errors as before.


def _sqlite_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use otklik.clock.utcnow()")
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"


def _pg_datetime(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given to the database; use otklik.clock.utcnow()")
    return value


def _to_pg(sql: str) -> str:
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


class RawTx:
    """One write transaction on a driver connection. SQL uses `?` placeholders (rewritten for asyncpg)."""

    __slots__ = ("_conn", "dt", "is_sqlite")

    def __init__(self, conn: Any, is_sqlite: bool) -> None:
        self._conn = conn
        self.is_sqlite = is_sqlite
        self.dt: Callable[[datetime | None], Any] = _sqlite_datetime if is_sqlite else _pg_datetime

    @staticmethod
    def js(value: Any) -> str:
        return json.dumps(value)  # SQLAlchemy's JSON type serialises with json.dumps and default options

    def loads(self, value: Any) -> Any:
        """A JSON column as read (asyncpg decodes it with SQLAlchemy's codec; SQLite returns text)."""
        if isinstance(value, str | bytes):
            return json.loads(value)
        return value

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            if self.is_sqlite:
                async with self._conn.execute(sql, args) as cursor:
                    return list(await cursor.fetchall())
            return list(await self._conn.fetch(_pg_sql(sql), *args))
        except Exception as exc:
            raise _translate(exc, sql) from exc

    async def fetchrow(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = await self.fetch(sql, args)
        return rows[0] if rows else None

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        try:
            if self.is_sqlite:
                await (await self._conn.execute(sql, args)).close()
            else:
                await self._conn.execute(_pg_sql(sql), *args)
        except Exception as exc:
            raise _translate(exc, sql) from exc


_PG_SQL: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    out = _PG_SQL.get(sql)
    if out is None:
        out = _PG_SQL[sql] = _to_pg(sql)
    return out


def _translate(exc: Exception, sql: str) -> Exception:
    """Driver errors as SQLAlchemy's exception types (what the callers and the 503 handler expect)."""
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return exc
    import sqlite3

    name = type(exc).__name__
    if isinstance(exc, sqlite3.IntegrityError) or name in (
        "UniqueViolationError",
        "ForeignKeyViolationError",
        "NotNullViolationError",
        "CheckViolationError",
        "IntegrityConstraintViolationError",
    ):
        return sa_exc.IntegrityError(sql, None, exc)
    if isinstance(exc, sqlite3.OperationalError | OSError | ConnectionError | TimeoutError) or name in (
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "DeadlockDetectedError",
        "LockNotAvailableError",
        "SerializationError",
        "QueryCanceledError",
        "AdminShutdownError",
        "PostgresConnectionError",
    ):
        return sa_exc.OperationalError(sql, None, exc)
    if isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("asyncpg"):
        return sa_exc.DBAPIError(sql, None, exc)
    return exc


@asynccontextmanager
async def raw_write(db: Database) -> AsyncIterator[RawTx]:
    """A write transaction on the write engine's driver connection (see the section comment above)."""
    engine: AsyncEngine = db._writer.kw.get("bind") or db.write_engine
    async with engine.connect() as conn:
        try:
            raw: Any = (await conn.get_raw_connection()).driver_connection
        except Exception as exc:
            raise _translate(exc, "connect") from exc
        tx = RawTx(raw, db.is_sqlite)
        if db.is_sqlite:
            await tx.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                with contextlib.suppress(Exception):
                    await raw.rollback()
                raise
            try:
                await raw.commit()
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await raw.rollback()
                raise _translate(exc, "COMMIT") from exc
        else:
            transaction = raw.transaction()
            try:
                await transaction.start()
            except Exception as exc:
                raise _translate(exc, "BEGIN") from exc
            try:
                yield tx
            except BaseException:
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                raise
            try:
                await transaction.commit()
            except Exception as exc:
                raise _translate(exc, "COMMIT") from exc
