"""Where the seller's WB reviews come from when a screenshot is checked.

`FeedbackSource` is the seam: the live source calls the WB feedbacks API (both processed and new
reviews of one nmId in the campaign window) and caches the answer for a short while, so a burst of
claims for one product costs one pair of calls (the cache is the install's: `ctx.state[CACHE_STATE]`). The
source a claim uses is `ctx.state[SOURCE_STATE]` when set (tests put a `StaticFeedbackSource` there), else
the live one (`claims.source_for`). The care package's `wb_feedbacks` table does not keep
the reviewer's first name (minimal personal data), and the match needs it, hence the live call; a
cached source can replace this one behind the same protocol."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from otklik.core.errors import OtklikError

if TYPE_CHECKING:
    from otklik.conversations.context import RuntimeContext


class FeedbacksUnavailable(OtklikError):
    """WB cannot be asked now (no token, outage, rate limit): the claim goes to moderation."""


@dataclass(frozen=True, slots=True)
class Review:
    """One WB review, as much as the match needs."""

    id: str
    nm_id: int
    text: str  # text, pros and cons joined
    stars: int | None
    created: datetime
    user_name: str
    photos: int
    product_name: str = ""

    def snapshot(self) -> dict[str, object]:
        """What the claim keeps of the matched review (the first name stays out: minimal data)."""
        return {
            "id": self.id,
            "nm_id": self.nm_id,
            "text": self.text[:2000],
            "stars": self.stars,
            "created": self.created.isoformat(),
            "photos": self.photos,
            "product_name": self.product_name[:300],
        }


class FeedbackSource(Protocol):
    async def reviews(self, nm_id: int, since: datetime, until: datetime) -> list[Review]:
        """Reviews of `nm_id` created in [since, until]; raises FeedbacksUnavailable."""
        ...


class StaticFeedbackSource:
    """A fixed list (unit tests, demos)."""

    def __init__(self, reviews: list[Review], *, down: bool = False) -> None:
        self.items = reviews
        self.down = down

    async def reviews(self, nm_id: int, since: datetime, until: datetime) -> list[Review]:
        if self.down:
            raise FeedbacksUnavailable("WB is down (static source)")
        return [r for r in self.items if r.nm_id == nm_id and since <= r.created <= until]


#: `RuntimeContext.state` keys of this module: the live source's answers, and the source claims use.
CACHE_STATE = "cashback.feedbacks_cache"
SOURCE_STATE = "cashback.feedback_source"
CACHE_SECONDS = 120.0
CACHE_SIZE = 256
#: The whole WB question (rate-limit wait, both lists, retries) for a buyer who is waiting in the chat.
DEADLINE_SECONDS = 8.0

Cache = OrderedDict[tuple[int, int, int], tuple[float, list[Review]]]


def feedbacks_cache(ctx: RuntimeContext) -> Cache:
    """The install's cache of WB answers, (nm_id, since, until in minutes) -> (monotonic time, reviews)."""
    cache: Cache = ctx.state.setdefault(CACHE_STATE, OrderedDict())
    return cache


class WBFeedbackSource:
    """The seller's first enabled WB API key, time-boxed: a buyer is waiting for the answer.

    Everything WB may cost — a wait for the shared feedbacks bucket (another caller's 429 pauses it for
    as long as WB asked, up to 90 s), slow answers, retries with back-off — must fit in `deadline`
    seconds; past it the source is "unavailable" and the claim goes to a moderator ("it takes longer")."""

    def __init__(self, ctx: RuntimeContext, *, deadline: float = DEADLINE_SECONDS) -> None:
        self.ctx = ctx
        self.deadline = deadline

    async def reviews(self, nm_id: int, since: datetime, until: datetime) -> list[Review]:
        cache = feedbacks_cache(self.ctx)
        key = (nm_id, int(since.timestamp()), int(until.timestamp()) // 60)
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            async with asyncio.timeout(self.deadline):
                found = await self._fetch(nm_id, since, until)
        except TimeoutError:
            raise FeedbacksUnavailable(f"WB did not answer within {self.deadline:g} s") from None
        cache[key] = (time.monotonic(), found)
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
        return found

    async def _fetch(self, nm_id: int, since: datetime, until: datetime) -> list[Review]:
        from otklik.adapters.wildberries import WBClient, WBError
        from otklik.adapters.wildberries.accounts import INTERACTIVE_RETRY, client_for, wb_accounts
        from otklik.adapters.wildberries.ratelimit import FEEDBACKS

        ctx = self.ctx
        accounts = await wb_accounts(ctx.db, ctx.vault)
        if not accounts:
            raise FeedbacksUnavailable("no Wildberries API key is configured")

        async def listed(client: WBClient, answered: bool) -> list[Review]:
            out: list[Review] = []
            async for fb in client.iter_feedbacks(
                is_answered=answered, nm_id=nm_id, date_from=since, date_to=until, page_size=1000
            ):
                out.append(
                    Review(
                        id=fb.id,
                        nm_id=fb.nm_id,
                        text=" ".join(p for p in (fb.text, fb.pros, fb.cons) if p),
                        stars=fb.product_valuation,
                        created=fb.created_date,
                        user_name=fb.user_name,
                        photos=len(fb.photo_links),
                        product_name=fb.product_details.product_name,
                    )
                )
            return out

        try:
            async with client_for(
                accounts[0], ctx.settings, limiters=ctx.wb_limiters, retry=INTERACTIVE_RETRY, timeout=self.deadline
            ) as client:
                paused = client.limiters.bucket(FEEDBACKS).blocked_for()
                if paused > self.deadline:  # WB asked this account to wait (a 429 of the sync job, say)
                    raise FeedbacksUnavailable(f"WB asked to wait {paused:.0f} s (rate limit)")
                new, answered = await asyncio.gather(listed(client, False), listed(client, True))
        except WBError as exc:
            raise FeedbacksUnavailable(f"WB feedbacks: {exc}") from exc
        return new + answered
