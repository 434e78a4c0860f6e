"""Client-side token buckets mirroring WB's own per-group limits, and the retry policy.

WB limits requests with a token bucket per seller account, token type and method group: each method's
table gives Period / Limit / Interval / Burst ([GEN], [KB-LIM] in /work/shared/reference/wildberries-api.md).
Staying under the bucket on our side means 429s are rare; when one still comes, the bucket is paused for
the time WB asked (`X-Ratelimit-Retry`), so every caller sharing the group waits, not only the one that
got the 429.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`rate` requests per second on average, at most `burst` at once."""

    rate: float
    burst: int

    @classmethod
    def per(cls, count: int, period_s: float, *, burst: int) -> RateLimit:
        return cls(rate=count / period_s, burst=burst)


# Method groups. Values for Personal / Service / "Base with secret" tokens, from the method tables in
# [COMM-EN] (2026-08-19) and [PROD]; see the "Limits that matter for the bot" table in the reference.
FEEDBACKS = "feedbacks"  # every Feedbacks & Questions method shares ONE bucket: 3 req/1 s, burst 6
CONTENT = "content"  # POST /content/v2/get/cards/list: 100 req/min, interval 600 ms, burst 5
BUYER_CHAT = "buyer_chat"  # chats, events, message: 10 req/10 s, burst 10
CHAT_DOWNLOAD = "chat_download"  # chat file download: 10 req/10 s, burst 10 (its own table)
RETURNS = "returns"  # return claims: 20 req/min, burst 10
PING = "ping"  # GET /ping: "a maximum of 3 requests every 30 seconds", per host ([GEN])

DEFAULT_LIMITS: Mapping[str, RateLimit] = {
    FEEDBACKS: RateLimit.per(3, 1.0, burst=6),
    CONTENT: RateLimit.per(100, 60.0, burst=5),
    BUYER_CHAT: RateLimit.per(10, 10.0, burst=10),
    CHAT_DOWNLOAD: RateLimit.per(10, 10.0, burst=10),
    RETURNS: RateLimit.per(20, 60.0, burst=10),
    PING: RateLimit.per(3, 30.0, burst=3),
}

# A plain "Base" token (no service secret) gets far lower limits ([COMM-EN]); a live bot cannot run on it.
BASE_TOKEN_LIMITS: Mapping[str, RateLimit] = {
    **DEFAULT_LIMITS,
    FEEDBACKS: RateLimit.per(5, 3600.0, burst=1),
    BUYER_CHAT: RateLimit.per(1, 3600.0, burst=1),
    CHAT_DOWNLOAD: RateLimit.per(10, 3600.0, burst=1),
    RETURNS: RateLimit.per(1, 3600.0, burst=1),
}


_EPSILON = 1e-9


class TokenBucket:
    """An async-safe token bucket: `acquire()` waits until one request may be sent.

    Waiters are served in arrival order (the lock is held while waiting), so concurrent callers of one
    group are spaced evenly rather than racing.
    """

    def __init__(self, limit: RateLimit, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        if limit.rate <= 0 or limit.burst < 1:
            raise ValueError(f"invalid rate limit {limit}")
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(limit.burst)
        self._updated = clock()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(float(self.limit.burst), self._tokens + (now - self._updated) * self.limit.rate)
            self._updated = now

    async def acquire(self) -> float:
        """Take one token, sleeping as needed; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._blocked_until - now
                if wait <= 0:
                    self._refill(now)
                    if self._tokens >= 1.0 - _EPSILON:  # float dust must not cause a zero-length sleep
                        self._tokens = max(self._tokens - 1.0, 0.0)
                        return waited
                    wait = (1.0 - self._tokens) / self.limit.rate
                await self._sleep(wait)
                waited += wait

    def blocked_for(self) -> float:
        """Seconds until WB allows this group again after a 429 (0 when not paused)."""
        return max(self._blocked_until - self._clock(), 0.0)

    def pause(self, seconds: float) -> None:
        """WB said "wait `seconds`" (a 429): nothing is sent before then, and then one request is allowed."""
        until = self._clock() + max(seconds, 0.0)
        if until > self._blocked_until:
            self._blocked_until = until
            self._tokens = 1.0
            self._updated = until


class RateLimiters:
    """The buckets of one seller account, by group; share one instance between clients of one token.

    `headroom`: the share of the documented rate we actually use. Requests leave on our clock but are
    counted on WB's, and network jitter (a slow first connection, then fast ones) can make them arrive
    closer together than they left; running at 90 % keeps arrivals under WB's bucket.
    """

    def __init__(
        self,
        limits: Mapping[str, RateLimit] | None = None,
        *,
        headroom: float = 0.9,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError(f"headroom must be in (0, 1], got {headroom}")
        self.limits: dict[str, RateLimit] = dict(DEFAULT_LIMITS)
        self.limits.update(limits or {})
        self.headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str) -> TokenBucket:
        """The bucket for `key`: a group name, or `group:qualifier` (e.g. `ping:<host>`)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self.limits[key.split(":", 1)[0]]
            effective = RateLimit(rate=limit.rate * self.headroom, burst=limit.burst)
            bucket = TokenBucket(effective, clock=self._clock, sleep=self._sleep)
            self._buckets[key] = bucket
        return bucket


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the client tries before raising.

    - `max_attempts`: total tries of one call (first try included), for 429, 5xx and timeouts alike.
    - `backoff_base`/`backoff_max`: exponential back-off with jitter for 5xx and network failures.
    - `max_retry_after`: the longest wait WB may ask for that we sit out inline; longer → `WBRateLimited`
      at once, carrying `retry_after`, so a worker can reschedule instead of holding a connection.
    """

    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 90.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): half fixed, half random ("equal jitter")."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0.0, ceiling / 2)
