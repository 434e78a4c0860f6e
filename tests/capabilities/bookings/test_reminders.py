"""Reminders with a controllable clock: nothing before it is due, the 24 h one, the 2 h one (each once,
whatever the job's rounds), Подтверждаю / Перенести / Отменить answered in the booking's own conversation
only, cancel frees the slot at once and drops what was still to be sent, a booking without a conversation
is skipped with its route recorded (the seam of the SMS/e-mail fallback)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from otklik.capabilities.bookings import chat, jobs, service
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings.service import NewBooking
from otklik.core.errors import Conflict, InvalidInput
from tests.capabilities.bookings.conftest import MSK, NOW, Shop, bot_messages, events, new_conversation


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=MSK)


async def _reminders(shop: Shop) -> list[tuple[int, str, str | None]]:
    async with shop.app.db.read() as session:
        rows = (await session.execute(select(m.reminders).order_by(m.reminders.c.offset_min.desc()))).all()
    return [(r.offset_min, r.status, r.route) for r in rows]


async def test_the_reminders_journey(shop: Shop) -> None:
    ctx, db = shop.app.ctx, shop.app.db
    conversation_id = await new_conversation(shop.app)
    start = _at(12, 15)
    booking_id = await service.book_or_offer(
        db, NewBooking(shop.salon.haircut, shop.salon.aigul, start, "Мария", "+79123456789",
                       conversation_id=conversation_id, source="webchat"), now=NOW)  # fmt: skip
    route = f"conversation:{conversation_id}"
    assert await _reminders(shop) == [(1440, "pending", route), (120, "pending", route), (-120, "pending", route)]

    assert await jobs.send_due(ctx, start - timedelta(hours=24, minutes=1)) == 0
    assert await jobs.send_due(ctx, start - timedelta(hours=24)) == 1
    assert await jobs.send_due(ctx, start - timedelta(hours=23)) == 0  # once
    out = await bot_messages(shop.app, conversation_id)
    assert len(out) == 1 and "завтра" in out[0].text and "Стрижка" in out[0].text and "15:00" in out[0].text
    buttons = {b["title"]: b["payload"] for b in out[0].payload["buttons"]}
    assert buttons == {"Подтверждаю": f"bk:confirm:{booking_id}", "Перенести": f"bk:move:{booking_id}",
                       "Отменить": f"bk:cancel:{booking_id}"}  # fmt: skip

    tap = start - timedelta(hours=20)
    assert await chat.answer_button(ctx, conversation_id, buttons["Подтверждаю"], now=tap) == "confirmed"
    assert await chat.answer_button(ctx, conversation_id + 1, buttons["Отменить"], now=tap) is None  # not theirs
    assert await chat.answer_button(ctx, conversation_id, "bk:cancel:99999999999999999999", now=tap) is None
    assert await chat.answer_button(ctx, conversation_id, "bk:explode:1", now=tap) is None
    assert await chat.answer_button(ctx, conversation_id, buttons["Перенести"], now=tap) == "offered"
    offer = (await bot_messages(shop.app, conversation_id))[-1]
    slots = [b["payload"] for b in offer.payload["buttons"]]
    assert 2 <= len(slots) <= 7 and slots[-1] == f"bk:more:{shop.salon.haircut}"

    assert await jobs.send_due(ctx, start - timedelta(hours=2)) == 1
    assert "скоро" in (await bot_messages(shop.app, conversation_id))[-1].text
    assert [r[1] for r in await _reminders(shop)] == ["sent", "sent", "pending"]

    async with db.read() as session:
        free = await service.find_slots(session, shop.salon.haircut, now=NOW, staff_id=shop.salon.aigul, limit=500)
    assert start not in [s.start for s in free]
    assert await chat.answer_button(ctx, conversation_id, buttons["Отменить"], now=start - timedelta(hours=1)) == (
        "cancelled"
    )
    assert await chat.answer_button(ctx, conversation_id, buttons["Подтверждаю"], now=start) == "stale"
    assert "отменена" in (await bot_messages(shop.app, conversation_id))[-2].text
    async with db.read() as session:
        free = await service.find_slots(session, shop.salon.haircut, now=NOW, staff_id=shop.salon.aigul, limit=500)
    assert start in [s.start for s in free]  # freed at once
    types = [e["type"] for e in await events(shop.app, "booking.")]
    assert types == ["booking.created", "booking.confirmed", "booking.cancelled"]


async def test_cancelled_and_unroutable_reminders(shop: Shop) -> None:
    ctx, db = shop.app.ctx, shop.app.db
    conversation_id = await new_conversation(shop.app)
    kept = await service.book_or_offer(
        db, NewBooking(shop.salon.haircut, shop.salon.aigul, _at(12, 11), "Анна", conversation_id=conversation_id,
                       source="webchat"), now=NOW)  # fmt: skip
    phone_only = await service.book_or_offer(
        db,
        NewBooking(shop.salon.haircut, shop.salon.olga, _at(12, 11), "Вера", "+79123456780", source="admin"),
        now=NOW,
    )
    async with db.write() as session:
        await service.set_status(session, kept, "cancelled", now=NOW)
    assert await jobs.send_due(ctx, _at(11, 11)) == 0
    async with db.read() as session:
        rows = (await session.execute(select(m.reminders).order_by(m.reminders.c.id))).all()
    by_booking = {(r.booking_id, r.offset_min): (r.status, r.route) for r in rows}
    assert by_booking[(kept, 1440)] == ("cancelled", f"conversation:{conversation_id}")
    assert by_booking[(phone_only, 1440)] == ("skipped", "none")
    assert await bot_messages(shop.app, conversation_id) == []


async def test_after_the_visit_a_rating_and_rebooking(shop: Shop) -> None:
    ctx, db = shop.app.ctx, shop.app.db
    came, missed = await new_conversation(shop.app, "b1"), await new_conversation(shop.app, "b2")
    visit = await service.book_or_offer(
        db, NewBooking(shop.salon.haircut, shop.salon.aigul, _at(12, 16), "Анна", conversation_id=came,
                       source="webchat"), now=NOW)  # fmt: skip
    absent = await service.book_or_offer(
        db, NewBooking(shop.salon.haircut, shop.salon.olga, _at(12, 16), "Вера", conversation_id=missed,
                       source="webchat"), now=NOW)  # fmt: skip
    async with db.write() as session:
        with pytest.raises(Conflict):
            await service.rate(session, visit, 5, now=NOW)  # before the visit
        await service.set_status(session, visit, "completed", now=_at(12, 17, 5))
        await service.set_status(session, absent, "no_show", now=_at(12, 17, 5))
    assert await jobs.send_due(ctx, _at(12, 18, 59)) == 0  # 17:00 + 2 h
    assert await jobs.send_due(ctx, _at(12, 19)) == 1
    assert await bot_messages(shop.app, missed) == []
    (thanks,) = await bot_messages(shop.app, came)
    payloads = [b["payload"] for b in thanks.payload["buttons"]]
    assert payloads == [f"bk:rate:{visit}:{n}" for n in (5, 4, 3, 2, 1)] + [f"bk:svc:{shop.salon.haircut}"]
    async with db.write() as session:
        with pytest.raises(InvalidInput):
            await service.rate(session, visit, 6, now=_at(13, 9))
        await service.rate(session, visit, 4, now=_at(13, 9))
    async with db.write() as session:
        with pytest.raises(Conflict):
            await service.rate(session, visit, 5, now=_at(13, 9))
        with pytest.raises(Conflict):
            await service.rate(session, absent, 5, now=_at(13, 9))
    async with db.read() as session:
        assert (await session.execute(select(m.bookings.c.rating).where(m.bookings.c.id == visit))).scalar() == 4
