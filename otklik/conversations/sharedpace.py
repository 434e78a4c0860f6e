"""The per-account send limit shared by every worker process (issue #19).

`RateLimiter` (ratelimit.py) paces the chats of one process; the *account's* pace (`ChannelLimits.per_second`)
and its daily cap (`ChannelLimits.per_day`, WhatsApp's messaging tier) must hold for all workers together, so
each send first reserves a slot in a store every worker sees:

- `DbPace`: the `send_pace` row of the account (kernel migration 0013). One atomic upsert per send reserves the
  next slot (GCRA: `next_at` is the earliest time of the next message; a reservation takes
  `max(next_at, now)` and moves `next_at` one interval on) and counts the day's sends. On PostgreSQL the
  time is the database's (`statement_timestamp()`), so workers on different machines agree; the row lock
  the upsert takes serialises concurrent reservations. On SQLite (one process) the writer lock does.
- `RedisPace`: the same in one Lua script on Redis (`OTKLIK_REDIS_URL`), with Redis's clock.

The caller sleeps until its slot. A slot is spaced `interval = (1 + margin) / per_second` apart, so any `N + 1`
sends span at least `1 + margin` seconds: a later wake-up (scheduling jitter) of up to `margin` seconds
cannot put `N + 1` messages in one 1-second window. A caller that wakes later than that gives its slot up
and reserves again (an unused slot only lowers the rate).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from otklik.adapters.db.engine import Database, raw_write
from otklik.clock import utcnow

MARGIN = 0.025  # 2.5 % under the provider's pace: 25 ms of tolerated jitter (Settings.send_pace_margin)
MAX_RETRIES = 5


class DailyCapReached(Exception):
    """The account sent its `per_day` messages today (UTC); `retry_after` seconds until the next day."""

    def __init__(self, account_id: int, cap: int, retry_after: float) -> None:
        super().__init__(f"daily limit of {cap} messages reached for channel account {account_id}")
        self.retry_after = retry_after


class Pace(Protocol):
    async def reserve(self, account_id: int, interval: float, per_day: int | None) -> float | None:
        """Reserve the account's next slot; the seconds to wait for it (<= 0: now), or None when the day's cap
        is reached (nothing reserved)."""
        ...

    async def aclose(self) -> None: ...


def _day() -> str:
    return utcnow().date().isoformat()


def seconds_to_next_day() -> float:
    now = utcnow()
    tomorrow = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    return max(1.0, (tomorrow - now).total_seconds())


# $1 account, $2 interval, $3 day, $4 cap (0 = none); the clock is the database's (no `?`: sent as written).
_PG_RESERVE = """
INSERT INTO send_pace AS p (channel_account_id, next_at, day, day_count)
VALUES ($1, EXTRACT(EPOCH FROM statement_timestamp())::float8 + $2::float8, $3, 1)
ON CONFLICT (channel_account_id) DO UPDATE SET
  next_at = GREATEST(p.next_at, EXTRACT(EPOCH FROM statement_timestamp())::float8) + $2::float8,
  day_count = CASE WHEN p.day = $3 THEN p.day_count + 1 ELSE 1 END,
  day = $3
WHERE $4::int <= 0 OR p.day <> $3 OR p.day_count < $4::int
RETURNING p.next_at - $2::float8 - EXTRACT(EPOCH FROM statement_timestamp())::float8
"""
# SQLite: the same with the process's clock (?5) — one process, serialised by the writer lock.
_SQLITE_RESERVE = """
INSERT INTO send_pace AS p (channel_account_id, next_at, day, day_count) VALUES (?1, ?5 + ?2, ?3, 1)
ON CONFLICT (channel_account_id) DO UPDATE SET
  next_at = MAX(p.next_at, ?5) + ?2,
  day_count = CASE WHEN p.day = ?3 THEN p.day_count + 1 ELSE 1 END,
  day = ?3
WHERE ?4 <= 0 OR p.day <> ?3 OR p.day_count < ?4
RETURNING next_at - ?2 - ?5
"""


class DbPace:
    """Slots and daily counts in the `send_pace` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def reserve(self, account_id: int, interval: float, per_day: int | None) -> float | None:
        cap, day = int(per_day or 0), _day()
        async with raw_write(self.db) as tx:
            if tx.is_sqlite:
                row = await tx.fetchrow(_SQLITE_RESERVE, (account_id, interval, day, cap, time.time()))
            else:
                row = await tx.fetchrow(_PG_RESERVE, (account_id, interval, day, cap))
        return None if row is None else float(row[0])

    async def aclose(self) -> None:
        return None


_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
if cap > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= cap then
  return false
end
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local next_at = slot + interval
redis.call('SET', KEYS[1], string.format('%.6f', next_at), 'PX', math.ceil((next_at - now) * 1000) + 60000)
if cap > 0 then
  redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], 172800)
end
return string.format('%.6f', slot - now)
"""


class RedisPace:
    """Slots and daily counts in Redis (`otklik:pace:<account>`, `otklik:pace:<account>:<day>`)."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self.redis: Any = Redis.from_url(url)
        self._script: Any = self.redis.register_script(_LUA)

    async def reserve(self, account_id: int, interval: float, per_day: int | None) -> float | None:
        key = f"otklik:pace:{account_id}"
        found = await self._script(keys=[key, f"{key}:{_day()}"], args=[repr(interval), int(per_day or 0)])
        return None if found is None else float(found)

    async def aclose(self) -> None:
        await self.redis.aclose()


def make_pace(db: Database, redis_url: str | None) -> Pace:
    return RedisPace(redis_url) if redis_url else DbPace(db)


async def wait_for_slot(
    pace: Pace, account_id: int, per_second: float | None, per_day: int | None, *, margin: float = MARGIN
) -> float | None:
    """Wait for the account's next shared slot; `DailyCapReached` when the day's cap is spent. `margin`: the
    share under `per_second` kept as tolerance for late wake-ups and network jitter (seconds per second).
    Returns the slot's time (`time.monotonic()`), None when the account has no pace: a caller with more work
    before the send (a database write) checks `is_late` afterwards and takes a fresh slot if so."""
    if not per_second and not per_day:
        return None
    interval = (1 + margin) / per_second if per_second else 0.0
    due = time.monotonic()
    for _ in range(MAX_RETRIES):
        delay = await pace.reserve(account_id, interval, per_day)
        if delay is None:
            raise DailyCapReached(account_id, int(per_day or 0), seconds_to_next_day())
        due = time.monotonic() + max(delay, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if not interval or not is_late(due, margin):
            return due
        # woke too late: the slot would crowd the next second's; it stays unused, take a fresh one
    return due


def is_late(due: float | None, margin: float = MARGIN) -> bool:
    return due is not None and time.monotonic() - due > margin
