"""WB reviews for insights: incremental import with classification, and the dashboard figures
(by product and category, trend over time, example reviews, CSV export). Service functions only."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.wildberries import Feedback, WBClient
from otklik.capabilities.care.classify import ReviewClassifier, review_text
from otklik.capabilities.care.incidents import Bucket, Period, bucket_start, csv_safe
from otklik.capabilities.care.models import WBFeedback
from otklik.capabilities.care.syncstate import load_state, save_state
from otklik.clock import utcnow

BATCH = 200  # rows per transaction: an interrupted import keeps what it stored
OVERLAP = timedelta(days=2)  # re-read the last days: answers and moderation states change


@dataclass(frozen=True, slots=True)
class ImportReport:
    fetched: int
    new: int
    updated: int
    negative: int  # among new and changed rows


def _values(fb: Feedback) -> dict[str, Any]:
    """Columns from WB's payload. The buyer's name is not stored (personal data minimal)."""
    details = fb.product_details
    return {
        "nm_id": fb.nm_id,
        "product_name": details.product_name[:300],
        "supplier_article": details.supplier_article[:120],
        "size": details.size[:64],
        "rating": fb.product_valuation,
        "text": fb.text[:5000],
        "pros": fb.pros[:2000],
        "cons": fb.cons[:2000],
        "photo_count": len(fb.photo_links),
        "matching_size": fb.matching_size[:16],
        "created_date": fb.created_date.astimezone(UTC),
        "answer_text": fb.answer_text[:5000],
        "answer_state": (fb.answer.state if fb.answer else "")[:32],
    }


async def _store(
    session: AsyncSession, account_id: int, batch: list[Feedback], classifier: ReviewClassifier | None
) -> tuple[int, int, int]:
    ids = [fb.id for fb in batch]
    existing = {
        row.feedback_id: row
        for row in (
            await session.execute(
                select(WBFeedback).where(WBFeedback.channel_account_id == account_id, WBFeedback.feedback_id.in_(ids))
            )
        ).scalars()
    }
    now, new, updated, negative = utcnow(), 0, 0, 0
    for fb in batch:
        values = _values(fb)
        row = existing.get(fb.id)
        if row is None:
            row = WBFeedback(channel_account_id=account_id, feedback_id=fb.id[:64], imported_at=now, **values)
            session.add(row)
            new += 1
            changed_text = True
        else:
            changed = {k: v for k, v in values.items() if getattr(row, k) != v}
            if not changed:
                continue
            changed_text = bool({"text", "cons", "rating"} & set(changed))
            for key, value in changed.items():
                setattr(row, key, value)
            updated += 1
        row.updated_at = now
        if changed_text and classifier is not None:
            label = await asyncio.to_thread(classifier.classify, review_text(row.text, row.cons), row.rating)
            row.negative, row.category = label.negative, label.category
            row.confidence, row.classified_by = round(label.confidence * 100), "offline"
        negative += bool(row.negative)
    return new, updated, negative


async def import_feedbacks(
    db: Database,
    client: WBClient,
    account_id: int,
    *,
    classifier: ReviewClassifier | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    full: bool = False,
    page_size: int = 5000,
) -> ImportReport:
    """Import answered and unanswered feedbacks and classify new or changed ones.

    With no dates this is incremental: from the newest feedback of the last successful import (minus two
    days of overlap); `full=True` reads everything; `date_from`/`date_to` import one period. Rate limits
    and 429s are honoured by the client; an interruption keeps the pages already stored.
    """
    state = await load_state(db, account_id)
    since = date_from
    if since is None and not full and state.get("feedbacks_newest"):
        since = datetime.fromisoformat(str(state["feedbacks_newest"])) - OVERLAP
    fetched = new = updated = negative = 0
    newest: datetime | None = None
    for answered in (False, True):
        batch: list[Feedback] = []
        pages = client.iter_feedbacks(is_answered=answered, date_from=since, date_to=date_to, page_size=page_size)
        async for fb in pages:
            fetched += 1
            newest = max(newest, fb.created_date) if newest else fb.created_date
            batch.append(fb)
            if len(batch) >= min(BATCH, page_size):
                async with db.write() as session:
                    counts = await _store(session, account_id, batch, classifier)
                new, updated, negative = new + counts[0], updated + counts[1], negative + counts[2]
                batch = []
        if batch:
            async with db.write() as session:
                counts = await _store(session, account_id, batch, classifier)
            new, updated, negative = new + counts[0], updated + counts[1], negative + counts[2]
    if date_from is None and date_to is None:
        async with db.write() as session:
            previous = state.get("feedbacks_newest")
            mark = max(filter(None, [newest.isoformat() if newest else None, previous]), default=None)
            await save_state(session, account_id, feedbacks_newest=mark, feedbacks_synced_at=utcnow().isoformat())
    return ImportReport(fetched, new, updated, negative)


async def reclassify(db: Database, classifier: ReviewClassifier, *, account_id: int | None = None) -> int:
    """Classify every stored review again (after the seller edited `reviews.yaml`); returns the count.

    Reviews are read, classified outside any transaction, then written in batches, so the write lock (which
    buyers' messages need) is held only for short updates.
    """
    query = select(WBFeedback.id, WBFeedback.text, WBFeedback.cons, WBFeedback.rating)
    if account_id is not None:
        query = query.where(WBFeedback.channel_account_id == account_id)
    async with db.read() as session:
        rows = (await session.execute(query)).all()

    def classify_all() -> list[dict[str, object]]:
        labels = []
        for row in rows:
            label = classifier.classify(review_text(row.text, row.cons), row.rating)
            labels.append(
                {
                    "id": row.id,
                    "negative": label.negative,
                    "category": label.category,
                    "confidence": round(label.confidence * 100),
                    "classified_by": "offline",
                }
            )
        return labels

    labels = await asyncio.to_thread(classify_all)
    for start in range(0, len(labels), 500):
        async with db.write() as session:
            await session.execute(update(WBFeedback), labels[start : start + 500])
    return len(labels)


# --- insights -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewExample:
    id: int
    feedback_id: str
    created_date: datetime
    nm_id: int
    product_name: str
    rating: int | None
    category: str | None
    text: str
    answered: bool


@dataclass(frozen=True, slots=True)
class ReviewInsights:
    """Negative and neutral reviews of a period, grouped for the dashboard."""

    total: int  # all imported reviews of the period
    negative: int
    by_category: dict[str, int]
    by_product: dict[str, int]  # "nmId · name" -> count
    by_product_category: dict[str, dict[str, int]]
    series: list[tuple[str, dict[str, int]]]  # (bucket start, {category: count}), oldest first
    average_rating: float | None
    examples: dict[str, list[ReviewExample]]  # category -> newest examples


def _example(row: WBFeedback) -> ReviewExample:
    text = review_text(row.text, row.cons)
    return ReviewExample(
        row.id, row.feedback_id, row.created_date, row.nm_id, row.product_name, row.rating, row.category,
        text, bool(row.answer_text),
    )  # fmt: skip


async def _period_rows(
    db: Database, period: Period, *, account_id: int | None, nm_id: int | None, category: str | None
) -> list[WBFeedback]:
    query = select(WBFeedback).where(WBFeedback.created_date >= period.start, WBFeedback.created_date < period.end)
    if account_id is not None:
        query = query.where(WBFeedback.channel_account_id == account_id)
    if nm_id is not None:
        query = query.where(WBFeedback.nm_id == nm_id)
    if category is not None:
        query = query.where(WBFeedback.category == category)
    async with db.read() as session:
        return list((await session.execute(query.order_by(WBFeedback.created_date, WBFeedback.id))).scalars())


async def review_insights(
    db: Database,
    period: Period,
    *,
    bucket: Bucket = "week",
    account_id: int | None = None,
    nm_id: int | None = None,
    examples_per_category: int = 3,
) -> ReviewInsights:
    rows = await _period_rows(db, period, account_id=account_id, nm_id=nm_id, category=None)
    negative = [r for r in rows if r.negative]
    by_product_category: dict[str, Counter[str]] = {}
    series: dict[str, Counter[str]] = {}
    examples: dict[str, list[ReviewExample]] = {}
    for r in negative:
        category = r.category or "other"
        product = f"{r.nm_id} · {r.product_name}".strip(" ·")
        by_product_category.setdefault(product, Counter())[category] += 1
        series.setdefault(bucket_start(r.created_date, bucket), Counter())[category] += 1
    for r in reversed(negative):
        bucket_list = examples.setdefault(r.category or "other", [])
        if len(bucket_list) < examples_per_category:
            bucket_list.append(_example(r))
    rated = [r.rating for r in rows if r.rating is not None]
    return ReviewInsights(
        total=len(rows),
        negative=len(negative),
        by_category=dict(Counter(r.category or "other" for r in negative).most_common()),
        by_product=dict(Counter({p: sum(c.values()) for p, c in by_product_category.items()}).most_common()),
        by_product_category={p: dict(c) for p, c in by_product_category.items()},
        series=[(key, dict(series[key])) for key in sorted(series)],
        average_rating=round(sum(rated) / len(rated), 2) if rated else None,
        examples=examples,
    )


async def list_reviews(
    db: Database,
    period: Period,
    *,
    negative_only: bool = True,
    category: str | None = None,
    nm_id: int | None = None,
    account_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ReviewExample]:
    """Reviews of the period, newest first (drill-down from the dashboard)."""
    rows = await _period_rows(db, period, account_id=account_id, nm_id=nm_id, category=category)
    rows = [r for r in reversed(rows) if r.negative or not negative_only]
    return [_example(r) for r in rows[offset : offset + limit]]


REVIEW_CSV_COLUMNS = (
    "feedback_id",
    "created_date",
    "nm_id",
    "product",
    "rating",
    "category",
    "confidence",
    "answered",
    "text",
)


async def reviews_csv(
    db: Database, period: Period, *, negative_only: bool = True, account_id: int | None = None
) -> str:
    """The period's (negative) reviews as CSV with their category; buyer text cannot run as a formula.
    The file is written in a worker thread: a long period is CPU work the event loop must not do."""
    rows = await _period_rows(db, period, account_id=account_id, nm_id=None, category=None)
    return await asyncio.to_thread(_reviews_csv_text, rows, negative_only)


def _reviews_csv_text(rows: list[WBFeedback], negative_only: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REVIEW_CSV_COLUMNS)
    for r in rows:
        if negative_only and not r.negative:
            continue
        writer.writerow(
            [
                r.feedback_id, r.created_date.isoformat(), r.nm_id, csv_safe(r.product_name),
                "" if r.rating is None else r.rating, r.category or "", "" if r.confidence is None else r.confidence,
                "yes" if r.answer_text else "no", csv_safe(review_text(r.text, r.cons)),
            ]
        )  # fmt: skip
    return out.getvalue()
