"""run_polling against the fake: delivery once, offset confirmation, faults, restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramUnauthorizedError

from otklik.channels.telegram.adapter import MemoryOffsetStore, make_bot, run_polling
from otklik.testing.fake_telegram import FakeTelegramServer

CHAT = 385102944


class Handler:
    """Records update ids; sets `stop` once `until(self)` holds."""

    def __init__(self, stop: asyncio.Event, until: Callable[[Handler], bool]) -> None:
        self.stop, self.until = stop, until
        self.seen: list[int] = []
        self.fail_times: dict[int, int] = {}

    async def __call__(self, raw: dict[str, Any]) -> None:
        update_id = raw["update_id"]
        self.seen.append(update_id)
        if self.fail_times.get(update_id, 0) > 0:
            self.fail_times[update_id] -= 1
            raise RuntimeError("ingest failed")
        if self.until(self):
            self.stop.set()


async def poll(bot: Bot, handler: Handler, offsets: MemoryOffsetStore | None = None, **kwargs: Any) -> None:
    kwargs.setdefault("timeout", 1)
    await asyncio.wait_for(
        run_polling(bot, handler, stop=handler.stop, offsets=offsets, min_backoff=0.05, **kwargs), timeout=15
    )


def queue_texts(fake: FakeTelegramServer, *texts: str) -> list[int]:
    return [fake.queue_update(fake.text_update(CHAT, text))["update_id"] for text in texts]


async def test_updates_are_delivered_once_in_order_and_confirmed(bot: Bot, fake: FakeTelegramServer) -> None:
    ids = queue_texts(fake, "один", "два", "три")
    offsets = MemoryOffsetStore()
    stop = asyncio.Event()
    handler = Handler(stop, until=lambda h: False)

    async def stop_when_confirmed() -> None:
        while fake.pending_updates() or len(handler.seen) < 3:
            await asyncio.sleep(0.02)
        stop.set()

    await asyncio.gather(poll(bot, handler, offsets), stop_when_confirmed())
    assert handler.seen == ids
    assert offsets.offset == ids[-1] + 1
    polls = fake.calls_of("getUpdates")
    assert polls[0].params.get("offset") is None
    assert any(c.params.get("offset") == str(ids[-1] + 1) for c in polls)


async def test_webhook_is_deleted_before_polling(bot: Bot, fake: FakeTelegramServer) -> None:
    await bot.set_webhook("https://shop.example.com/tg/hook", secret_token="fake-secret")
    [update_id] = queue_texts(fake, "привет")
    handler = Handler(asyncio.Event(), until=lambda h: True)
    await poll(bot, handler)
    assert handler.seen == [update_id]
    methods = [c.method for c in fake.calls]
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    assert fake.bot().webhook == {}


async def test_polling_survives_server_errors_and_flood_control(bot: Bot, fake: FakeTelegramServer) -> None:
    ids = queue_texts(fake, "a", "b")
    fake.server_error("getUpdates", status=502, html=True)
    fake.server_error("getUpdates", status=500)
    fake.rate_limit("getUpdates", retry_after=1)
    handler = Handler(asyncio.Event(), until=lambda h: len(h.seen) == 2)
    started = time.monotonic()
    await poll(bot, handler)
    assert handler.seen == ids
    assert [c.status for c in fake.calls_of("getUpdates")][:4] == [502, 500, 429, 200]
    assert time.monotonic() - started >= 1.0  # waited as Telegram asked


async def test_restart_with_persisted_offset_does_not_redeliver(fake: FakeTelegramServer) -> None:
    first_ids = queue_texts(fake, "до", "перезапуска")
    offsets = MemoryOffsetStore()

    bot = make_bot(fake.default_token, fake.base_url)
    try:
        # Stops right after handling: the server never saw the confirming offset.
        await poll(bot, Handler(asyncio.Event(), until=lambda h: len(h.seen) == 2), offsets)
    finally:
        await bot.session.close()
    assert [u["update_id"] for u in fake.pending_updates()] == first_ids  # still unconfirmed on the server
    [new_id] = queue_texts(fake, "после")

    bot = make_bot(fake.default_token, fake.base_url)
    try:
        restarted = Handler(asyncio.Event(), until=lambda h: True)
        await poll(bot, restarted, offsets)
        forgetful = Handler(asyncio.Event(), until=lambda h: True)
        await poll(bot, forgetful, MemoryOffsetStore())  # the control: without the stored offset...
    finally:
        await bot.session.close()
    assert restarted.seen == [new_id]
    assert forgetful.seen == [new_id]  # ...the handled update comes again


async def test_failing_handler_is_retried_then_poison_update_skipped(bot: Bot, fake: FakeTelegramServer) -> None:
    flaky, poison, fine = queue_texts(fake, "flaky", "poison", "fine")
    offsets = MemoryOffsetStore()
    handler = Handler(asyncio.Event(), until=lambda h: h.seen[-1] == fine)
    handler.fail_times = {flaky: 1, poison: 99}
    await poll(bot, handler, offsets, max_attempts=3)
    assert handler.seen == [flaky, flaky, poison, poison, poison, fine]
    assert offsets.offset == fine + 1


async def test_stop_interrupts_a_long_poll(bot: Bot, fake: FakeTelegramServer) -> None:
    stop = asyncio.Event()
    handler = Handler(stop, until=lambda h: False)
    task = asyncio.create_task(run_polling(bot, handler, stop=stop, timeout=25))
    while not fake.calls_of("getUpdates"):
        await asyncio.sleep(0.01)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - started < 1.0


async def test_a_rival_poller_conflict_is_survived(bot: Bot, fake: FakeTelegramServer) -> None:
    handler = Handler(asyncio.Event(), until=lambda h: True)
    task = asyncio.create_task(poll(bot, handler))
    while not fake.calls_of("getUpdates"):
        await asyncio.sleep(0.01)
    rival = make_bot(fake.default_token, fake.base_url)
    try:
        assert await rival.get_updates(timeout=0) == []  # terminates our long poll with 409
    finally:
        await rival.session.close()
    [update_id] = queue_texts(fake, "после конфликта")
    await task
    assert handler.seen == [update_id]
    assert fake.calls_of("getUpdates")[0].status == 409


async def test_revoked_token_stops_polling(fake: FakeTelegramServer) -> None:
    bot = make_bot("999:revoked", fake.base_url)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await poll(bot, Handler(asyncio.Event(), until=lambda h: True))
    finally:
        await bot.session.close()
