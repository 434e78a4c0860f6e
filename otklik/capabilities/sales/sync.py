"""Scheduled catalog sync from the seller's system (issue 16, "Sources"): a JSON HTTP endpoint with paging or
a read-only SQL query on the seller's database, every N minutes, upserting by sku with the importer's own
validation and upsert (`importer.import_catalog`).

A run is all-or-nothing: the whole catalog is fetched first (every page, or every row of the query); a
timeout, an HTTP error that outlives the retries, bad JSON, a page over the size cap, a wrong type or any
invalid row (duplicate skus included) fails the run, writes NOTHING to the catalog (the last good catalog
stays) and is recorded in `sales_sync_runs` and on the source (`last_status`, `last_error`).

Two workers never run the same source at once: a run first claims the source's lease with one conditional
UPDATE (`lease_until` NULL or past); the loser skips it. The lease is short and renewed while the run goes on
(a heartbeat), so a worker that dies mid-run blocks the source for at most `LEASE`; its run row stays
'running' and is shown as stale (`run_state`) until the next run closes it as interrupted. See docs/sales.md,
"Scheduled sync".
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from sqlalchemy import delete, insert, or_, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.capabilities.sales.importer import (
    COLUMNS,
    MAX_ROWS,
    OPTIONAL,
    ImportReport,
    RowError,
    Sheet,
    import_catalog,
)
from otklik.capabilities.sales.models import sync_runs, sync_sources
from otklik.clock import utcnow

log = logging.getLogger(__name__)

KINDS = ("json", "sql")
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
TARGETS = COLUMNS + OPTIONAL
MAX_PAGE_BYTES = 8 * 1024 * 1024  # one JSON page
MAX_PAGES = 5000
MAX_EVERY_MINUTES = 7 * 24 * 60
MAX_TIMEOUT = 600
LEASE = timedelta(minutes=3)  # a crashed worker's claim expires after this (a live run renews it)
HEARTBEAT_SECONDS = 45.0  # how often a running sync renews its lease
INTERRUPTED = "interrupted: the worker running it stopped before it finished (its lease ran out)"
SHOWN_ERRORS = 20  # row errors kept in a run's message
RETRIES = 3  # a 429 or 5xx is retried this many times
BACKOFF = 1.0  # seconds, doubled each retry; a Retry-After is honoured up to MAX_RETRY_AFTER
MAX_RETRY_AFTER = 60.0
EVERY_SECONDS = 30.0  # how often the worker looks for due sources
ASYNC_DRIVERS = {"asyncpg", "aiosqlite", "aiomysql", "asyncmy", "aioodbc", "psycopg_async"}


class SyncError(Exception):
    """A source that cannot be added or a run that failed: one clear message."""


# --- sources ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    id: int
    name: str
    kind: str
    url: str  # as shown (the SQL URL's password masked)
    secret: str | None  # encrypted
    query: str | None
    options: dict[str, Any]
    mapping: dict[str, str]
    replace: bool
    prices_include_iva: bool
    every_minutes: int
    timeout_seconds: int
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_status: str | None
    last_error: str | None

    @classmethod
    def of(cls, row: Any) -> Source:
        return cls(**{k: row[k] for k in cls.__slots__})

    def shown(self) -> dict[str, Any]:
        """What a list shows: never the secret."""
        return {
            "name": self.name, "kind": self.kind, "url": self.url, "token": "***" if self.kind == "json"
            and self.secret else None, "query": self.query, "every_minutes": self.every_minutes,
            "replace": self.replace, "mapping": self.mapping, "options": self.options, "enabled": self.enabled,
            "next_run_at": _iso(self.next_run_at), "last_run_at": _iso(self.last_run_at),
            "last_status": self.last_status, "last_error": self.last_error,
        }  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """`["codigo=sku", "precio=price"]` → {"codigo": "sku", "precio": "price"}: the source's field → our column."""
    out: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        source, target = source.strip().lower(), target.strip().lower()
        if not sep or not source or len(source) > 64:
            raise SyncError(f"mapping {pair[:80]!r}: write source_field=column, e.g. codigo=sku")
        if target not in TARGETS:
            raise SyncError(f"mapping {pair[:80]!r}: {target!r} is not a column ({', '.join(TARGETS)})")
        if source in out or target in out.values():
            raise SyncError(f"mapping {pair[:80]!r}: a field or a column given twice")
        out[source] = target
    return out


def _check_common(name: str, every_minutes: int, timeout_seconds: int) -> None:
    if not NAME.fullmatch(name):
        raise SyncError("the name: 1-64 characters, lower-case letters, digits, - and _")
    if not 1 <= every_minutes <= MAX_EVERY_MINUTES:
        raise SyncError(f"every: 1 to {MAX_EVERY_MINUTES} minutes")
    if not 1 <= timeout_seconds <= MAX_TIMEOUT:
        raise SyncError(f"timeout: 1 to {MAX_TIMEOUT} seconds")


def check_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise SyncError("the URL must be http:// or https:// with a host (at most 2000 characters)")
    if parts.username or parts.password:
        raise SyncError("no credentials in the URL: give a bearer token with --token")
    return url


async def _insert_source(db: Database, values: dict[str, Any]) -> Source:
    now = utcnow()
    row = {"enabled": True, "next_run_at": now, "created_at": now, **values}
    async with db.write() as session:
        if (await session.execute(select(sync_sources.c.id).where(sync_sources.c.name == values["name"]))).first():
            raise SyncError(f"a sync source named {values['name']!r} already exists")
        await session.execute(insert(sync_sources).values(**row))
    found = await get_source(db, values["name"])
    assert found is not None
    return found


async def add_json_source(
    db: Database,
    vault: Vault,
    name: str,
    url: str,
    *,
    token: str | None = None,
    every_minutes: int = 60,
    timeout_seconds: int = 30,
    paging: str = "next",
    items_key: str = "items",
    per_page: int = 100,
    mapping: Mapping[str, str] | None = None,
    replace: bool = False,
    prices_include_iva: bool = True,
) -> Source:
    _check_common(name, every_minutes, timeout_seconds)
    check_http_url(url)
    if paging not in ("next", "page"):
        raise SyncError("paging: next (the body names the next page) or page (?page=N&per_page=M)")
    if not 1 <= per_page <= 10_000:
        raise SyncError("per_page: 1 to 10000")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", items_key):
        raise SyncError("items_key: a JSON key such as items, products or data")
    if token is not None and (not token.strip() or len(token) > 4000 or any(c in token for c in "\r\n")):
        raise SyncError("the token: one line, at most 4000 characters")
    return await _insert_source(db, {
        "name": name, "kind": "json", "url": url, "secret": vault.encrypt(token) if token else None,
        "query": None, "options": {"paging": paging, "items_key": items_key, "per_page": per_page},
        "mapping": dict(mapping or {}), "replace": replace, "prices_include_iva": prices_include_iva,
        "every_minutes": every_minutes, "timeout_seconds": timeout_seconds,
    })  # fmt: skip


async def add_sql_source(
    db: Database,
    vault: Vault,
    name: str,
    url: str,
    query: str,
    *,
    every_minutes: int = 60,
    timeout_seconds: int = 30,
    mapping: Mapping[str, str] | None = None,
    replace: bool = False,
    prices_include_iva: bool = True,
) -> Source:
    _check_common(name, every_minutes, timeout_seconds)
    url = sql_url(url)
    check_query(query)
    return await _insert_source(db, {
        "name": name, "kind": "sql", "url": mask_url(url), "secret": vault.encrypt(url), "query": query.strip(),
        "options": {}, "mapping": dict(mapping or {}), "replace": replace, "prices_include_iva": prices_include_iva,
        "every_minutes": every_minutes, "timeout_seconds": timeout_seconds,
    })  # fmt: skip


async def get_source(db: Database, name: str) -> Source | None:
    async with db.read() as session:
        row = (await session.execute(select(sync_sources).where(sync_sources.c.name == name))).mappings().first()
    return Source.of(row) if row else None


async def list_sources(db: Database) -> list[Source]:
    async with db.read() as session:
        rows = (await session.execute(select(sync_sources).order_by(sync_sources.c.name))).mappings().all()
    return [Source.of(r) for r in rows]


async def remove_source(db: Database, name: str) -> bool:
    async with db.write() as session:
        result = await session.execute(delete(sync_sources).where(sync_sources.c.name == name))
    return bool(getattr(result, "rowcount", 0))


async def history(db: Database, name: str, limit: int = 20) -> list[dict[str, Any]]:
    query = (
        select(sync_runs)
        .join(sync_sources, sync_sources.c.id == sync_runs.c.source_id)
        .where(sync_sources.c.name == name)
        .order_by(sync_runs.c.id.desc())
        .limit(limit)
    )
    async with db.read() as session:
        rows = (await session.execute(query)).mappings().all()
    return [{**dict(r), "started_at": _iso(r["started_at"]), "finished_at": _iso(r["finished_at"])} for r in rows]


# --- SQL: the URL and the query -------------------------------------------------------------------------------


def sql_url(url: str) -> str:
    """The URL as SQLAlchemy takes it; `postgresql://` runs on asyncpg. A missing driver is refused here."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise SyncError("not an SQLAlchemy database URL (e.g. postgresql://user:pass@host/db)") from None
    backend = parsed.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb", "mssql", "sqlite"):
        raise SyncError(f"unsupported database {backend!r}: PostgreSQL, MySQL/MariaDB, SQL Server or SQLite")
    if "+" not in parsed.drivername and backend in ("postgresql", "sqlite"):  # the drivers otklik ships
        parsed = parsed.set(drivername={"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}[backend])
    if backend == "sqlite" and not parsed.database:
        raise SyncError("an SQLite source must be a file")
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        raise SyncError(f"the driver for {parsed.drivername!r} is not installed ({exc})") from None
    return parsed.render_as_string(hide_password=False)


def mask_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


_TOKEN = re.compile(
    r"""(?P<comment>--[^\n]*|/\*.*?\*/)|(?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\])|(?P<semi>;)"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<other>.)""",
    re.S,
)
FORBIDDEN = {
    "insert", "update", "delete", "merge", "upsert", "replace", "drop", "create", "alter", "truncate", "grant",
    "revoke", "into", "call", "exec", "execute", "attach", "detach", "pragma", "vacuum", "copy", "lock", "set",
    "begin", "commit", "rollback", "savepoint", "load_file", "outfile", "dumpfile", "handler", "do", "reindex",
}  # fmt: skip
MAX_QUERY = 20_000


def check_query(query: str) -> None:
    """One SELECT (or WITH … SELECT) statement, nothing that writes: refused with the reason otherwise. The
    read-only transaction (PostgreSQL) and the read-only connection (SQLite) hold even if this misses one."""
    if not query.strip():
        raise SyncError("the query is empty")
    if len(query) > MAX_QUERY:
        raise SyncError(f"the query is longer than {MAX_QUERY} characters")
    if "\x00" in query:
        raise SyncError("the query holds a NUL character")
    words: list[str] = []
    after_semi = False
    for m in _TOKEN.finditer(query):
        kind = m.lastgroup
        if kind == "comment" or (kind == "other" and m.group().isspace()):
            continue
        if kind == "other" and m.group() == "'":
            raise SyncError("the query has an unclosed quote")
        if after_semi:
            raise SyncError("one statement only: nothing may follow a ';'")
        if kind == "semi":
            after_semi = True
        elif kind == "word":
            words.append(m.group().lower())
    if not words or words[0] not in ("select", "with"):
        raise SyncError("only a SELECT (or WITH … SELECT) query is allowed")
    bad = sorted(set(words) & FORBIDDEN)
    if bad:
        raise SyncError(f"a read-only SELECT only: {', '.join(w.upper() for w in bad)} is not allowed")


# --- fetching ---------------------------------------------------------------------------------------------


async def fetch_json(source: Source, vault: Vault, *, backoff: float = BACKOFF) -> list[Any]:
    """Every item of every page. Shapes (docs/sales.md): a JSON array (one page), or an object with the items
    under `items_key` and, with `paging=next`, a `next` URL (absolute or relative; null or absent on the last
    page); with `paging=page`, `?page=1&per_page=N`, … until a page has fewer than N items."""
    headers = {"Accept": "application/json", "User-Agent": "otklik-catalog-sync"}
    if source.secret:
        headers["Authorization"] = f"Bearer {vault.decrypt(source.secret)}"
    paging = str(source.options.get("paging", "next"))
    key = str(source.options.get("items_key", "items"))
    per_page = int(source.options.get("per_page", 100))
    origin = urlsplit(source.url)[:2]
    items: list[Any] = []
    seen = {source.url}
    timeout = httpx.Timeout(source.timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, headers=headers, follow_redirects=False) as client:
        url: str | None = source.url
        page = 1
        while url is not None:
            if page > MAX_PAGES:
                raise SyncError(f"more than {MAX_PAGES} pages")
            params = {"page": page, "per_page": per_page} if paging == "page" else None
            current = url
            body = await _get_json(client, current, params, backoff, source.timeout_seconds * 2)
            if isinstance(body, list) and paging == "next":
                got, url = body, None
            elif isinstance(body, dict) and isinstance(body.get(key), list):
                got = body[key]
                url = None
                if paging == "next" and body.get("next") not in (None, ""):
                    nxt = body["next"]
                    if not isinstance(nxt, str):
                        raise SyncError(f"page {page}: 'next' is not a URL")
                    url = urljoin(current, nxt)
            elif isinstance(body, list):
                got = body
                url = None
            else:
                raise SyncError(f"page {page}: expected a JSON array or an object with a list under {key!r}")
            if paging == "page":
                url = source.url if len(got) >= per_page and got else None
            items += got
            if len(items) > MAX_ROWS:
                raise SyncError(f"more than {MAX_ROWS} items")
            if url is not None:
                if urlsplit(url)[:2] != origin:
                    raise SyncError(f"page {page}: 'next' leaves {origin[1]} (refused: the token stays home)")
                if paging == "next" and url in seen:
                    raise SyncError(f"page {page}: 'next' points to a page already read (a loop)")
                seen.add(url)
            page += 1
    return items


async def _get_json(
    client: httpx.AsyncClient, url: str, params: dict[str, Any] | None, backoff: float, deadline: float
) -> Any:
    """One page: `deadline` seconds for the whole answer (a server dripping bytes cannot hold the run)."""
    for attempt in range(RETRIES + 1):
        wait: float | None = None
        try:
            async with asyncio.timeout(deadline), client.stream("GET", url, params=params) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    if attempt < RETRIES:
                        wait = _retry_after(response.headers.get("Retry-After"), backoff * 2**attempt)
                    else:
                        raise SyncError(f"{_short(url)} answered {response.status_code} after {RETRIES} retries")
                elif response.status_code != 200:
                    raise SyncError(f"{_short(url)} answered {response.status_code}")
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > MAX_PAGE_BYTES:
                    raise SyncError(f"{_short(url)}: a page larger than {MAX_PAGE_BYTES // (1024 * 1024)} MB")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_PAGE_BYTES:
                        raise SyncError(f"{_short(url)}: a page larger than {MAX_PAGE_BYTES // (1024 * 1024)} MB")
        except (httpx.TimeoutException, TimeoutError):
            raise SyncError(f"{_short(url)}: timed out") from None
        except httpx.HTTPError as exc:
            raise SyncError(f"{_short(url)}: {type(exc).__name__}: {exc}"[:300]) from None
        if wait is not None:  # outside the page's deadline: a Retry-After may be longer than it
            await asyncio.sleep(wait)
            continue
        try:
            return json.loads(bytes(data), parse_float=Decimal)
        except (ValueError, RecursionError):
            raise SyncError(f"{_short(url)}: the answer is not JSON") from None
    raise SyncError(f"{_short(url)}: no answer")  # pragma: no cover - the loop returns or raises


def _retry_after(header: str | None, default: float) -> float:
    try:
        return min(max(float(header), 0.0), MAX_RETRY_AFTER) if header else default
    except ValueError:
        return default


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:200]


async def fetch_sql(source: Source, vault: Vault) -> list[dict[str, Any]]:
    """The query's rows, read in a read-only transaction (PostgreSQL: `SET TRANSACTION READ ONLY` and a
    `statement_timeout`; MySQL: `START TRANSACTION READ ONLY` and `max_execution_time`; SQLite: a read-only
    connection), under an overall timeout."""
    assert source.query is not None
    check_query(source.query)  # again: a row edited in the database is not trusted either
    url = vault.decrypt(source.secret or "")
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    ms = source.timeout_seconds * 1000
    if backend == "sqlite":
        parsed = parsed.set(database=f"file:{parsed.database}", query={"mode": "ro", "uri": "true"})
    try:
        if parsed.get_driver_name() in ASYNC_DRIVERS:
            coro = _sql_async(parsed.render_as_string(hide_password=False), backend, source.query, ms)
        else:
            coro = asyncio.to_thread(_sql_sync, parsed.render_as_string(hide_password=False), backend, source.query,
                                     ms)  # fmt: skip
        return await asyncio.wait_for(coro, source.timeout_seconds + 5)
    except TimeoutError:
        raise SyncError(f"the query timed out after {source.timeout_seconds} s") from None
    except SyncError:
        raise
    except Exception as exc:  # the drivers raise many kinds; the message (password scrubbed) is shown
        message = str(exc).split("\n")[0]
        if parsed.password:
            message = message.replace(str(parsed.password), "***")
        if "timeout" in message.lower() or "canceling statement" in message.lower():
            raise SyncError(f"the query timed out after {source.timeout_seconds} s ({message[:200]})") from None
        raise SyncError(f"the query failed: {type(exc).__name__}: {message[:300]}") from None


def _prelude(backend: str, ms: int) -> list[str]:
    if backend == "postgresql":
        return ["SET TRANSACTION READ ONLY", f"SET LOCAL statement_timeout = {int(ms)}"]
    if backend == "mysql":  # not exercised by the tests: otklik ships no MySQL driver
        return [f"SET SESSION max_execution_time = {int(ms)}", "SET SESSION TRANSACTION READ ONLY"]
    if backend == "mariadb":
        return [f"SET SESSION max_statement_time = {ms / 1000:.3f}", "SET SESSION TRANSACTION READ ONLY"]
    if backend == "sqlite":
        return ["PRAGMA query_only = ON"]
    return []  # SQL Server: the overall timeout; give the source a login with read rights only


def _rows(result: Any) -> list[dict[str, Any]]:
    keys = [str(k).lower() for k in result.keys()]  # noqa: SIM118 (a Result, not a dict)
    out: list[dict[str, Any]] = []
    for row in result:
        out.append(dict(zip(keys, row, strict=True)))
        if len(out) > MAX_ROWS:
            raise SyncError(f"the query returned more than {MAX_ROWS} rows")
    return out


async def _sql_async(url: str, backend: str, query: str, ms: int) -> list[dict[str, Any]]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, poolclass=_null_pool())
    try:
        async with engine.connect() as conn, conn.begin():
            for statement in _prelude(backend, ms):
                await conn.exec_driver_sql(statement)
            return _rows(await conn.execute(text(query)))
    finally:
        await engine.dispose()


def _sql_sync(url: str, backend: str, query: str, ms: int) -> list[dict[str, Any]]:
    from sqlalchemy import create_engine

    engine = create_engine(url, poolclass=_null_pool())
    try:
        with engine.connect() as conn, conn.begin():
            for statement in _prelude(backend, ms):
                conn.exec_driver_sql(statement)
            return _rows(conn.execute(text(query)))
    finally:
        engine.dispose()


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


# --- rows → the importer --------------------------------------------------------------------------------------


def to_sheet(items: Sequence[Any], mapping: Mapping[str, str]) -> tuple[Sheet, list[RowError]]:
    """The items as the importer's sheet (row N is the N-th item, from 1), renamed by `mapping`, unknown fields
    ignored. Structural errors the importer cannot see (an item that is not an object, a list or an object
    where a value belongs) are returned, each with its row and column."""
    errors: list[RowError] = []
    rows: list[tuple[int, list[Any]]] = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            errors.append(RowError(n, "(row)", f"not an object but {type(item).__name__}"))
            continue
        lowered = {str(k).lower(): v for k, v in item.items()}
        named = {mapping.get(k, k): v for k, v in lowered.items()}
        cells: list[Any] = []
        for column in TARGETS:
            value = named.get(column)
            if column == "attributes" and isinstance(value, dict):
                if any(isinstance(v, dict | list) for v in value.values()):
                    errors.append(RowError(n, column, "values must be text or numbers"))
                value = ";".join(f"{k}={'si' if v is True else 'no' if v is False else v}" for k, v in value.items())
            elif column == "images" and isinstance(value, list):
                if not all(isinstance(v, str) for v in value):
                    errors.append(RowError(n, column, "a list of URLs"))
                value = " ".join(str(v) for v in value)
            elif isinstance(value, dict | list):
                errors.append(RowError(n, column, f"a {type(value).__name__}, not a value"))
                value = None
            elif isinstance(value, bool) and column not in ("price", "stock"):
                errors.append(RowError(n, column, "true/false, not a value"))
            elif value is not None and not isinstance(value, str | int | float | Decimal):
                value = str(value)
            cells.append(value)
        rows.append((n, cells))
    return Sheet(list(TARGETS), rows, len(rows)), errors


# --- a run ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RunResult:
    source: str
    status: str  # ok | failed | busy (another worker holds the source)
    rows: int = 0
    report: ImportReport | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "source": self.source, "status": self.status, "rows": self.rows, "error": self.error,
            "added": r.added if r else 0, "changed": r.changed if r else 0,
            "deactivated": r.deactivated if r else 0, "unchanged": r.unchanged if r else 0,
        }  # fmt: skip


async def claim(db: Database, source_id: int, owner: str, now: datetime) -> bool:
    """Take the source's lease if nobody holds a live one: one conditional UPDATE, atomic on both databases."""
    async with db.write() as session:
        result = await session.execute(
            update(sync_sources)
            .where(
                sync_sources.c.id == source_id,
                or_(sync_sources.c.lease_until.is_(None), sync_sources.c.lease_until < now),
            )
            .values(lease_owner=owner, lease_until=now + LEASE)
        )
    return bool(getattr(result, "rowcount", 0))


async def renew(db: Database, source_id: int, owner: str, now: datetime) -> bool:
    """Extend the lease `owner` holds (the heartbeat of a run); False when it holds it no more."""
    async with db.write() as session:
        result = await session.execute(
            update(sync_sources)
            .where(sync_sources.c.id == source_id, sync_sources.c.lease_owner == owner)
            .values(lease_until=now + LEASE)
        )
    return bool(getattr(result, "rowcount", 0))


async def _heartbeat(db: Database, source_id: int, owner: str, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            if not await renew(db, source_id, owner, utcnow()):
                log.warning("sales: catalog sync lost its lease on source %s", source_id)
                return
        except Exception:  # a busy database: try again next beat (the lease still has LEASE - every left)
            log.exception("sales: catalog sync heartbeat failed")


def run_state(run: Mapping[str, Any], source: Mapping[str, Any], now: datetime) -> str:
    """What a run row is: ok | failed | running (its worker holds the source's live lease) | stale (it says
    'running' but its worker no longer holds the lease: the worker died; the next run closes it)."""
    if run["status"] != "running":
        return str(run["status"])
    lease_until = source.get("lease_until")
    live = lease_until is not None and lease_until > now and source.get("lease_owner") == run.get("owner")
    return "running" if live and run.get("owner") else "stale"


def _message(errors: Sequence[RowError]) -> str:
    shown = "; ".join(f"row {e.line}, {e.column}: {e.message}" for e in errors[:SHOWN_ERRORS])
    more = f"; … and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
    return f"{len(errors)} invalid rows, nothing changed: {shown}{more}"


async def run_source(
    db: Database, vault: Vault, source: Source, *, owner: str | None = None, backoff: float = BACKOFF,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> RunResult:  # fmt: skip
    """Claim the source, fetch everything, import all-or-nothing, record the run; release the claim. Runs
    left 'running' by a worker that died (we hold the lease now, so nobody else is running) are closed as
    interrupted first."""
    owner = owner or uuid.uuid4().hex
    started = utcnow()
    if not await claim(db, source.id, owner, started):
        return RunResult(source.name, "busy", error="another worker is running this source")
    async with db.write() as session:
        await session.execute(
            update(sync_runs)
            .where(sync_runs.c.source_id == source.id, sync_runs.c.status == "running")
            .values(status="failed", finished_at=started, error=INTERRUPTED)
        )
        run_id = (
            await session.execute(
                insert(sync_runs)
                .values(
                    source_id=source.id,
                    started_at=started,
                    status="running",
                    rows=0,
                    added=0,
                    changed=0,
                    deactivated=0,
                    unchanged=0,
                    owner=owner,
                )
                .returning(sync_runs.c.id)
            )
        ).scalar_one()
    result = RunResult(source.name, "failed")
    beat = asyncio.create_task(_heartbeat(db, source.id, owner, heartbeat))
    try:
        if source.kind == "json":
            items: Sequence[Any] = await fetch_json(source, vault, backoff=backoff)
        else:
            items = await fetch_sql(source, vault)
        result.rows = len(items)
        sheet, errors = to_sheet(items, source.mapping)
        if errors:
            raise SyncError(_message(errors))
        report = await import_catalog(db, sheet, replace=source.replace,
                                      prices_include_iva=source.prices_include_iva)  # fmt: skip
        result.report = report
        if report.errors or not report.applied:
            raise SyncError(_message(report.errors))
        result.status = "ok"
    except SyncError as exc:
        result.error = str(exc)
    except Exception as exc:  # a bug or a broken secret: recorded on the run, never a half-written catalog
        log.exception("sales: catalog sync %s crashed", source.name)
        result.error = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        beat.cancel()
    finished = utcnow()
    r = result.report if result.status == "ok" else None
    async with db.write() as session:
        await session.execute(
            update(sync_runs).where(sync_runs.c.id == run_id).values(
                finished_at=finished, status=result.status, rows=result.rows, error=result.error,
                added=r.added if r else 0, changed=r.changed if r else 0,
                deactivated=r.deactivated if r else 0, unchanged=r.unchanged if r else 0,
            )
        )  # fmt: skip
        await session.execute(
            update(sync_sources)
            .where(sync_sources.c.id == source.id, sync_sources.c.lease_owner == owner)
            .values(
                last_run_at=finished,
                last_status=result.status,
                last_error=result.error,
                next_run_at=finished + timedelta(minutes=source.every_minutes),
                lease_owner=None,
                lease_until=None,
            )
        )
    if result.status == "failed":
        log.warning("sales: catalog sync %s failed: %s", source.name, result.error)
    return result


async def overview(db: Database, now: datetime, runs: int = 5) -> list[dict[str, Any]]:
    """Every source as the admin shows it (never the secret) with its `state` (idle | running | queued) and its
    latest `runs`, each with `state` (`run_state`)."""
    async with db.read() as session:
        rows = (await session.execute(select(sync_sources).order_by(sync_sources.c.name))).mappings().all()
        out = []
        for row in rows:
            latest = (await session.execute(select(sync_runs).where(sync_runs.c.source_id == row["id"])
                                            .order_by(sync_runs.c.id.desc()).limit(runs))).mappings().all()  # fmt: skip
            out.append(_view(row, latest, now))
    return out


async def source_history(db: Database, name: str, now: datetime, limit: int = 100) -> dict[str, Any] | None:
    async with db.read() as session:
        row = (await session.execute(select(sync_sources).where(sync_sources.c.name == name))).mappings().first()
        if row is None:
            return None
        latest = (await session.execute(select(sync_runs).where(sync_runs.c.source_id == row["id"])
                                        .order_by(sync_runs.c.id.desc()).limit(limit))).mappings().all()  # fmt: skip
    return _view(row, latest, now)


def _view(row: Any, runs: Sequence[Any], now: datetime) -> dict[str, Any]:
    shown = Source.of(row).shown()
    live = row["lease_until"] is not None and row["lease_until"] > now and row["lease_owner"] is not None
    shown["state"] = "running" if live else ("queued" if row["enabled"] and row["next_run_at"] <= now else "idle")
    shown["next_run"] = row["next_run_at"]
    shown["runs"] = [{**dict(r), "state": run_state(r, row, now)} for r in runs]
    return shown


async def request_run(db: Database, name: str, now: datetime) -> str:
    """ "Run now": the source becomes due at once (the worker's next look, within `EVERY_SECONDS`, runs it).
    Returns `queued`, or `running` when a live lease holds it (nothing changed); `SyncError` when unknown or
    disabled."""
    async with db.write() as session:
        row = (await session.execute(select(sync_sources).where(sync_sources.c.name == name))).mappings().first()
        if row is None:
            raise SyncError(f"no sync source named {name!r}")
        if not row["enabled"]:
            raise SyncError(f"the sync source {name!r} is disabled")
        if row["lease_until"] is not None and row["lease_until"] > now:
            return "running"
        await session.execute(update(sync_sources).where(sync_sources.c.id == row["id"]).values(next_run_at=now))
    return "queued"


async def run_named(db: Database, vault: Vault, name: str, *, backoff: float = BACKOFF) -> RunResult:
    source = await get_source(db, name)
    if source is None:
        raise SyncError(f"no sync source named {name!r}")
    return await run_source(db, vault, source, backoff=backoff)


async def run_due(db: Database, vault: Vault, now: datetime, *, owner: str | None = None) -> list[RunResult]:
    """Run every enabled source whose time has come and that no other worker holds."""
    query = select(sync_sources).where(
        sync_sources.c.enabled.is_(True),
        sync_sources.c.next_run_at <= now,
        or_(sync_sources.c.lease_until.is_(None), sync_sources.c.lease_until < now),
    )
    async with db.read() as session:
        due = [Source.of(r) for r in (await session.execute(query.order_by(sync_sources.c.next_run_at))).mappings()]
    return [await run_source(db, vault, s, owner=owner) for s in due]


async def sync_loop(db: Database, vault: Vault, stop: asyncio.Event, every: float = EVERY_SECONDS) -> None:
    owner = uuid.uuid4().hex
    while not stop.is_set():
        try:
            for result in await run_due(db, vault, utcnow(), owner=owner):
                if result.status == "ok":
                    log.info("sales: catalog sync %s: %s", result.source, result.to_json())
        except Exception:  # the supervisor restarts crashed loops; one bad source must not stop the others
            log.exception("sales: catalog sync loop failed")
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


def sync_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The capability's job (`JobSpec`): due sources on the container's database and Vault."""
    return functools.partial(sync_loop, app.ctx.db, app.ctx.vault)
