"""The metrics from raw rows: one conversation's messages, kernel events and capability counters, in time order,
turned into sessions, counters and response times (docs/metrics.md). Pure: the job (`aggregate.py`) loads
the rows and writes what `Acc` collects.

A *session* (a "conversation" in the metrics) starts with a buyer message when the conversation has none open:
the first ever, the first after an operator closed it, or the first after IDLE without a buyer message. Every
count is attributed to the session it happened in (its channel account, source and flow), on the UTC day it
happened — per hour on `today`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from otklik.capabilities.metrics.definitions import IDLE, SEEN_WINDOW, SLOW_BOT_MS, bucket_of, handoff_class
from otklik.capabilities.metrics.models import COUNTERS

INDEX = {name: i for i, name in enumerate(COUNTERS)}
Dims = tuple[int, str, str, str]  # account_id, source, flow, operator
EVENT_KINDS = (
    "handoff", "start", "flow_end", "message_for_operator", "conversation.close", "conversation.return_to_bot",
    "conversation.reply",
)  # fmt: skip


@dataclass(slots=True)
class Msg:
    id: int
    direction: str  # in | out
    author: str  # buyer | bot | operator | system
    status: str
    created_at: datetime
    sent_at: datetime | None
    read_at: datetime | None


@dataclass(slots=True)
class Ev:
    id: int
    ts: datetime
    kind: str
    data: dict[str, Any]
    actor: str = ""


@dataclass(slots=True)
class Cnt:
    ts: datetime
    name: str


Item = Msg | Ev | Cnt


def item_key(item: Item) -> tuple[datetime, int, int]:
    if isinstance(item, Msg):
        return item.created_at, 0, item.id
    if isinstance(item, Ev):
        return item.ts, 1, item.id
    return item.ts, 2, 0


class Acc:
    """What a recompute adds up: {(day, hour, *dims): counters} and {(day, hour, *dims, metric, bucket): n}.
    `hour` is -1 before `today` and the UTC hour on `today`."""

    def __init__(self, today: date, since: datetime | None = None) -> None:
        self.today = today
        self.since = since  # what happened before is not recomputed: dropped
        self.rows: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(COUNTERS))
        self.latency: dict[tuple[Any, ...], int] = defaultdict(int)

    def _when(self, ts: datetime) -> tuple[date, int]:
        day = ts.date()
        return day, (ts.hour if day == self.today else -1)

    def add(self, ts: datetime, dims: Dims, counter: str, n: int = 1) -> None:
        if self.since is not None and ts < self.since:
            return
        self.rows[(*self._when(ts), *dims)][INDEX[counter]] += n

    def sample(self, ts: datetime, dims: Dims, metric: str, ms: int) -> None:
        if self.since is not None and ts < self.since:
            return
        self.latency[(*self._when(ts), *dims, metric, bucket_of(ms))] += 1


@dataclass(slots=True)
class Prev:
    """What the conversation's stored sessions before the stream's start carry into it: the number of the
    last one and its source."""

    seq: int
    source: str


@dataclass(slots=True)
class Session:
    conversation_id: int
    seq: int
    started_at: datetime
    account_id: int
    source: str
    last_buyer_at: datetime
    last_at: datetime
    source_set: bool = False
    flow: str = ""
    closed_at: datetime | None = None
    could_handoff: bool = False
    bot_turns: int = 0  # buyer messages the bot handled
    handoff_at: datetime | None = None
    handoff_reason: str = ""
    operator_touched: bool = False
    seen_unanswered: int = 0
    ended: bool = False
    bot_handled: bool = False
    counts: list[tuple[datetime, str, int, str]] = field(default_factory=list)  # ts, counter, n, operator
    samples: list[tuple[datetime, str, int, str]] = field(default_factory=list)  # ts, metric, ms, operator

    def row(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id, "seq": self.seq, "started_at": self.started_at,
            "last_buyer_at": self.last_buyer_at, "closed_at": self.closed_at, "account_id": self.account_id,
            "source": self.source, "flow": self.flow, "could_handoff": self.could_handoff,
            "handoff_at": self.handoff_at, "handoff_reason": self.handoff_reason, "last_at": self.last_at,
            "ended": self.ended, "bot_handled": self.bot_handled, "seen_unanswered": self.seen_unanswered,
        }  # fmt: skip


BusinessMs = Callable[[datetime, datetime], int]


def _flow_of(data: dict[str, Any], key: str = "flow") -> str:
    value = data.get(key)
    if value is None and isinstance(data.get("context"), dict):
        value = data["context"].get("flow")
    return str(value or "")[:80]


def process(
    conversation_id: int,
    account_id: int,
    items: list[Item],
    prev: Prev | None,
    *,
    now: datetime,
    acc: Acc,
    business_ms: BusinessMs,
) -> list[Session]:
    """One conversation's items (from the recompute's start, in `item_key` order): its sessions (to store) and
    its counts (into `acc`). `prev` carries the numbering and the source of the session before."""
    operators = {
        int(e.data["message_id"]): actor_login(e.actor)
        for e in items
        if isinstance(e, Ev) and e.kind == "conversation.reply" and isinstance(e.data.get("message_id"), int)
    }
    out: list[Session] = []
    session: Session | None = None
    seq, carried = (prev.seq, prev.source) if prev else (0, "")
    status = "bot"  # bot | waiting | operator | closed: what the kernel's status was, as far as the rows tell
    turn: datetime | None = None  # the first buyer message the bot has not answered yet
    handoff_pending: datetime | None = None
    candidate: tuple[datetime, datetime, Session | None] | None = None  # a read outbound: (sent, read, session)

    def dims(s: Session | None, operator: str = "") -> Dims:
        if s is None:
            return account_id, carried, "", operator
        return account_id, s.source, s.flow, operator

    def count(ts: datetime, name: str, n: int = 1, operator: str = "") -> None:
        if session is not None:
            session.counts.append((ts, name, n, operator))
        else:
            acc.add(ts, dims(None, operator), name, n)

    def judge(until: datetime | None) -> None:
        """The pending read outbound message: unanswered when no buyer message came within the window."""
        nonlocal candidate
        if candidate is None:
            return
        _sent, read, owner = candidate
        if (until is None and read + SEEN_WINDOW <= now) or (until is not None and until > read + SEEN_WINDOW):
            if owner is not None:
                owner.seen_unanswered += 1
                if owner is session:  # still open: its source and flow may yet be set
                    owner.counts.append((read, "seen_unanswered", 1, ""))
                else:
                    acc.add(read, dims(owner), "seen_unanswered")
            else:
                acc.add(read, dims(None), "seen_unanswered")
        candidate = None

    def finish(s: Session, *, followed: bool) -> None:
        nonlocal carried
        s.could_handoff = s.bot_turns > 0
        s.ended = followed or s.closed_at is not None or s.last_buyer_at + IDLE <= now
        s.bot_handled = s.ended and s.could_handoff and s.handoff_at is None and not s.operator_touched
        d = dims(s)
        acc.add(s.started_at, d, "conversations")
        if s.seq > 1:
            acc.add(s.started_at, d, "reopened")
        if s.ended and s.could_handoff:
            acc.add(s.started_at, d, "could_handoff")
        if s.bot_handled:
            acc.add(s.started_at, d, "bot_handled")
        for ts, name, n, operator in s.counts:
            acc.add(ts, dims(s, operator), name, n)
        for ts, metric, ms, operator in s.samples:
            acc.sample(ts, dims(s, operator), metric, ms)
        carried = s.source
        out.append(s)

    for item in items:
        at = item_key(item)[0]
        if session is not None and (
            (session.closed_at is not None and at > session.closed_at) or at > session.last_buyer_at + IDLE
        ):
            finish(session, followed=False)  # closed or idle: what follows belongs to no session until a buyer writes
            session = None
        if isinstance(item, Msg):
            ts = item.created_at
            if item.direction == "in":
                judge(ts)
                if session is None or session.closed_at is not None or ts - session.last_buyer_at > IDLE:
                    if session is not None:
                        finish(session, followed=True)
                    seq += 1
                    session = Session(conversation_id, seq, ts, account_id, carried, ts, ts)
                    if status == "closed":
                        status = "bot"
                    handoff_pending = None if status == "bot" else handoff_pending
                session.last_buyer_at = session.last_at = ts
                count(ts, "messages_in")
                if status == "bot":
                    session.bot_turns += 1
                    if turn is None:
                        turn = ts
                continue
            if item.status == "note":
                continue
            count(ts, "messages_out")
            if session is not None:
                session.last_at = max(session.last_at, ts)
            if item.read_at is not None:
                candidate = (ts, item.read_at, session)
            if item.author == "bot":
                if turn is not None and item.sent_at is not None:
                    ms = int((item.sent_at - turn).total_seconds() * 1000)
                    count(item.sent_at, "bot_replies")
                    if ms > SLOW_BOT_MS:
                        count(item.sent_at, "bot_slow")
                    if session is not None:
                        session.samples.append((item.sent_at, "bot", ms, ""))
                    else:
                        acc.sample(item.sent_at, dims(None), "bot", ms)
                turn = None
            elif item.author == "operator":
                status = "operator"
                turn = None
                if session is not None:
                    session.operator_touched = True
                if handoff_pending is not None:
                    operator = operators.get(item.id, "")
                    ms = business_ms(handoff_pending, ts)
                    count(ts, "operator_replies", 1, operator)
                    if session is not None:
                        session.samples.append((ts, "operator", ms, operator))
                    else:
                        acc.sample(ts, dims(None, operator), "operator", ms)
                    handoff_pending = None
        elif isinstance(item, Ev):
            ts = item.ts
            if session is not None:
                session.last_at = max(session.last_at, ts)
            kind = item.kind
            if kind == "handoff":
                reason = str(item.data.get("reason") or "")
                count(ts, "handoffs")
                count(ts, "handoffs_" + handoff_class(reason))
                status, turn = "waiting", None
                if handoff_pending is None:
                    handoff_pending = ts
                if session is not None:
                    if session.handoff_at is None:
                        session.handoff_at, session.handoff_reason = ts, reason[:80]
                    session.flow = session.flow or _flow_of(item.data)
            elif kind == "start":
                if session is not None:
                    payload = str(item.data.get("payload") or "").strip()[:120]
                    if payload and not session.source_set:
                        session.source, session.source_set = payload, True
                    session.flow = session.flow or _flow_of(item.data)
            elif kind == "flow_end":
                if session is not None:
                    session.flow = session.flow or _flow_of(item.data)
            elif kind == "message_for_operator":
                turn = None  # the buyer's message went to the operator, not the bot
                if status == "bot":  # the stream began while an operator had the conversation
                    status = "waiting"
                    if session is not None and session.bot_turns:
                        session.bot_turns -= 1
            elif kind == "conversation.close":
                status, turn, handoff_pending = "closed", None, None
                if session is not None:
                    session.closed_at = ts
            elif kind == "conversation.return_to_bot":
                status, handoff_pending = "bot", None
        else:
            count(item.ts, item.name)
    judge(None)
    if session is not None:
        finish(session, followed=False)
    return out


def actor_login(actor: str) -> str:
    """`user:alice` -> `alice` (an audit entry's actor)."""
    return actor.split(":", 1)[1][:120] if actor.startswith("user:") else actor[:120]
