"""The booking talk on Telegram (the real aiogram runtime over webhooks against the fake Bot API on
loopback): a sentence → slot buttons → name → phone → confirmation; the 24 h reminder (controllable clock)
→ Подтверждаю → Отменить frees the slot. Callback data within Telegram's 64 bytes. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from otklik.bootstrap import Otklik
from otklik.capabilities.bookings import jobs, service
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings.demo import Salon, salon
from otklik.channels.telegram.adapter import SECRET_HEADER
from otklik.clock import utcnow
from otklik.platform.channel_accounts import add_account
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from otklik.web.app import create_app
from tests.capabilities.bookings.conftest import MSK
from tests.capabilities.sales.test_journey_telegram import CHAT, keyboard, replies
from tests.conftest import make_settings

SECRET = "fake-webhook-secret-for-bookings-tests"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def desk(tmp_path: Path, db_url: str, fake: FakeTelegramServer) -> AsyncIterator[tuple[Otklik, Salon, Any]]:
    app = Otklik.build(make_settings(tmp_path, db_url, telegram_api_url=fake.base_url, default_pack="booking-ru"))
    await app.start()
    async with app.db.write() as session:
        found = await salon(session, now=utcnow())
    account = await add_account(
        app.db, app.vault, kind="telegram", name="salon_bot", pack="booking-ru", secret=DEFAULT_TOKEN,
        config={"username": "otklik_salon_bot", "webhook_secret": app.vault.encrypt(SECRET)},
    )  # fmt: skip
    await app.reload()
    web = create_app(app, worker=False, manage_lifecycle=False)
    app.start_worker()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:

            async def post(update: dict[str, Any]) -> None:
                response = await http.post(f"/webhooks/telegram/{account}", content=json.dumps(update).encode(),
                                           headers={"Content-Type": "application/json", SECRET_HEADER: SECRET})  # fmt: skip
                assert response.status_code == 200, response.text

            yield app, found, post
    finally:
        await app.close()


def _start(data: str) -> datetime:
    return datetime.fromtimestamp(int(data.rsplit(":", 1)[1]), MSK)


async def test_a_booking_on_telegram(fake: FakeTelegramServer, desk: tuple[Otklik, Salon, Callable[..., Any]]) -> None:
    app, found, post = desk
    seen = 0

    async def say(text: str, expect: int = 1) -> list[dict[str, Any]]:
        nonlocal seen
        await post(fake.text_update(CHAT, text))
        got = await replies(fake, seen, expect)
        seen += expect
        return got

    async def tap(message: dict[str, Any], title: str, expect: int = 1) -> list[dict[str, Any]]:
        nonlocal seen
        await post(fake.callback_update(CHAT, keyboard(message)[title], message_id=message["message_id"]))
        got = await replies(fake, seen, expect)
        seen += expect
        return got

    (offer,) = await say("Хочу записаться на стрижку к Ольге в субботу")
    buttons = keyboard(offer)
    slots = {title: data for title, data in buttons.items() if data.startswith("bk:slot:")}
    assert 3 <= len(slots) <= 6 and "Другие даты" in buttons
    assert all(len(d.encode()) <= 64 for d in buttons.values()) and all(
        t.endswith("· Ольга") and t.startswith("сб ") for t in slots
    )
    title, data = next(iter(slots.items()))
    (ask,) = await tap(offer, title)
    assert ask["text"] == "Как вас зовут?" and fake.calls_of("answerCallbackQuery")
    await say("Мария")
    (bad,) = await say("позвоните мне")
    assert "Не похоже на номер" in bad["text"]
    (done,) = await say("8 912 345 67 89")
    assert (done.get("text") or done.get("caption") or "").startswith("Готово! Вы записаны: Стрижка, мастер Ольга")
    assert fake.calls_of("sendDocument")  # the .ics

    async with app.db.read() as session:
        row = (await session.execute(select(m.bookings))).one()
        first_due = (
            await session.execute(
                select(m.reminders.c.due_at).where(m.reminders.c.offset_min > 0).order_by(m.reminders.c.due_at)
            )
        ).scalar()
    assert (row.start_at, row.phone, row.source) == (_start(data), "+79123456789", "telegram")
    assert first_due is not None and first_due < row.start_at  # 24 h before
    assert await jobs.send_due(app.ctx, first_due - timedelta(seconds=1)) == 0
    assert await jobs.send_due(app.ctx, first_due) == 1
    (reminder,) = await replies(fake, seen, 1)
    seen += 1
    assert "Напоминаем" in reminder["text"] and set(keyboard(reminder)) == {"Подтверждаю", "Перенести", "Отменить"}
    (thanks,) = await tap(reminder, "Подтверждаю")
    assert thanks["text"] == "Спасибо, ждём вас!"
    (cancelled,) = await tap(reminder, "Отменить")
    assert "отменена" in cancelled["text"]
    async with app.db.read() as session:
        free = await service.find_slots(session, found.haircut, now=utcnow(), staff_id=found.olga, limit=1000,
                                        first_day=row.start_at.astimezone(MSK).date(), days=1)  # fmt: skip
        status = (await session.execute(select(m.bookings.c.status))).scalar()
    assert status == "cancelled" and row.start_at in [s.start for s in free]
