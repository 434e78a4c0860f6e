"""Small read helpers and input parsing for the care admin pages (incidents, review insights, replies).

The figures come from `incidents`, `reviews` and `replies`; this module adds what only the pages need:
a validated period from the query string, WB account choices without decrypting tokens, the sync state
for display, reply counts by status and the current state of a set of replies.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount, WBProduct
from otklik.adapters.wildberries.accounts import KIND
from otklik.capabilities.care.incidents import Bucket, Period, bucket_start
from otklik.capabilities.care.models import WBFeedback, WBReviewReply
from otklik.capabilities.care.replies import ReplyStatus
from otklik.capabilities.care.syncstate import load_state
from otklik.core.errors import InvalidInput, NotFound

BUCKETS: tuple[Bucket, ...] = ("day", "week", "month")
REPLY_STATUSES = tuple(ReplyStatus)  # draft, approved, posting, failed, posted
MAX_DAYS = 731  # two years: longer ranges are refused, not silently cut
MAX_DAY_BUCKETS = 366  # a day-by-day chart of more points is unreadable: use weeks or months
EARLIEST = date(2015, 1, 1)


def _date(value: str, field: str) -> date:
    value = value.strip()
    if len(value) != 10:
        raise InvalidInput(f"{field}: use a date like 2026-03-01")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: use a date like 2026-03-01") from None


def parse_period(
    start: str | None, end: str | None, *, default_days: int, today: date | None = None
) -> tuple[Period, date, date]:
    """A period from `from`/`to` dates (YYYY-MM-DD, UTC, both days included).

    Returns (period, first day, last day). Missing dates default to the last `default_days` days; a
    reversed, too long (> 2 years) or out-of-range period is an InvalidInput with a clear message.
    """
    today = today or datetime.now(UTC).date()
    last = _date(end, "to") if end and end.strip() else today
    first = _date(start, "from") if start and start.strip() else last - timedelta(days=default_days - 1)
    if first > last:
        raise InvalidInput("the period starts after it ends: 'from' must not be later than 'to'")
    if first < EARLIEST or last > today + timedelta(days=366):
        raise InvalidInput(f"dates must be between {EARLIEST.isoformat()} and next year")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"the period is too long: at most {MAX_DAYS} days (two years)")
    begin = datetime(first.year, first.month, first.day, tzinfo=UTC)
    finish = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return Period(begin, finish), first, last


def parse_bucket(value: str | None, first: date, last: date, *, default: Bucket) -> Bucket:
    """'day' | 'week' | 'month'; day buckets over more than a year are refused (use weeks or months)."""
    if not value:
        return default if default != "day" or (last - first).days < MAX_DAY_BUCKETS else "week"
    for bucket in BUCKETS:
        if value == bucket:
            if bucket == "day" and (last - first).days >= MAX_DAY_BUCKETS:
                raise InvalidInput("a period longer than a year is shown by week or by month, not by day")
            return bucket
    raise InvalidInput(f"bucket: one of {', '.join(BUCKETS)}")


def parse_choice(value: str | None, allowed: Iterable[str], field: str) -> str | None:
    """An optional value from a closed list ('' or missing -> None)."""
    if not value:
        return None
    allowed = tuple(allowed)
    if value not in allowed:
        raise InvalidInput(f"{field}: one of {', '.join(allowed)}")
    return value


def parse_int(value: str | None, field: str, *, low: int = 0, high: int = 10**15) -> int | None:
    """An optional whole number within [low, high] ('' or missing -> None)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 16 or not low <= int(value) <= high:
        raise InvalidInput(f"{field}: a whole number from {low} to {high}")
    return int(value)


async def wb_account_choices(db: Database) -> list[tuple[int, str]]:
    """(id, name) of the enabled WB accounts; tokens are not touched."""
    async with db.read() as session:
        rows = await session.execute(
            select(ChannelAccount.id, ChannelAccount.name)
            .where(ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True))
            .order_by(ChannelAccount.id)
        )
        return [(int(i), str(n)) for i, n in rows.all()]


async def sync_status(db: Database, account_id: int) -> dict[str, Any]:
    """What the page shows of `wb_sync:<id>`: last run, last success, last error (no cursors)."""
    state = await load_state(db, account_id)
    return {key: state.get(key) for key in ("last_run_at", "last_ok_at", "last_error", "feedbacks_synced_at")}


async def reply_counts(db: Database, *, account_id: int | None = None) -> dict[str, int]:
    """Replies per status (every status present, zero when none)."""
    query = select(WBReviewReply.status, func.count(WBReviewReply.id)).group_by(WBReviewReply.status)
    if account_id is not None:
        query = query.join(WBFeedback, WBFeedback.id == WBReviewReply.feedback_row_id).where(
            WBFeedback.channel_account_id == account_id
        )
    async with db.read() as session:
        found = {str(s): int(n) for s, n in (await session.execute(query)).all()}
    return {status: found.get(status, 0) for status in REPLY_STATUSES}


async def reply_account(db: Database, reply_id: int) -> int:
    """The WB account whose review this reply answers."""
    async with db.read() as session:
        account = await session.scalar(
            select(WBFeedback.channel_account_id)
            .join(WBReviewReply, WBReviewReply.feedback_row_id == WBFeedback.id)
            .where(WBReviewReply.id == reply_id)
        )
    if account is None:
        raise NotFound(f"no reply #{reply_id}")
    return int(account)


async def approved_replies(db: Database, account_id: int) -> list[tuple[int, str]]:
    """(reply id, feedback id) of the account's approved replies: what a "post now" will send."""
    async with db.read() as session:
        rows = await session.execute(
            select(WBReviewReply.id, WBFeedback.feedback_id)
            .join(WBFeedback, WBFeedback.id == WBReviewReply.feedback_row_id)
            .where(WBFeedback.channel_account_id == account_id, WBReviewReply.status == ReplyStatus.APPROVED)
        )
        return [(int(i), str(f)) for i, f in rows.all()]


async def reply_states(db: Database, ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """reply id -> (status, error)."""
    wanted = list(ids)
    if not wanted:
        return {}
    async with db.read() as session:
        rows = await session.execute(
            select(WBReviewReply.id, WBReviewReply.status, WBReviewReply.error).where(WBReviewReply.id.in_(wanted))
        )
        return {int(i): (str(s), e) for i, s, e in rows.all()}


async def product_titles(db: Database, keys: Iterable[str]) -> dict[str, str]:
    """Incident product keys that are WB nmIds -> the cached card's title (others are left out)."""
    nm_ids = {int(k) for k in keys if k.isdigit() and len(k) <= 15}
    if not nm_ids:
        return {}
    async with db.read() as session:
        rows = await session.execute(select(WBProduct.nm_id, WBProduct.title).where(WBProduct.nm_id.in_(nm_ids)))
        return {str(nm): str(title) for nm, title in rows.all() if title}


def fill_series(
    series: list[tuple[str, dict[str, int]]], first: date, last: date, bucket: Bucket
) -> list[tuple[str, dict[str, int]]]:
    """The series with every bucket of [first, last] present (empty ones as {}), so a time axis has no gaps."""
    have = dict(series)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    key = bucket_start(start, bucket)
    out: list[tuple[str, dict[str, int]]] = []
    current = date.fromisoformat(key)
    while current <= last and len(out) < 800:
        out.append((current.isoformat(), have.get(current.isoformat(), {})))
        if bucket == "day":
            current += timedelta(days=1)
        elif bucket == "week":
            current += timedelta(days=7)
        else:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    known = {k for k, _ in out}
    return out + [(k, v) for k, v in series if k not in known]  # never drop data, whatever its key
