"""The metrics' definitions that are not SQL: windows, histogram buckets, percentiles, hand-off reasons and
the filters every metric takes (docs/metrics.md is the reference; this module is what it describes). Pure."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from otklik.core.errors import InvalidInput

IDLE = timedelta(hours=24)  # a buyer message after this long without one starts a new conversation (session)
SEEN_WINDOW = timedelta(hours=24)  # seen but unanswered: no buyer message within this after the read
SLOW_BOT_MS = 10_000  # the bot's target: a reply within 10 s
MAX_DAYS = 400  # the longest range a query may span (a year and a little)
DEFAULT_DAYS = 30
#: Channel kinds that report every read (seen-but-unanswered is exact there; elsewhere it is a lower bound).
READS_ALWAYS_REPORTED = frozenset({"whatsapp"})

#: Histogram buckets of response times, in ms: each is the upper bound of its bucket (a time t falls in the first
#: bucket >= t). Percentiles are reported as the bound of the bucket that holds the rank.
BUCKETS: tuple[int, ...] = (
    250, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 6_000, 8_000, 10_000, 12_000, 15_000, 20_000,
    30_000, 45_000, 60_000, 90_000, 120_000, 180_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000,
    7_200_000, 14_400_000, 28_800_000, 86_400_000, 172_800_000, 604_800_000, 2_147_483_647,
)  # fmt: skip
PERCENTILES = (50, 90, 99)

HANDOFF_CLASSES = ("asked", "red_flag", "retries", "flow", "error")


def bucket_of(ms: int) -> int:
    """The histogram bucket (its upper bound) of a response time in ms; negative times count as 0."""
    return BUCKETS[min(bisect.bisect_left(BUCKETS, max(0, ms)), len(BUCKETS) - 1)]


def percentile(histogram: Mapping[int, int], p: int) -> int | None:
    """Nearest-rank percentile of a {bucket: count} histogram: the bucket holding the ceil(p/100 * n)-th time."""
    n = sum(histogram.values())
    if n <= 0:
        return None
    rank, seen = max(1, math.ceil(p * n / 100)), 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket
    return max(histogram)  # pragma: no cover - the loop reaches n


def percentiles(histogram: Mapping[int, int]) -> dict[str, int | None]:
    return {f"p{p}": percentile(histogram, p) for p in PERCENTILES}


def raw_percentile(values: Iterable[int], p: int) -> int | None:
    """The same percentile from raw times: nearest rank, then its bucket (what a test compares against)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return bucket_of(ordered[max(1, math.ceil(p * len(ordered) / 100)) - 1])


def handoff_class(reason: str) -> str:
    """The kernel's hand-off reason (`Handoff.reason`) as one of HANDOFF_CLASSES."""
    if reason == "buyer_request":
        return "asked"
    if reason.startswith("red_flag"):
        return "red_flag"
    if reason in ("retries_exhausted", "cannot_answer"):
        return "retries"
    if reason.startswith(("action_failed", "flow_missing", "step_limit")):
        return "error"
    return "flow"  # a handoff node of a flow (its `reason`, "flow" by default)


# --- filters ---------------------------------------------------------------------------------------------

FILTER_KEYS = ("from", "to", "channel", "account", "pack", "source", "flow", "operator")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:@/+=-]{0,119}")


@dataclass(frozen=True, slots=True)
class Filters:
    """What a query is narrowed to; `first` and `last` are UTC days, both included."""

    first: date
    last: date
    channel: str | None = None
    account: int | None = None
    pack: str | None = None
    source: str | None = None  # "" = no source (a direct conversation)
    flow: str | None = None  # "" = no flow
    operator: str | None = None

    @property
    def since(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)

    def params(self) -> dict[str, str]:
        """The filters as query parameters (links, exports)."""
        out = {"from": self.first.isoformat(), "to": self.last.isoformat()}
        for key in ("channel", "account", "pack", "source", "flow", "operator"):
            value = getattr(self, key)
            if value is not None:
                out[key] = str(value)
        return out

    def narrowed(self, **changes: object) -> Filters:
        return replace(self, **changes)  # type: ignore[arg-type]


def _day(raw: str, name: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput(f"{name}: a date like 2026-01-31, not {raw[:40]!r}") from None


def parse_filters(raw: Mapping[str, str | None], *, today: date, strict: bool = True) -> Filters:
    """Filters from query parameters or CLI options. Unknown keys (when `strict`), a reversed range, a range
    over MAX_DAYS days and malformed values are refused with a message naming the field."""
    if strict:
        unknown = sorted(k for k in raw if k not in FILTER_KEYS)
        if unknown:
            raise InvalidInput(f"unknown filter {unknown[0]!r}; known: {', '.join(FILTER_KEYS)}")
    values = {k: (raw.get(k) or "") for k in FILTER_KEYS}
    if any(len(v) > 200 for v in values.values()):
        raise InvalidInput("a filter value is longer than 200 characters")
    last = _day(values["to"], "to") if values["to"].strip() else today
    first = _day(values["from"], "from") if values["from"].strip() else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput(f"from ({first}) is after to ({last}): the range is reversed")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"the range spans {(last - first).days + 1} days; at most {MAX_DAYS}")
    account = None
    if values["account"].strip():
        text = values["account"].strip()
        if not text.isdigit() or len(text) > 18 or int(text) <= 0:
            raise InvalidInput("account: a channel account id (a positive number)")
        account = int(text)
    named: dict[str, str | None] = {}
    for key in ("channel", "pack", "source", "flow", "operator"):
        text = values[key].strip()
        if not text:
            named[key] = None
        elif key in ("source", "flow") and text == "-":
            named[key] = ""  # "-": the conversations without one
        elif not _NAME.fullmatch(text):
            raise InvalidInput(f"{key}: letters, digits and _ . : @ / + = - only")
        else:
            named[key] = text
    return Filters(first, last, account=account, **named)
