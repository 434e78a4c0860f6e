"""Care incidents: one row per care case of a conversation (category, product, outcome, rating) and the
figures the admin dashboard shows (counts by category/product/time, share resolved by the bot, ratings,
top phrases, CSV export). Service functions only; the admin pages call them."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.capabilities.care.categories import CARE_CATEGORIES, OUTCOMES
from otklik.capabilities.care.models import CareIncident
from otklik.conversations.nlu.text import lemmas
from otklik.conversations.repo import as_tx
from otklik.core.cells import formula_safe
from otklik.core.errors import InvalidInput

if TYPE_CHECKING:
    from otklik.conversations.timers import QuickTx

Bucket = Literal["day", "week", "month"]
_STOP_WORDS = (
    "и в во на не что это я мы вы он она они с со у к по за из от до а но же ли бы то как так мой ваш "
    "быть весь всё этот тот там тут здравствуйте добрый день пожалуйста спасибо вот уже ещё очень"
)
_STOP_LEMMAS = frozenset(_STOP_WORDS.split(" "))


@dataclass(frozen=True, slots=True)
class IncidentInput:
    """What a flow reports about a case. `rating` 1-5 or None; `outcome` one of OUTCOMES, or None to keep
    the case's current outcome (a new case starts as "unresolved").

    `answered`: the bot has given its answer (how to return, the article…) but the buyer has not said it was
    enough: the case stays "unresolved" and remembers it. `confirm`: the buyer has said so (a good rating,
    "спасибо, понятно") or the case closed without a hand-off: an answered, unresolved case becomes
    "resolved_by_bot". A confirmation never changes a case that was handed off or never answered."""

    conversation_id: int
    channel_account_id: int
    case_key: str
    category: str
    outcome: str | None = None
    product: str = ""
    barcode: str = ""
    rating: int | None = None
    phrase: str = ""
    needs_check: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    answered: bool = False
    confirm: bool = False


def _check(data: IncidentInput) -> None:
    if data.category not in CARE_CATEGORIES:
        raise InvalidInput(f"unknown care category {data.category!r}; use one of {', '.join(CARE_CATEGORIES)}")
    if data.outcome is not None and data.outcome not in OUTCOMES:
        raise InvalidInput(f"unknown outcome {data.outcome!r}; use one of {', '.join(OUTCOMES)}")
    if data.rating is not None and not 1 <= data.rating <= 5:
        raise InvalidInput("rating must be 1..5")
    if not data.case_key or len(data.case_key) > 64:
        raise InvalidInput("case key: 1-64 characters")


_INCIDENT = select(
    CareIncident.id,
    CareIncident.outcome,
    CareIncident.product,
    CareIncident.barcode,
    CareIncident.phrase,
    CareIncident.rating,
    CareIncident.needs_check,
    CareIncident.details,
).where(CareIncident.conversation_id == bindparam("conversation"), CareIncident.case_key == bindparam("case"))
_NEW_INCIDENT = insert(CareIncident)
_UPDATE_INCIDENT = update(CareIncident).where(CareIncident.id == bindparam("incident"))


async def record_incident(tx: QuickTx | AsyncSession, data: IncidentInput, now: datetime) -> int:
    """Create or update the incident of (conversation, case): idempotent, so running it again changes
    nothing. Later calls fill in what is known now (outcome, rating, product…); an empty value never erases
    an earlier one. Core statements: an ORM session, or the quick action's step transaction."""
    _check(data)
    tx = as_tx(tx)
    found = await tx.fetch(_INCIDENT, {"conversation": data.conversation_id, "case": data.case_key})
    old = found[0] if found else None
    details = {**((old.details or {}) if old else {}), **data.details}
    if data.answered:
        details["answered"] = True
    outcome = data.outcome or (old.outcome if old else "unresolved")
    if data.confirm and outcome == "unresolved" and details.get("answered"):
        outcome = "resolved_by_bot"
    values: dict[str, Any] = {
        "category": data.category,
        "outcome": outcome,
        "product": data.product[:120] or (old.product if old else ""),
        "barcode": data.barcode[:32] or (old.barcode if old else ""),
        "phrase": " ".join(data.phrase.split())[:300] or (old.phrase if old else ""),
        "rating": data.rating if data.rating is not None else (old.rating if old else None),
        "needs_check": data.needs_check or bool(old and old.needs_check),
        "details": details,
        "updated_at": now,
    }
    if old is None:
        return await tx.insert_id(
            _NEW_INCIDENT,
            {
                **values,
                "conversation_id": data.conversation_id,
                "case_key": data.case_key,
                "channel_account_id": data.channel_account_id,
                "created_at": now,
            },
        )
    await tx.execute(_UPDATE_INCIDENT, {**values, "incident": old.id})
    if data.confirm:
        await _confirm_answered(tx, data.conversation_id, now)
    return int(old.id)


_OPEN_CASES = select(CareIncident.id, CareIncident.details).where(
    CareIncident.conversation_id == bindparam("conversation"), CareIncident.outcome == "unresolved"
)
_RESOLVED = update(CareIncident).where(CareIncident.id == bindparam("incident"), CareIncident.outcome == "unresolved")


async def _confirm_answered(tx: Any, conversation_id: int, now: datetime) -> None:
    """A confirmation covers every case the bot answered in the conversation: a buyer who rates the end of
    the talk well (or goes quiet) after an interrupted case was answered too has had both answers."""
    for row in await tx.fetch(_OPEN_CASES, {"conversation": conversation_id}):
        if (row.details or {}).get("answered"):
            await tx.execute(_RESOLVED, {"incident": row.id, "outcome": "resolved_by_bot", "updated_at": now})


# --- dashboard ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC; `Period.last(days=30)` ends now."""

    start: datetime
    end: datetime

    @classmethod
    def last(cls, days: int = 30, now: datetime | None = None) -> Period:
        end = now or datetime.now(UTC)
        return cls(end - timedelta(days=days), end)


@dataclass(frozen=True, slots=True)
class IncidentStats:
    """Everything the incidents dashboard shows for one period."""

    total: int
    by_category: dict[str, int]
    by_product: dict[str, int]
    by_outcome: dict[str, int]
    resolved_by_bot_share: float  # 0..1 of all incidents
    rated: int
    average_rating: float | None
    ratings: dict[int, int]  # stars -> count
    needs_check: int
    series: list[tuple[str, dict[str, int]]]  # (bucket start, {category: count}), oldest first
    top_phrases: list[tuple[str, int]]


async def _rows(db: Database, period: Period, category: str | None, product: str | None) -> list[CareIncident]:
    query = select(CareIncident).where(CareIncident.created_at >= period.start, CareIncident.created_at < period.end)
    if category:
        query = query.where(CareIncident.category == category)
    if product:
        query = query.where(CareIncident.product == product)
    async with db.read() as session:
        return list((await session.execute(query.order_by(CareIncident.created_at, CareIncident.id))).scalars())


def bucket_start(moment: datetime, bucket: Bucket) -> str:
    """The ISO date of the day, the week's Monday or the month's first day containing `moment` (UTC)."""
    day = moment.astimezone(UTC).date()
    if bucket == "week":
        day = day - timedelta(days=day.weekday())
    elif bucket == "month":
        day = day.replace(day=1)
    return day.isoformat()


def top_phrases(texts: list[str], limit: int = 10, language: str = "ru") -> list[tuple[str, int]]:
    """The most frequent content words and word pairs (by lemma) in buyers' opening messages."""
    counts: Counter[str] = Counter()
    for text in texts:
        words = [w for w in lemmas(text[:300], language) if w not in _STOP_LEMMAS and len(w) > 2]
        grams = set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}
        counts.update(grams)
    return [(g, n) for g, n in counts.most_common(limit * 3) if n > 1 or len(texts) == 1][:limit]


async def incident_stats(
    db: Database,
    period: Period,
    *,
    bucket: Bucket = "day",
    category: str | None = None,
    product: str | None = None,
) -> IncidentStats:
    """Counts by category, product and outcome, the bot's share, ratings, a time series and top phrases."""
    rows = await _rows(db, period, category, product)
    by_outcome = Counter(r.outcome for r in rows)
    ratings = Counter(r.rating for r in rows if r.rating is not None)
    rated = sum(ratings.values())
    series: dict[str, Counter[str]] = {}
    for r in rows:
        series.setdefault(bucket_start(r.created_at, bucket), Counter())[r.category] += 1
    return IncidentStats(
        total=len(rows),
        by_category=dict(Counter(r.category for r in rows).most_common()),
        by_product=dict(Counter(r.product or "—" for r in rows).most_common()),
        by_outcome={o: by_outcome.get(o, 0) for o in OUTCOMES},
        resolved_by_bot_share=round(by_outcome.get("resolved_by_bot", 0) / len(rows), 4) if rows else 0.0,
        rated=rated,
        average_rating=round(sum(k * v for k, v in ratings.items()) / rated, 2) if rated else None,
        ratings={stars: ratings.get(stars, 0) for stars in range(1, 6)},
        needs_check=sum(1 for r in rows if r.needs_check),
        series=[(key, dict(series[key])) for key in sorted(series)],
        top_phrases=top_phrases([r.phrase for r in rows if r.phrase]),
    )


@dataclass(frozen=True, slots=True)
class IncidentView:
    id: int
    created_at: datetime
    category: str
    product: str
    barcode: str
    outcome: str
    rating: int | None
    phrase: str
    needs_check: bool
    conversation_id: int
    details: dict[str, Any]


async def list_incidents(
    db: Database,
    period: Period,
    *,
    category: str | None = None,
    product: str | None = None,
    needs_check: bool | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[IncidentView]:
    """Incidents of the period, newest first (for tables and drill-downs)."""
    rows = await _rows(db, period, category, product)
    rows = [r for r in rows if needs_check is None or bool(r.needs_check) == needs_check]
    rows.reverse()
    return [
        IncidentView(
            r.id,
            r.created_at,
            r.category,
            r.product,
            r.barcode,
            r.outcome,
            r.rating,
            r.phrase,
            bool(r.needs_check),
            r.conversation_id,
            dict(r.details or {}),
        )
        for r in rows[offset : offset + limit]
    ]


CSV_COLUMNS = ("id", "created_at", "category", "product", "barcode", "outcome", "rating", "needs_check", "phrase")


async def incidents_csv(db: Database, period: Period, *, category: str | None = None) -> str:
    """The period's incidents as CSV (UTF-8, comma-separated, header row); formulas are neutralised.
    The file is written in a worker thread: a long period is CPU work the event loop must not do."""
    rows = await list_incidents(db, period, category=category, limit=1_000_000)
    return await asyncio.to_thread(_incidents_csv_text, rows)


def _incidents_csv_text(rows: list[IncidentView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in reversed(rows):
        writer.writerow(
            [
                r.id,
                r.created_at.isoformat(),
                r.category,
                r.product,
                r.barcode,
                r.outcome,
                "" if r.rating is None else r.rating,
                "yes" if r.needs_check else "no",
                csv_safe(r.phrase),
            ]
        )
    return out.getvalue()


def csv_safe(value: str) -> str:
    """Buyer text opened in a spreadsheet must not run as a formula (`core.cells.formula_safe`)."""
    return formula_safe(value)
