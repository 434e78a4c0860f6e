"""Long polling (getUpdates) for installs without a public HTTPS address.

Polling and webhooks are exclusive: the webhook is deleted first. An update is confirmed (the offset
moves past it and is persisted) only after `handle_update` returned, so a crash re-reads at most the
update in progress, and `ingest` recognises it by its external id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Protocol, TypeVar

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
HandleUpdate = Callable[[dict[str, Any]], Awaitable[None]]
_TRANSIENT = (
    TelegramServerError,
    TelegramNetworkError,
    TelegramConflictError,  # a webhook set by someone else, or a second poller
    ClientDecodeError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
)


class OffsetStore(Protocol):
    """Where the next getUpdates offset survives a restart (a row of the channel account later)."""

    async def get_offset(self) -> int | None: ...

    async def set_offset(self, offset: int) -> None: ...


class MemoryOffsetStore:
    def __init__(self, offset: int | None = None) -> None:
        self.offset = offset

    async def get_offset(self) -> int | None:
        return self.offset

    async def set_offset(self, offset: int) -> None:
        self.offset = offset


class _Stopped(Exception):
    pass


async def run_polling(
    bot: Bot,
    handle_update: HandleUpdate,
    *,
    stop: asyncio.Event,
    timeout: int = 25,
    offsets: OffsetStore | None = None,
    allowed_updates: list[str] | None = None,
    min_backoff: float = 1.0,
    max_backoff: float = 30.0,
    max_attempts: int = 5,
) -> None:
    """Poll until `stop` is set. Survives 5xx/network errors (exponential back-off), honours 429
    `retry_after`; `TelegramUnauthorizedError` (revoked token) and bad requests propagate.

    A failing `handle_update` is retried `max_attempts` times, then the update is skipped (logged) so
    that one poisonous update cannot stall the bot.
    """
    store = offsets if offsets is not None else MemoryOffsetStore()
    pause = _Backoff(min_backoff, max_backoff)
    try:
        await _retrying(lambda: bot.delete_webhook(drop_pending_updates=False), stop, pause)
        offset = await store.get_offset()
        while not stop.is_set():
            poll = partial(
                bot.get_updates,
                offset=offset,
                timeout=timeout,
                allowed_updates=allowed_updates,
                request_timeout=timeout + 10,
            )
            updates = await _retrying(poll, stop, pause)
            for update in updates:
                raw = update.model_dump(by_alias=True, exclude_none=True, mode="json")
                await _deliver(handle_update, raw, stop, _Backoff(min_backoff, max_backoff), max_attempts)
                offset = update.update_id + 1
                await store.set_offset(offset)
    except _Stopped:
        pass


async def _retrying(call: Callable[[], Coroutine[Any, Any, T]], stop: asyncio.Event, pause: _Backoff) -> T:
    """Run a Bot API call until it succeeds, waiting as Telegram asks (429) or backing off (5xx)."""
    while True:
        try:
            result = await _until_stopped(call(), stop)
        except TelegramRetryAfter as error:
            log.warning("telegram polling: flood control, waiting %ss", error.retry_after)
            await _sleep(error.retry_after, stop)
        except _TRANSIENT as error:
            delay = pause.next()
            log.warning("telegram polling: %s; retrying in %.1fs", error, delay)
            await _sleep(delay, stop)
        else:
            pause.reset()
            return result


async def _deliver(
    handle_update: HandleUpdate, raw: dict[str, Any], stop: asyncio.Event, pause: _Backoff, attempts: int
) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await handle_update(raw)
            return
        except Exception:
            log.exception("telegram polling: update %s failed (attempt %d)", raw.get("update_id"), attempt)
            if attempt < attempts:
                await _sleep(pause.next(), stop)
    log.error("telegram polling: skipping update %s after %d attempts", raw.get("update_id"), attempts)


async def _until_stopped(coro: Coroutine[Any, Any, T], stop: asyncio.Event) -> T:
    """Await `coro`, cancelling it when `stop` is set (a long poll may otherwise last `timeout` s)."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopper):
            pending.cancel()  # no-op for a finished one; never leave an orphan request running
        await asyncio.gather(task, stopper, return_exceptions=True)
    if task.cancelled():
        raise _Stopped
    return task.result()


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return
    raise _Stopped


class _Backoff:
    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap, self.current = first, cap, first

    def next(self) -> float:
        delay, self.current = self.current, min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.current = self.first
