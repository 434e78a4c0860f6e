"""The `metrics-aggregate` job: raw messages, kernel events and capability counters -> `metrics_daily`,
`metrics_latency` and `metrics_sessions` (docs/metrics.md, "Storage").

Incremental and idempotent: a run finds the earliest moment new rows can change (new message, event and
inbound-event ids since its watermarks, minus the seen-but-unanswered window; at least IDLE + SEEN_WINDOW
back from now, so windows that close with time are judged), moves it back to the start of any stored session
still open then, and recomputes every day from there — deleting that range's rows and writing them anew in one
transaction. A re-run over the same rows writes the same numbers; days before the range are never touched.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, literal, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import Conversation, EventLog, InboundEventRow, Message
from otklik.capabilities.metrics import models as m
from otklik.capabilities.metrics.compute import EVENT_KINDS, Acc, Cnt, Ev, Item, Msg, Prev, Session, item_key, process
from otklik.capabilities.metrics.definitions import IDLE, SEEN_WINDOW
from otklik.clock import utcnow
from otklik.platform import business_hours as bh
from otklik.platform.plugins import Capability, Counter, resolve

log = logging.getLogger(__name__)
EVERY_SECONDS = 60.0
CHUNK = 400  # conversations per read
WRITE_BATCH = 2000
WATERMARKS = ("messages", "events", "inbound")  # and "run_at": the last run's time (epoch seconds)


@dataclass(frozen=True, slots=True)
class RunResult:
    start: date  # the first day recomputed
    conversations: int  # conversations read
    sessions: int
    rows: int


def counters_of(capabilities: Iterable[Capability]) -> tuple[Counter, ...]:
    """Every `Counter` the plugged-in capabilities declare."""
    out: list[Counter] = []
    for capability in capabilities:
        if capability.counters:
            out.extend(resolve(capability.counters))
    return tuple(out)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def _watermarks(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(m.state.c.key, m.state.c.value))
    return {str(k): int(v) for k, v in rows}


async def _tops(session: AsyncSession) -> dict[str, int]:
    return {
        "messages": int(await session.scalar(select(func.max(Message.id))) or 0),
        "events": int(await session.scalar(select(func.max(EventLog.id))) or 0),
        "inbound": int(await session.scalar(select(func.max(InboundEventRow.id))) or 0),
    }


async def _earliest_change(session: AsyncSession, marks: dict[str, int], now: datetime) -> datetime:
    """The earliest moment the rows added since the watermarks, or the time passed since the last run, can
    change a number (a session or a seen-but-unanswered window that closed meanwhile)."""
    last_run = datetime.fromtimestamp(marks.get("run_at", 0), tz=UTC) if marks.get("run_at") else now
    times: list[datetime] = [min(now, last_run) - IDLE - SEEN_WINDOW]
    first_new = await session.scalar(select(func.min(Message.created_at)).where(Message.id > marks["messages"]))
    first_event = await session.scalar(
        select(func.min(EventLog.ts)).where(EventLog.id > marks["events"], EventLog.subject_type == "conversation")
    )
    first_receipt = await session.scalar(  # a read counts on the day it was reported
        select(func.min(InboundEventRow.received_at)).where(InboundEventRow.id > marks["inbound"])
    )
    times += [t for t in (first_new, first_event, first_receipt) if t is not None]
    return min(times) - SEEN_WINDOW


async def _start_day(session: AsyncSession, changed: datetime) -> date:
    """The first day to recompute: the day of `changed`, or of the start of a stored session that was still
    open then (what comes later may change its outcome, counted on the day it started)."""
    s = m.sessions.c
    earliest = await session.scalar(
        select(func.min(s.started_at)).where(
            s.started_at < changed,
            or_(and_(s.closed_at.is_(None), s.last_buyer_at > changed - IDLE), s.closed_at >= changed),
        )
    )
    return min(changed, earliest or changed).date()


async def _conversations(session: AsyncSession, since: datetime, full: bool, extra: Iterable[int]) -> list[int]:
    if full:
        ids = set((await session.execute(select(Conversation.id))).scalars())
    else:
        ids = set(
            (await session.execute(select(Conversation.id).where(Conversation.last_message_at >= since))).scalars()
        )
        subjects = await session.execute(
            select(EventLog.subject_id)
            .where(EventLog.ts >= since, EventLog.subject_type == "conversation", EventLog.kind.in_(EVENT_KINDS))
            .distinct()
        )
        ids |= {int(s) for s in subjects.scalars() if s and s.isdigit()}
        ids |= await _read_since(session, since)
    ids |= set(extra)
    return sorted(ids)


async def _read_since(session: AsyncSession, since: datetime) -> set[int]:
    """The conversations with a read receipt since `since` (the newest inbound events, read backwards by id)."""
    found: set[int] = set()
    below: int | None = None
    while True:
        query = select(InboundEventRow.id, InboundEventRow.conversation_id, InboundEventRow.received_at)
        if below is not None:
            query = query.where(InboundEventRow.id < below)
        rows = (await session.execute(query.order_by(InboundEventRow.id.desc()).limit(5000))).all()
        for row_id, conversation_id, received in rows:
            if received < since:
                return found
            if conversation_id is not None:
                found.add(int(conversation_id))
            below = int(row_id)
        if len(rows) < 5000:
            return found


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where one conversation's stream starts: at the recompute's start, earlier at the start of the stored
    session open then (carried: recomputed whole, counted from the recompute's start), or at a message sent
    before and read since (its session, likewise)."""

    at: datetime
    prev: Prev | None


async def _anchors(session: AsyncSession, chunk: Sequence[int], since: datetime) -> dict[int, Anchor]:
    early = dict(
        (
            await session.execute(
                select(Message.conversation_id, func.min(Message.created_at))
                .where(Message.conversation_id.in_(chunk), Message.read_at >= since, Message.created_at < since)
                .group_by(Message.conversation_id)
            )
        ).all()
    )
    s = m.sessions.c
    stored: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    rows = await session.execute(
        select(s.conversation_id, s.seq, s.started_at, s.last_buyer_at, s.closed_at, s.source)
        .where(s.conversation_id.in_(chunk), s.started_at < since)
        .order_by(s.conversation_id, s.started_at)
    )
    for row in rows:
        stored[int(row[0])].append(tuple(row[1:]))
    out: dict[int, Anchor] = {}
    for conversation_id in chunk:
        point = min(since, early.get(conversation_id) or since)
        before = [r for r in stored.get(conversation_id, []) if r[1] <= point]
        if not before:
            out[conversation_id] = Anchor(point, None)
            continue
        seq, started, last_buyer, closed, source = before[-1]
        still_open = last_buyer + IDLE >= point and (closed is None or closed >= point)
        if still_open:
            out[conversation_id] = Anchor(started, Prev(int(seq) - 1, str(source)) if seq > 1 else None)
        else:
            out[conversation_id] = Anchor(point, Prev(int(seq), str(source)))
    return out


async def _items(session: AsyncSession, chunk: Sequence[int], anchors: dict[int, Anchor]) -> dict[int, list[Item]]:
    since = min(a.at for a in anchors.values())
    items: dict[int, list[Item]] = defaultdict(list)
    rows = await session.execute(
        select(
            Message.conversation_id, Message.id, Message.direction, Message.author, Message.status,
            Message.created_at, Message.sent_at, Message.read_at,
        )
        .where(Message.conversation_id.in_(chunk), Message.created_at >= since)
        .order_by(Message.conversation_id, Message.id)
    )  # fmt: skip
    for conversation_id, message_id, direction, author, status, created, sent, read in rows:
        if created >= anchors[conversation_id].at:
            items[int(conversation_id)].append(Msg(int(message_id), direction, author, status, created, sent, read))
    events = await session.execute(
        select(EventLog.subject_id, EventLog.id, EventLog.ts, EventLog.kind, EventLog.data, EventLog.actor).where(
            EventLog.subject_type == "conversation",
            EventLog.subject_id.in_([str(c) for c in chunk]),
            EventLog.ts >= since,
            EventLog.kind.in_(EVENT_KINDS),
        )
    )
    for subject, event_id, ts, kind, data, actor in events:
        if ts >= anchors[int(subject)].at:
            items[int(subject)].append(Ev(int(event_id), ts, kind, data if isinstance(data, dict) else {}, actor or ""))
    return items


def _business_ms(schedule: bh.Schedule) -> Callable[[datetime, datetime], int]:
    def measure(start: datetime, end: datetime) -> int:
        return int(bh.open_seconds(schedule, start, end) * 1000)

    return measure


async def recompute(
    db: Database,
    counters: Sequence[Counter] = (),
    schedule: bh.Schedule | None = None,
    *,
    now: datetime | None = None,
    full: bool = False,
) -> RunResult:
    """One run of the job (see the module's docstring). `full`: from the first message ever."""
    now = now or utcnow()
    schedule = schedule or bh.Schedule()
    async with db.read() as session:
        marks = await _watermarks(session)
        tops = await _tops(session)
        if full or set(marks) < set(WATERMARKS):
            first = await session.scalar(
                select(Message.created_at).where(Message.id == select(func.min(Message.id)).scalar_subquery())
            )
            start = min((first or now).date(), (now - IDLE - SEEN_WINDOW).date())
            full = True
        else:
            start = await _start_day(session, await _earliest_change(session, marks, now))
            hourly = await session.scalar(  # a past "today", still per hour: folded into a day now
                select(func.min(m.daily.c.day)).where(m.daily.c.hour >= 0, m.daily.c.day < now.date())
            )
            if hourly is not None:
                start = min(start, hourly)
        since = _midnight(start)
        counted: dict[int, list[Cnt]] = defaultdict(list)
        loose: list[tuple[datetime, str]] = []
        for counter in counters:
            for when, conversation_id in await counter.fn(session, since, now + timedelta(seconds=1)):
                if conversation_id is None:
                    loose.append((when, counter.name))
                else:
                    counted[int(conversation_id)].append(Cnt(when, counter.name))
        conversation_ids = await _conversations(session, since, full, counted)
    acc = Acc(now.date(), since)
    for when, name in loose:
        acc.add(when, (0, "", "", ""), name)
    found: list[Session] = []
    measure = _business_ms(schedule)
    for offset in range(0, len(conversation_ids), CHUNK):
        chunk = conversation_ids[offset : offset + CHUNK]
        async with db.read() as session:
            pairs = await session.execute(
                select(Conversation.id, Conversation.channel_account_id).where(Conversation.id.in_(chunk))
            )
            accounts = {int(c): int(a) for c, a in pairs}
            anchors = await _anchors(session, chunk, since)
            items = await _items(session, chunk, anchors)
        for conversation_id in chunk:
            anchor = anchors[conversation_id]
            stream = items.get(conversation_id, []) + [c for c in counted.get(conversation_id, []) if c.ts >= anchor.at]
            if not stream or conversation_id not in accounts:
                continue
            stream.sort(key=item_key)
            found += process(
                conversation_id, accounts[conversation_id], stream, anchor.prev,
                now=now, acc=acc, business_ms=measure,
            )  # fmt: skip
        await asyncio.sleep(0)  # let the web process breathe between chunks
    rows = await _write(db, start, found, acc, {**tops, "run_at": int(now.timestamp())})
    return RunResult(start, len(conversation_ids), len(found), rows)


async def _write(db: Database, start: date, found: list[Session], acc: Acc, tops: dict[str, int]) -> int:
    daily = [
        dict(zip(m.KEY, key, strict=True)) | dict(zip(m.COUNTERS, values, strict=True))
        for key, values in acc.rows.items()
    ]
    latency = [
        dict(zip((*m.KEY, "metric", "bucket"), key, strict=True)) | {"count": n} for key, n in acc.latency.items()
    ]
    sessions = [s.row() for s in found]
    carried = [{"c": s.conversation_id, "at": s.started_at} for s in found if s.started_at < _midnight(start)]
    async with db.write() as session:
        await session.execute(delete(m.daily).where(m.daily.c.day >= start))
        await session.execute(delete(m.latency).where(m.latency.c.day >= start))
        await session.execute(delete(m.sessions).where(m.sessions.c.started_at >= _midnight(start)))
        if carried:  # sessions begun before the range, recomputed whole: their stored rows are replaced
            c = m.sessions.c
            await session.execute(
                delete(m.sessions).where(c.conversation_id == bindparam("c"), c.started_at == bindparam("at")),
                carried,
            )
        for table, values in ((m.daily, daily), (m.latency, latency), (m.sessions, sessions)):
            for offset in range(0, len(values), WRITE_BATCH):
                await session.execute(insert(table), values[offset : offset + WRITE_BATCH])
        await _roll_up(session, start)
        await session.execute(delete(m.state))
        await session.execute(insert(m.state), [{"key": k, "value": v} for k, v in tops.items()])
    return len(daily) + len(latency)


async def _roll_up(session: AsyncSession, start: date) -> None:
    """The rollup rows of the days from `start`, added up from the day rows just written (same transaction)."""
    await session.execute(delete(m.rollup).where(m.rollup.c.day >= start))
    await session.execute(delete(m.latency_rollup).where(m.latency_rollup.c.day >= start))
    d, lat = m.daily.c, m.latency.c
    for dim in m.ROLLUP_DIMS:
        key_d = literal("") if dim == "all" else getattr(d, dim)
        key_l = literal("") if dim == "all" else getattr(lat, dim)
        group_d = [d.day, d.account_id] if dim == "all" else [d.day, d.account_id, key_d]
        group_l = [lat.day, lat.account_id] if dim == "all" else [lat.day, lat.account_id, key_l]
        await session.execute(
            insert(m.rollup).from_select(
                ["day", "account_id", "dim", "key", *m.COUNTERS],
                select(d.day, d.account_id, literal(dim), key_d, *(func.sum(getattr(d, c)) for c in m.COUNTERS))
                .where(d.day >= start)
                .group_by(*group_d),
            )
        )
        await session.execute(
            insert(m.latency_rollup).from_select(
                ["day", "account_id", "dim", "key", "metric", "bucket", "count"],
                select(lat.day, lat.account_id, literal(dim), key_l, lat.metric, lat.bucket, func.sum(lat.count))
                .where(lat.day >= start)
                .group_by(*group_l, lat.metric, lat.bucket),
            )
        )


async def schedule_of(db: Database) -> bh.Schedule:
    """The business hours the admin set (an operator's first response counts only those)."""
    from otklik.conversations.settings_store import SettingsStore

    return (await SettingsStore(db).load()).hours


async def aggregate_loop(app: Any, stop: asyncio.Event, every: float = EVERY_SECONDS) -> None:
    """Recompute now and then every minute until `stop`; several workers may run it (idempotent)."""
    counters = counters_of(app.capabilities)
    while not stop.is_set():
        try:
            result = await recompute(app.db, counters, await schedule_of(app.db))
            log.debug("metrics: recomputed from %s (%d conversations)", result.start, result.conversations)
        except (IntegrityError, DBAPIError) as exc:  # another worker wrote the same range first
            log.warning("metrics: recompute deferred (%s)", type(exc).__name__)
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


def aggregate_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The capability's job (`JobSpec`): the recompute loop on the container."""
    return functools.partial(aggregate_loop, app)
