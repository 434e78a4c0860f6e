"""The numbers for a date range and filters, read from the aggregate rows (never from raw messages), and the
conversations behind a number (from `metrics_sessions`). The admin, the API and the CLI all call `report`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount
from otklik.capabilities.metrics import models as m
from otklik.capabilities.metrics.definitions import (
    HANDOFF_CLASSES,
    READS_ALWAYS_REPORTED,
    SEEN_WINDOW,
    Filters,
    percentiles,
)
from otklik.core.errors import InvalidInput

#: The KPIs' targets (issue 21, brief 003).
TARGETS = {
    "handled_by_bot_share": 0.60,  # at least
    "bot_response_p90_ms": 10_000,  # at most
    "bot_over_10s_share": 0.10,  # at most
    "lead_booking": 0.15,  # at least (the brief's 15-30 %)
}
DRILLS = ("conversations", "reopened", "handoffs", "bot_handled", "seen_unanswered", "not_bot_handled")
MAX_LIST = 500


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    kind: str
    pack: str


async def accounts(db: Database) -> dict[int, Account]:
    async with db.read() as session:
        rows = await session.execute(
            select(ChannelAccount.id, ChannelAccount.name, ChannelAccount.kind, ChannelAccount.pack)
        )
        return {int(i): Account(int(i), n, k, p) for i, n, k, p in rows}


def account_scope(filters: Filters, known: Mapping[int, Account], kinds: Sequence[str] = ()) -> list[int] | None:
    """The channel account ids the filters allow (None: every one). An unknown channel kind, pack or account
    is refused, so a typo is not read as "no data"."""
    if filters.channel is None and filters.pack is None and filters.account is None:
        return None
    if filters.channel is not None and filters.channel not in set(kinds) | {a.kind for a in known.values()}:
        raise InvalidInput(f"channel: no channel kind {filters.channel!r}")
    if filters.pack is not None and filters.pack not in {a.pack for a in known.values()}:
        raise InvalidInput(f"pack: no channel account uses the pack {filters.pack!r}")
    if filters.account is not None and filters.account not in known:
        raise InvalidInput(f"account: no channel account {filters.account}")
    return [
        a.id
        for a in known.values()
        if (filters.channel is None or a.kind == filters.channel)
        and (filters.pack is None or a.pack == filters.pack)
        and (filters.account is None or a.id == filters.account)
    ]


def _where(table: Any, filters: Filters, scope: list[int] | None) -> list[Any]:
    c = table.c
    out = [c.day >= filters.first, c.day <= filters.last]
    if scope is not None:
        out.append(c.account_id.in_(scope or [-1]))
    for key in ("source", "flow", "operator"):
        value = getattr(filters, key)
        if value is not None:
            out.append(getattr(c, key) == value)
    return out


#: The slices a report adds up in SQL, one GROUP BY each: name -> column.
VIEWS = {"day": "day", "account": "account_id", "source": "source", "flow": "flow", "operator": "operator",
         "hour": "hour"}  # fmt: skip


def _view_where(name: str, table: Any) -> list[Any]:
    if name == "operator":
        return [table.c.operator != ""]
    if name == "hour":
        return [table.c.hour >= 0]
    return []


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(slots=True)
class Figures:
    """Counters and histograms of one slice (the whole range, a channel, a source, a day…)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(m.COUNTERS, 0))
    bot: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    operator: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, values: Sequence[int]) -> None:
        for name, value in zip(m.COUNTERS, values, strict=True):
            self.counts[name] += int(value or 0)

    def numbers(self) -> dict[str, Any]:
        c = self.counts
        bot = percentiles(self.bot)
        operator = percentiles(self.operator)
        return {
            "conversations": c["conversations"],
            "reopened": c["reopened"],
            "messages_in": c["messages_in"],
            "messages_out": c["messages_out"],
            "handoffs": c["handoffs"],
            "handoff_rate": _ratio(c["handoffs"], c["conversations"]),
            "handoffs_by_reason": {k: c["handoffs_" + k] for k in HANDOFF_CLASSES},
            "bot_handled": c["bot_handled"],
            "could_handoff": c["could_handoff"],
            "handled_by_bot_share": _ratio(c["bot_handled"], c["could_handoff"]),
            "bot_response_ms": {
                **bot,
                "count": c["bot_replies"],
                "over_10s": c["bot_slow"],
                "over_10s_share": _ratio(c["bot_slow"], c["bot_replies"]),
            },
            "operator_first_response_ms": {**operator, "count": c["operator_replies"]},
            "seen_unanswered": c["seen_unanswered"],
            "leads": c["leads"],
            "bookings": c["bookings"],
            "orders": c["orders"],
            "claims": c["claims"],
            "conversion_lead_booking": _ratio(c["bookings"], c["leads"]),
            "conversion_conversation_order": _ratio(c["orders"], c["conversations"]),
        }


@dataclass(slots=True)
class Report:
    filters: Filters
    total: Figures
    by_account: dict[int, Figures]
    by_source: dict[str, Figures]
    by_flow: dict[str, Figures]
    by_operator: dict[str, Figures]
    by_day: dict[date, Figures]
    by_hour: dict[int, Figures]  # the last day of the range, when it is today: per UTC hour
    lower_bound: bool
    accounts: dict[int, Account]

    def json(self) -> dict[str, Any]:
        def table(items: Mapping[Any, Figures], name: str) -> list[dict[str, Any]]:
            return [{name: key, **slice_.numbers()} for key, slice_ in items.items()]

        channels: dict[str, Figures] = defaultdict(Figures)
        for account_id, figures in self.by_account.items():
            _merge(channels[self.accounts[account_id].kind if account_id in self.accounts else "-"], figures)
        return {
            "from": self.filters.first.isoformat(),
            "to": self.filters.last.isoformat(),
            "filters": {k: v for k, v in self.filters.params().items() if k not in ("from", "to")},
            **self.total.numbers(),
            "seen_unanswered_lower_bound": self.lower_bound,
            "seen_unanswered_window_hours": int(SEEN_WINDOW.total_seconds() // 3600),
            "targets": TARGETS,
            "by_channel": table(channels, "channel"),
            "by_account": [
                {"account": k, "name": self.accounts[k].name if k in self.accounts else "", **f.numbers()}
                for k, f in self.by_account.items()
            ],
            "by_source": table(self.by_source, "source"),
            "by_flow": table(self.by_flow, "flow"),
            "by_operator": table(self.by_operator, "operator"),
            "by_day": [{"day": d.isoformat(), **f.numbers()} for d, f in self.by_day.items()],
        }


def _merge(into: Figures, other: Figures) -> None:
    for k, v in other.counts.items():
        into.counts[k] += v
    for b, n in other.bot.items():
        into.bot[b] += n
    for b, n in other.operator.items():
        into.operator[b] += n


#: Where each view reads from the rollup rows: (dimension, grouping column).
ROLLUP_VIEWS = {"day": ("all", "day"), "account": ("all", "account_id"), "source": ("source", "key"),
                "flow": ("flow", "key"), "operator": ("operator", "key")}  # fmt: skip


def rolled_up(filters: Filters) -> bool:
    """A report without a source, flow or operator filter adds up rollup rows (per day and channel account)."""
    return filters.source is None and filters.flow is None and filters.operator is None


async def report(
    db: Database,
    filters: Filters,
    *,
    kinds: Sequence[str] = (),
    known: Mapping[int, Account] | None = None,
    rollups: bool = True,
) -> Report:
    """The numbers of `filters`. `rollups=False` reads the day rows even where rollups could answer (the tests
    compare both)."""
    known = dict(known) if known is not None else await accounts(db)
    scope = account_scope(filters, known, kinds)
    views: dict[str, dict[Any, Figures]] = {name: defaultdict(Figures) for name in VIEWS}
    async with db.read() as session:
        for name, column in VIEWS.items():
            if rollups and rolled_up(filters) and name in ROLLUP_VIEWS:
                dim, group = ROLLUP_VIEWS[name]
                daily, latency = m.rollup, m.latency_rollup
                extra_d = [daily.c.dim == dim, *([daily.c.key != ""] if dim == "operator" else [])]
                extra_l = [latency.c.dim == dim, *([latency.c.key != ""] if dim == "operator" else [])]
            else:
                group, daily, latency = column, m.daily, m.latency
                extra_d, extra_l = _view_where(name, daily), _view_where(name, latency)
            d, lat = daily.c, latency.c
            key_d, key_l = getattr(d, group), getattr(lat, group)
            rows = await session.execute(
                select(key_d, *(func.sum(getattr(d, counter)) for counter in m.COUNTERS))
                .where(*_where(daily, filters, scope), *extra_d)
                .group_by(key_d)
            )
            for key, *values in rows:
                views[name][key].add(values)
            histos = await session.execute(
                select(key_l, lat.metric, lat.bucket, func.sum(lat.count))
                .where(*_where(latency, filters, scope), *extra_l)
                .group_by(key_l, lat.metric, lat.bucket)
            )
            for key, metric, bucket, n in histos:
                getattr(views[name][key], metric)[int(bucket)] += int(n)
    total = Figures()
    for figures in views["account"].values():
        _merge(total, figures)
    by_day, by_account, by_source = views["day"], views["account"], views["source"]
    by_flow, by_operator, by_hour = views["flow"], views["operator"], views["hour"]
    in_scope = [a for a in known.values() if scope is None or a.id in scope]
    lower_bound = not in_scope or any(a.kind not in READS_ALWAYS_REPORTED for a in in_scope)
    return Report(
        filters, total, _sorted(by_account), _sorted(by_source), _sorted(by_flow), _sorted(by_operator),
        dict(sorted(by_day.items())), dict(sorted(by_hour.items())), lower_bound, known,
    )  # fmt: skip


def _sorted(items: Mapping[Any, Figures]) -> dict[Any, Figures]:
    return dict(sorted(items.items(), key=lambda kv: (-kv[1].counts["conversations"], str(kv[0]))))


# --- the conversations behind a number -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Behind:
    conversation_id: int
    started_at: datetime
    account_id: int
    source: str
    flow: str
    handoff_reason: str
    seen_unanswered: int


async def behind(
    db: Database, filters: Filters, metric: str, *, kinds: Sequence[str] = (), limit: int = MAX_LIST
) -> list[Behind]:
    """The sessions behind a number: those in the range (started in it, or with a seen-but-unanswered case
    there) with the property, newest first, at most `limit`."""
    if metric not in DRILLS:
        raise InvalidInput(f"metric: one of {', '.join(DRILLS)}")
    scope = account_scope(filters, await accounts(db), kinds)
    s = m.sessions.c
    where: list[Any] = [s.started_at < filters.until]
    if metric == "seen_unanswered":
        where += [s.seen_unanswered > 0, s.last_at >= filters.since - SEEN_WINDOW]
    else:
        where.append(s.started_at >= filters.since)
    if metric == "reopened":
        where.append(s.seq > 1)
    elif metric == "handoffs":
        where.append(s.handoff_at.is_not(None))
    elif metric == "bot_handled":
        where.append(s.bot_handled.is_(True))
    elif metric == "not_bot_handled":
        where += [s.ended.is_(True), s.could_handoff.is_(True), s.bot_handled.is_(False)]
    if scope is not None:
        where.append(s.account_id.in_(scope or [-1]))
    for key in ("source", "flow"):
        value = getattr(filters, key)
        if value is not None:
            where.append(getattr(s, key) == value)
    async with db.read() as session:
        rows = await session.execute(
            select(s.conversation_id, s.started_at, s.account_id, s.source, s.flow, s.handoff_reason,
                   s.seen_unanswered)
            .where(and_(*where)).order_by(s.started_at.desc(), s.id.desc()).limit(limit)
        )  # fmt: skip
        return [Behind(int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], int(r[6])) for r in rows]


async def last_computed(session: AsyncSession) -> date | None:
    """The newest day with aggregate rows (a dashboard says when the job has not run)."""
    day: date | None = await session.scalar(select(func.max(m.daily.c.day)))
    return day


def trend_days(filters: Filters) -> list[date]:
    return [filters.first + timedelta(days=i) for i in range((filters.last - filters.first).days + 1)]
