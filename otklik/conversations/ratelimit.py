"""Send pacing (waits) and sliding windows (refuse). The account's pace is shared by every worker through
`sharedpace.Pace` when one is given; the chat's pace and the sliding windows are per process."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque

from otklik.conversations.sharedpace import MARGIN, Pace, is_late, wait_for_slot
from otklik.core.channel import ChannelLimits


class _Interval:
    """Hands out send slots spaced `interval` seconds apart; `burst` > 1 lets that many go at once after a
    quiet spell (a token bucket refilled one slot per `interval`: WhatsApp's pair rate allows short bursts)."""

    __slots__ = ("burst", "interval", "lock", "next_at")

    def __init__(self, interval: float, burst: int = 1) -> None:
        self.interval = interval
        self.burst = max(1, burst)
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:  # GCRA: `next_at` is the theoretical arrival time of the next slot
            now = time.monotonic()
            slot = max(now, self.next_at - (self.burst - 1) * self.interval)
            self.next_at = max(self.next_at, slot) + self.interval
        delay = slot - now
        if delay > 0:
            await asyncio.sleep(delay)


class RateLimiter:
    """Waits until both the account's and the chat's pace allow one more message.

    With `shared`, the account's pace and daily cap are reserved in the shared store (all workers together);
    `sharedpace.DailyCapReached` tells the day's cap is spent. Without it, the account is paced in-process."""

    def __init__(self, max_chats: int = 100_000, *, shared: Pace | None = None, margin: float = MARGIN) -> None:
        self.shared = shared
        self.margin = margin
        self._accounts: dict[int, _Interval] = {}
        self._chats: OrderedDict[tuple[int, str], _Interval] = OrderedDict()
        self._max_chats = max_chats

    async def wait(self, account_id: int, chat: str, limits: ChannelLimits) -> float | None:
        """Returns the account slot's time when the pace is shared (see `recheck`), else None."""
        if limits.per_chat_interval:
            await self._chat(account_id, chat, limits.per_chat_interval, limits.per_chat_burst).wait()
        if self.shared is not None:
            return await wait_for_slot(self.shared, account_id, limits.per_second, limits.per_day, margin=self.margin)
        if limits.per_second:
            account = self._accounts.get(account_id)
            if account is None:  # 1 % under the limit, so no 1-second window ever holds one too many
                account = self._accounts[account_id] = _Interval(1.01 / limits.per_second)
            await account.wait()
        return None

    async def recheck(self, account_id: int, limits: ChannelLimits, due: float | None) -> None:
        """After work between the slot and the send (a database write that waited for a lock): a slot missed by
        more than the margin is given up and a fresh one taken, so that late sends never crowd one second."""
        if self.shared is not None and is_late(due, self.margin):
            await wait_for_slot(self.shared, account_id, limits.per_second, limits.per_day, margin=self.margin)

    def _chat(self, account_id: int, chat: str, interval: float, burst: int = 1) -> _Interval:
        key = (account_id, chat)
        pacer = self._chats.get(key)
        if pacer is None:
            pacer = self._chats[key] = _Interval(interval, burst)
            if len(self._chats) > self._max_chats:
                self._chats.popitem(last=False)
        else:
            self._chats.move_to_end(key)
        return pacer


class SlidingWindow:
    """Refuses (never waits): at most `limit` hits per key in any `window` seconds, in this process.

    `hit(key)` records a hit and returns None, or records nothing and returns the seconds until the next
    hit would be allowed. `limit` 0 means no limit. The least recently used keys are forgotten past
    `max_keys`, so memory stays bounded whatever the number of keys (addresses, sessions)."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._max_keys = max_keys

    def hit(self, key: str, now: float | None = None) -> float | None:
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window - now
        hits.append(now)
        return None
