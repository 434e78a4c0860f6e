"""Engines and sessions. SQLite gets WAL, a busy timeout and `BEGIN IMMEDIATE` for writers (so two
writers never deadlock on a lock upgrade); PostgreSQL uses row locks (`FOR UPDATE`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections import OrderedDict, namedtuple
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MEMORY_REFUSED = "use a file database; :memory: is not supported"


def is_memory_sqlite(url: str | URL) -> bool:
    """An in-memory SQLite URL (`sqlite://`, `…/:memory:`, `file::memory:`, `mode=memory`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    memory_uri = database.startswith("file::memory:") or "mode=memory" in database
    return not database or database == ":memory:" or memory_uri or parsed.query.get("mode") == "memory"


class Database:
    """Owns the engines. `write()` opens a transaction for changes, `read()` one for queries.

    SQLite must be a file: the hot path (`raw_write`, `raw_read`) opens its own connections to the same
    database, which an in-memory database cannot give, and there is one SQL path per operation."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10, busy_timeout_ms: int = 15000) -> None:
        if is_memory_sqlite(url):
            raise ValueError(f"{MEMORY_REFUSED} (got {make_url(url).render_as_string(hide_password=True)!r})")
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
        self.busy_timeout_ms = busy_timeout_ms
        # SQLite: one writer at a time in this process (the ORM's write connection and the hot path's
        # inline connection), queued fairly in asyncio instead of in SQLite's sleeping busy handler.
        self.write_lock = asyncio.Lock()
        self._inline: dict[str, _InlineSqlite] = {}
        self._pg_pools: dict[str, Any] = {}  # asyncpg pools of the hot path, by URL
        self.pg_pool_size = pool_size
        self.pool_lock = asyncio.Lock()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on success and rolled back on error."""
        if self.is_sqlite:
            async with self.write_lock, self._writer() as session, session.begin():
                yield session
        else:
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
        for inline in self._inline.values():
            inline.close()
        self._inline.clear()
        for pool in self._pg_pools.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 10)
        self._pg_pools.clear()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def _sqlite_engine(url: str, *, immediate: bool, echo: bool, busy_ms: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        echo=echo,
        connect_args={"timeout": busy_ms / 1000},
        pool_size=1 if immediate else 8,
        max_overflow=0 if immediate else 8,
    )

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


# --- the hot path: plain SQL on the driver, one transaction ----------------------------------------------
#
# SQLAlchemy costs ~0.1-0.5 ms of CPU per statement (execution context, ORM bulk code, greenlet and adapter
# layers), and every aiosqlite statement is a hand-off to its thread and back (GIL ping-pong). The inbound hot
# path (ingest, the web-chat long-poll) therefore runs a handful of plain SQL statements:
#
# - SQLite: on an *inline* `sqlite3` connection used from the event loop itself. In WAL mode with
#   `synchronous=NORMAL` a statement is 5-30 us of CPU and never waits for I/O (a commit appends to the WAL
#   in the page cache; checkpoints run in a background thread, see `_InlineSqlite`). The only wait is for the
#   write lock: `BEGIN IMMEDIATE` is tried without a busy timeout and retried with `asyncio.sleep` until
#   `sqlite_busy_timeout_ms`, so a writer in another process never blocks the loop. Writers of this process
#   queue on `Database.write_lock`, which the ORM's `write()` takes too.
# - PostgreSQL: asyncpg on a pooled connection, in an asyncpg transaction; row locks (`FOR UPDATE`) as in
#   the ORM path.
#
# The transaction has exactly the semantics of `Database.write()`: `BEGIN IMMEDIATE` on SQLite, all or
# nothing. Values are written in the formats SQLAlchemy uses (naive UTC "YYYY-MM-DD HH:MM:SS.ffffff" on
# SQLite, timestamptz on PostgreSQL, JSON text from `json.dumps`), and driver errors are re-raised as
# SQLAlchemy's exception types, so callers (ingest's retry on IntegrityError) and the web app's 503 handler
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


_PG_SQL: dict[str, str] = {}


def _pg_sql(sql: str) -> str:
    out = _PG_SQL.get(sql)
    if out is None:
        out = _PG_SQL[sql] = _to_pg(sql)
    return out


class RawTx:
    """Statements on a driver connection. SQL uses `?` placeholders (rewritten for asyncpg); SQLAlchemy Core
    statements go through `core_fetch`/`core_execute` (see "Core statements on the hot path" below)."""

    __slots__ = ("_conn", "dialect", "dt", "is_sqlite")

    def __init__(self, conn: Any, is_sqlite: bool, dialect: Dialect | None = None) -> None:
        self._conn = conn
        self.is_sqlite = is_sqlite
        self.dialect = dialect
        self.dt: Callable[[datetime | None], Any] = _sqlite_datetime if is_sqlite else _pg_datetime

    @staticmethod
    def js(value: Any) -> str:
        return json.dumps(value)  # SQLAlchemy's JSON type serialises with json.dumps and default options

    @staticmethod
    def loads(value: Any) -> Any:
        """A JSON column as read (asyncpg decodes it with SQLAlchemy's codec; SQLite returns text)."""
        if isinstance(value, str | bytes):
            return json.loads(value)
        return value

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            if self.is_sqlite:
                return self._conn.execute(sql, args).fetchall()  # type: ignore[no-any-return]
            return list(await self._conn.fetch(_pg_sql(sql), *args))
        except Exception as exc:
            raise _translate(exc, sql) from exc

    async def fetchrow(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = await self.fetch(sql, args)
        return rows[0] if rows else None

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        try:
            if self.is_sqlite:
                self._conn.execute(sql, args)
            else:
                await self._conn.execute(_pg_sql(sql), *args)
        except Exception as exc:
            raise _translate(exc, sql) from exc

    async def core_fetch(
        self, stmt: Any, params: Mapping[str, Any] | None = None, *, returning_id: bool = False
    ) -> list[Any]:
        """Rows of a SQLAlchemy Core statement (a SELECT, or DML with RETURNING), values as the ORM reads them."""
        plan = _core_plan(stmt, self._dialect(), params, returning_id)
        args = plan.args(params)
        try:
            if self.is_sqlite:
                rows = self._conn.execute(plan.sql, args).fetchall()
            else:
                rows = await self._conn.fetch(plan.sql, *args)
        except Exception as exc:
            raise _translate(exc, plan.sql) from exc
        return plan.rows(rows)

    async def core_execute(self, stmt: Any, params: Mapping[str, Any] | None = None) -> int:
        """Run a SQLAlchemy Core statement; returns the number of rows it matched (-1 when unknown)."""
        plan = _core_plan(stmt, self._dialect(), params, False)
        args = plan.args(params)
        try:
            if self.is_sqlite:
                return int(self._conn.execute(plan.sql, args).rowcount)
            status = await self._conn.execute(plan.sql, *args)
        except Exception as exc:
            raise _translate(exc, plan.sql) from exc
        last = str(status).rsplit(" ", 1)[-1]  # asyncpg returns the command tag: "UPDATE 1", "INSERT 0 1"
        return int(last) if last.isdigit() else -1

    def _dialect(self) -> Dialect:
        if self.dialect is None:
            raise RuntimeError("this raw transaction was opened without a dialect: no Core statements")
        return self.dialect


# --- SQLAlchemy Core statements on the hot path ----------------------------------------------------------
#
# Quick flow actions (`otklik.conversations.timers.QuickContext`) read and write inside the ingest transaction with
# Core statements built on the tables of `models.py` (the same definitions the ORM uses: no third copy of the
# SQL). A statement is compiled once per (dialect, statement object, parameter names) -- build statements once,
# at import, with `bindparam()`s and pass the values at execution; a statement built per call with literal
# values is compiled per call (correct, only slower). The plan applies what SQLAlchemy's execution context
# would: Python-side column defaults, the column types' bind processors (`UTCDateTime`, JSON, Boolean) and
# result processors, so rows read back exactly like rows written through the ORM. Not supported: executemany,
# `bindparam(expanding=True)` (write IN lists as literals), SQL-expression or sequence column defaults.

_PLAN_CACHE_SIZE = 512
_PLANS: OrderedDict[tuple[int, int, tuple[str, ...], bool], _CorePlan] = OrderedDict()


@dataclass(slots=True)
class _CorePlan:
    stmt: Any  # held, so that the id in the cache key cannot be reused by another statement
    dialect: Dialect
    compiled: Any
    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: tuple[tuple[str, Any, bool], ...]  # (parameter, value or callable, is callable)
    row: Any  # a namedtuple class of the result columns, or None
    results: tuple[Callable[[Any], Any] | None, ...] | None  # None: no column needs processing

    def args(self, params: Mapping[str, Any] | None) -> list[Any]:
        values = self.compiled.construct_params(dict(params) if params else None)
        for key, default, is_callable in self.defaults:
            if params is None or key not in params:
                values[key] = default(None) if is_callable else default
        return [
            value if process is None else process(value)
            for value, process in zip((values[n] for n in self.names), self.processors, strict=True)
        ]

    def rows(self, raw: Sequence[Any]) -> list[Any]:
        row, results = self.row, self.results
        if row is None:
            return list(raw)
        if results is None:
            return [row(*r) for r in raw]
        return [row(*(v if p is None else p(v) for v, p in zip(r, results, strict=True))) for r in raw]


def _result_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    impl = type_.dialect_impl(dialect)
    if dialect.name == "postgresql" and isinstance(impl, sqltypes.Numeric) and not isinstance(impl, sqltypes.Float):
        # asyncpg's NUMERIC processor needs the column's type oid, unknown here; asyncpg returns Decimal itself
        return None if impl.asdecimal else (lambda v: None if v is None else float(v))
    return impl.result_processor(dialect, None)  # type: ignore[no-any-return]


def _core_plan(stmt: Any, dialect: Dialect, params: Mapping[str, Any] | None, returning_id: bool) -> _CorePlan:
    keys = tuple(sorted(params)) if params else ()
    key = (id(dialect), id(stmt), keys, returning_id)
    plan = _PLANS.get(key)
    if plan is not None and plan.stmt is stmt and plan.dialect is dialect:
        return plan
    target = stmt
    if returning_id and not list(stmt.exported_columns):
        target = stmt.returning(stmt.table.c.id)
    compiled = target.compile(dialect=dialect, column_keys=list(keys), compile_kwargs={"render_postcompile": True})
    if not dialect.positional:  # pragma: no cover - sqlite (qmark) and asyncpg (numeric_dollar) are positional
        raise NotImplementedError(f"dialect {dialect.name} is not positional")
    names = tuple(compiled.positiontup or ())
    processors = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
    defaults: list[tuple[str, Any, bool]] = []
    prefetch = [(c, c.default) for c in compiled.insert_prefetch] + [(c, c.onupdate) for c in compiled.update_prefetch]
    for column, default in prefetch:
        if default.is_scalar:
            defaults.append((column.key, default.arg, False))
        elif default.is_callable:
            defaults.append((column.key, default.arg, True))
        else:  # pragma: no cover - no such column in models.py
            raise NotImplementedError(f"column default of {column} on the fast path")
    columns = list(target.exported_columns)
    row: Any = None
    results: tuple[Callable[[Any], Any] | None, ...] | None = None
    if columns:
        row = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc,no-redef]
        processing = tuple(_result_processor(c.type, dialect) for c in columns)
        results = processing if any(p is not None for p in processing) else None
    plan = _CorePlan(stmt, dialect, compiled, compiled.string, names, processors, tuple(defaults), row, results)
    _PLANS[key] = plan
    if len(_PLANS) > _PLAN_CACHE_SIZE:
        _PLANS.popitem(last=False)
    return plan


def _translate(exc: Exception, sql: str) -> Exception:
    """Driver errors as SQLAlchemy's exception types (what the callers and the 503 handler expect)."""
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return exc
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


class _InlineSqlite:
    """The hot path's two `sqlite3` connections to one database file (writes, reads), used from the loop.

    The write connection does not checkpoint on commit (`wal_autocheckpoint=0`: a checkpoint fsyncs and
    would stall the loop); every `CHECKPOINT_EVERY` commits a PASSIVE checkpoint runs in a thread on a
    connection of its own. The ORM's connections keep SQLite's automatic checkpoints."""

    CHECKPOINT_EVERY = 500

    def __init__(self, path: str, uri: bool) -> None:
        self.path, self.uri = path, uri
        self.writer = self._connect(autocheckpoint=False)
        self.reader = self._connect(autocheckpoint=True)
        self.commits = 0
        self._checkpointing: threading.Thread | None = None

    def _connect(self, *, autocheckpoint: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, uri=self.uri, isolation_level=None, timeout=0, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            if not autocheckpoint:
                conn.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            conn.close()
            raise
        return conn

    def committed(self) -> None:
        self.commits += 1
        if self.commits % self.CHECKPOINT_EVERY == 0 and not (self._checkpointing and self._checkpointing.is_alive()):
            self._checkpointing = threading.Thread(target=self._checkpoint, name="otklik-wal-checkpoint", daemon=True)
            self._checkpointing.start()

    def _checkpoint(self) -> None:
        try:
            conn = sqlite3.connect(self.path, uri=self.uri, isolation_level=None, timeout=5)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
        except sqlite3.Error:  # pragma: no cover - the next one will do it
            pass

    def close(self) -> None:
        if self._checkpointing is not None:
            self._checkpointing.join(timeout=5)
        self.writer.close()
        self.reader.close()


def _inline(db: Database, engine: AsyncEngine) -> _InlineSqlite:
    key = str(engine.url)
    inline = db._inline.get(key)
    if inline is None:
        database = engine.url.database or ""
        if is_memory_sqlite(engine.url):  # `Database` refuses these; a bound engine could still be one
            raise sa_exc.OperationalError("connect", None, sqlite3.OperationalError(MEMORY_REFUSED))
        uri = database.startswith("file:")
        try:
            inline = _InlineSqlite(database, uri)
        except sqlite3.Error as exc:
            raise _translate(exc, "connect") from exc
        db._inline[key] = inline
    return inline


async def _begin_immediate(conn: sqlite3.Connection, busy_ms: int) -> None:
    deadline = time.monotonic() + busy_ms / 1000
    delay = 0.001
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise _translate(exc, "BEGIN IMMEDIATE") from exc
            if time.monotonic() >= deadline:
                raise _translate(exc, "BEGIN IMMEDIATE") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)


@asynccontextmanager
async def raw_write(db: Database) -> AsyncIterator[RawTx]:
    """A write transaction for the hot path (see the section comment above)."""
    engine: AsyncEngine = db._writer.kw.get("bind") or db.write_engine
    if db.is_sqlite:
        async with db.write_lock:
            inline = _inline(db, engine)
            conn = inline.writer
            await _begin_immediate(conn, db.busy_timeout_ms)
            try:
                yield RawTx(conn, True, engine.dialect)
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise _translate(exc, "COMMIT") from exc
            inline.committed()
        return
    async with _pg_connection(db, engine) as raw:
        transaction = raw.transaction()
        try:
            await transaction.start()
        except Exception as exc:
            raise _translate(exc, "BEGIN") from exc
        try:
            yield RawTx(raw, False, engine.dialect)
        except BaseException:
            with contextlib.suppress(Exception):
                await transaction.rollback()
            raise
        try:
            await transaction.commit()
        except Exception as exc:
            raise _translate(exc, "COMMIT") from exc


@asynccontextmanager
async def raw_read(db: Database) -> AsyncIterator[RawTx]:
    """Single-statement reads for the hot path: the inline SQLite reader, or a pooled asyncpg connection."""
    engine: AsyncEngine = db._reader.kw.get("bind") or db.read_engine
    if db.is_sqlite:
        yield RawTx(_inline(db, engine).reader, True, engine.dialect)
        return
    async with _pg_connection(db, engine) as raw:
        yield RawTx(raw, False, engine.dialect)


async def _init_pg(conn: Any) -> None:
    """JSON as SQLAlchemy's asyncpg dialect has it: text in (we pass `json.dumps`), decoded objects out."""
    await conn.set_type_codec("json", encoder=str, decoder=json.loads, schema="pg_catalog")


@asynccontextmanager
async def _pg_connection(db: Database, engine: AsyncEngine) -> AsyncIterator[Any]:
    """A connection of the hot path's own asyncpg pool (no SQLAlchemy pool layers, no pre-ping round trips;
    asyncpg replaces connections the server closed)."""
    import asyncpg

    key = engine.url.render_as_string(hide_password=False)
    try:
        pool = db._pg_pools.get(key)
        if pool is None:
            async with db.pool_lock:
                pool = db._pg_pools.get(key)
                if pool is None:
                    dsn = key.replace("postgresql+asyncpg://", "postgresql://", 1)
                    # min_size=0: creating the pool opens no connection yet
                    pool = await asyncpg.create_pool(dsn, min_size=0, max_size=db.pg_pool_size, init=_init_pg)
                    db._pg_pools[key] = pool
        conn = await pool.acquire(timeout=30)
    except Exception as exc:
        raise _translate(exc, "connect") from exc
    try:
        yield conn
    finally:
        await pool.release(conn)
