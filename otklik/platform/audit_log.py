"""Reading the audit log: filtered, newest first, by cursor (no counts, no offsets).

The event log also holds the bot's own events (many), so "every audit kind" is read as one bounded,
index-backed query per audit prefix (`ix_event_log_kind_ts`) and merged; an actor filter uses
`ix_event_log_actor_ts`, a subject filter `ix_event_log_subject`.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import EventLog
from otklik.core.errors import InvalidInput
from otklik.platform.audit import AUDIT_PREFIXES

PAGE = 50
MAX_EXPORT = 50_000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str = ""  # exact, e.g. user:admin
    kind: str = ""  # exact (settings.business_hours) or a prefix ending with '.' (settings.)
    subject_type: str = ""
    subject_id: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def prefixes(self) -> tuple[str, ...]:
        if not self.kind:
            return AUDIT_PREFIXES
        if self.kind.endswith("."):
            return (self.kind,) if self.kind in AUDIT_PREFIXES or self.kind.startswith(AUDIT_PREFIXES) else ()
        return ()

    def exact_kind(self) -> str | None:
        if self.kind and not self.kind.endswith(".") and self.kind.startswith(AUDIT_PREFIXES):
            return self.kind
        return None


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    ts: datetime
    actor: str
    kind: str
    subject_type: str
    subject_id: str | None
    data: dict[str, Any]


def encode_cursor(entry: Entry) -> str:
    return base64.urlsafe_b64encode(f"{entry.ts.isoformat()}|{entry.id}".encode()).decode()


def decode_cursor(raw: str) -> tuple[datetime, int]:
    try:
        ts, _sep, ident = base64.urlsafe_b64decode(raw.encode()[:200]).decode().partition("|")
        moment, entry_id = datetime.fromisoformat(ts), int(ident)
        if not 0 <= entry_id < 2**63:  # a forged id SQL cannot bind (a 64-bit integer)
            raise ValueError(ident)
        return moment, entry_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the page link is broken; start from the first page") from None


def _prefix(dialect: str, prefix: str) -> ColumnElement[bool]:
    """`kind` starts with `prefix`, written so the (kind, ts) index serves it: GLOB on SQLite (LIKE is
    case-insensitive there and skips the index), LIKE on PostgreSQL."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if dialect == "sqlite":
        return EventLog.kind.op("GLOB")(prefix.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]") + "*")
    return EventLog.kind.like(escaped + "%", escape="\\")


def _base(flt: AuditFilter, before: tuple[datetime, int] | None, limit: int) -> Select[Any]:
    query = select(EventLog)
    if flt.actor:
        query = query.where(EventLog.actor == flt.actor)
    if flt.subject_type:
        query = query.where(EventLog.subject_type == flt.subject_type)
        if flt.subject_id:
            query = query.where(EventLog.subject_id == flt.subject_id)
    if flt.since is not None:
        query = query.where(EventLog.ts >= flt.since)
    if flt.until is not None:
        query = query.where(EventLog.ts < flt.until)
    if before is not None:
        ts, ident = before
        query = query.where(or_(EventLog.ts < ts, and_(EventLog.ts == ts, EventLog.id < ident)))
    return query.order_by(EventLog.ts.desc(), EventLog.id.desc()).limit(limit)


async def _query(
    session: AsyncSession, flt: AuditFilter, before: tuple[datetime, int] | None, limit: int
) -> list[EventLog]:
    dialect = session.get_bind().dialect.name
    exact = flt.exact_kind()
    if exact is not None:
        return list((await session.execute(_base(flt, before, limit).where(EventLog.kind == exact))).scalars())
    prefixes = flt.prefixes()
    if not prefixes:
        return []
    if flt.actor or flt.subject_type:  # that index narrows enough: one query
        condition = or_(*(_prefix(dialect, p) for p in prefixes))
        return list((await session.execute(_base(flt, before, limit).where(condition))).scalars())
    rows: list[EventLog] = []
    for prefix in prefixes:  # one bounded index range scan per prefix
        rows += (await session.execute(_base(flt, before, limit).where(_prefix(dialect, prefix)))).scalars()
    rows.sort(key=lambda r: (r.ts, r.id), reverse=True)
    return rows[:limit]


def _entry(row: EventLog) -> Entry:
    return Entry(row.id, row.ts, row.actor, row.kind, row.subject_type, row.subject_id, dict(row.data or {}))


async def page(db: Database, flt: AuditFilter, cursor: str = "", size: int = PAGE) -> tuple[list[Entry], str | None]:
    """One page, newest first, and the cursor of the next (older) page or None."""
    before = decode_cursor(cursor) if cursor else None
    async with db.read() as session:
        rows = await _query(session, flt, before, size + 1)
    entries = [_entry(r) for r in rows[:size]]
    return entries, encode_cursor(entries[-1]) if len(rows) > size else None


async def export(db: Database, flt: AuditFilter, limit: int = MAX_EXPORT) -> AsyncIterator[Entry]:
    """Every matching entry, newest first, read page by page (at most `limit`)."""
    before: tuple[datetime, int] | None = None
    sent = 0
    while sent < limit:
        batch = min(1000, limit - sent)
        async with db.read() as session:
            rows = await _query(session, flt, before, batch)
        for row in rows:
            yield _entry(row)
        sent += len(rows)
        if len(rows) < batch:
            return
        before = (rows[-1].ts, rows[-1].id)
