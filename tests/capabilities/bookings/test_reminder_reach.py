"""A reminder the booking's chat cannot carry goes through `platform.reach`: a booking made by phone (no
conversation) gets its SMS through the fake SMS.ru, once, whatever the job's rounds; a web-chat booking gets
the SMS and keeps the message (with its buttons) in the web chat for the next visit; the reminder records the
route, and the attempt whether it was delivered. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import Contact
from otklik.bootstrap import Otklik
from otklik.capabilities.bookings import jobs, service
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings.demo import salon
from otklik.capabilities.bookings.service import NewBooking
from otklik.platform.reach import config
from otklik.platform.reach.service import attempts_of
from otklik.testing.fake_sms import FakeSmsServer
from tests.capabilities.bookings.conftest import MSK, NOW, Shop, bot_messages, new_conversation
from tests.conftest import make_settings

API_ID = "test-api-id"


@pytest.fixture
async def fake_sms() -> AsyncIterator[FakeSmsServer]:
    async with FakeSmsServer(api_id=API_ID) as fake:
        yield fake


@pytest.fixture
async def shop(tmp_path: Path, db_url: str, fake_sms: FakeSmsServer) -> AsyncIterator[Shop]:
    app = Otklik.build(make_settings(tmp_path, db_url, sms_ru_url=fake_sms.base_url, reach_status_every=60))
    await app.start()
    await config.save(app.db, app.vault, provider="smsru", sender="SalonLen", secret=API_ID, actor="test")
    try:
        async with app.db.write() as session:
            found = await salon(session, now=NOW)
        yield Shop(app, found)
    finally:
        await app.close()


async def _contact(shop: Shop) -> int:
    async with shop.app.db.write() as session:
        contact = Contact(display_name="Мария", created_at=NOW, fields={}, tags={})
        session.add(contact)
        await session.flush()
        return int(contact.id)


async def _reminder_routes(shop: Shop) -> list[tuple[int, str, str | None]]:
    async with shop.app.db.read() as session:
        rows = (await session.execute(select(m.reminders).order_by(m.reminders.c.offset_min.desc()))).all()
    return [(r.offset_min, r.status, r.route) for r in rows]


async def _drain_reach(shop: Shop, now: datetime) -> None:
    assert shop.app.reach is not None
    for _ in range(4):  # the channel route refuses, then the SMS goes
        await shop.app.reach.run_once(now)


async def test_a_booking_by_phone_is_reminded_by_sms_once(shop: Shop, fake_sms: FakeSmsServer) -> None:
    contact_id = await _contact(shop)
    start = datetime(2026, 12, 12, 15, 0, tzinfo=MSK)
    booking_id = await service.book_or_offer(
        shop.app.db, NewBooking(shop.salon.haircut, shop.salon.aigul, start, "Мария", "+79123456789",
                                contact_id=contact_id, source="phone", by_staff=True), now=NOW,
    )  # fmt: skip
    due = start - timedelta(hours=24)
    assert await jobs.send_due(shop.app.ctx, due) == 1
    assert await jobs.send_due(shop.app.ctx, due + timedelta(minutes=5)) == 0  # once
    key = f"booking:{booking_id}:remind:1440"
    assert (1440, "sent", f"reach:{key}") in await _reminder_routes(shop)
    await _drain_reach(shop, due)
    [sms] = fake_sms.sent
    assert sms.to == "79123456789" and "Стрижка" in sms.text and "15:00" in sms.text
    attempts = await attempts_of(shop.app.db, key)
    assert attempts[-1].route == "sms" and attempts[-1].status == "sent"
    async with shop.app.db.read() as session:
        contact = await session.get(Contact, contact_id)
        assert contact is not None and contact.fields["phone"] == "+79123456789"

    fake_sms.set_status(sms.sms_id, 103)  # the gateway reports it delivered
    await _drain_reach(shop, due + timedelta(seconds=61))
    assert (await attempts_of(shop.app.db, key))[-1].status == "delivered"
    assert await jobs.send_due(shop.app.ctx, start - timedelta(hours=2)) == 1  # the 2 h one: a second SMS
    await _drain_reach(shop, start - timedelta(hours=2))
    assert len(fake_sms.sent) == 2


async def test_a_web_chat_booking_gets_the_sms_and_keeps_the_message_in_the_chat(
    shop: Shop, fake_sms: FakeSmsServer
) -> None:
    contact_id = await _contact(shop)
    conversation_id = await new_conversation(shop.app)
    start = datetime(2026, 12, 12, 15, 0, tzinfo=MSK)
    await service.book_or_offer(
        shop.app.db, NewBooking(shop.salon.haircut, shop.salon.aigul, start, "Мария", "+79123456789",
                                contact_id=contact_id, conversation_id=conversation_id, source="webchat"), now=NOW,
    )  # fmt: skip
    assert await jobs.send_due(shop.app.ctx, start - timedelta(hours=24)) == 1
    [shown] = await bot_messages(shop.app, conversation_id)
    assert "завтра" in shown.text and len(shown.payload["buttons"]) == 3
    await _drain_reach(shop, start - timedelta(hours=24))
    [sms] = fake_sms.sent
    assert sms.text == shown.text


async def test_no_phone_and_no_chat_is_skipped_with_its_route(shop: Shop, fake_sms: FakeSmsServer) -> None:
    start = datetime(2026, 12, 12, 15, 0, tzinfo=MSK)
    await service.book_or_offer(
        shop.app.db, NewBooking(shop.salon.haircut, shop.salon.aigul, start, "Мария", None, source="phone",
                                by_staff=True), now=NOW,
    )  # fmt: skip
    assert await jobs.send_due(shop.app.ctx, start - timedelta(hours=24)) == 0
    assert (1440, "skipped", "none") in await _reminder_routes(shop)
    await _drain_reach(shop, start - timedelta(hours=24))
    assert fake_sms.sent == []
