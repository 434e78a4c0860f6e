"""Booking on SQLite and PostgreSQL: a slot taken is gone for everyone, a second booker of it is refused
with fresh alternatives (also two concurrent bookers), cancel frees it at once, moves, the refusals of the
issue (past, off the grid, day off, wrong staff, phone-only service, a shared resource), status rules, and
the events of the shared contract."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import StaffNotification
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.service import NewBooking, SlotTaken
from otklik.core.errors import Conflict, InvalidInput
from otklik.platform.staff.members import add_member
from tests.capabilities.bookings.conftest import MSK, NOW, Shop, events

SAT = NOW.date() + timedelta(days=2)


def _at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime.combine(NOW.date() + timedelta(days=day), datetime.min.time(), MSK).replace(
        hour=hour, minute=minute
    )


def _new(shop: Shop, start: datetime, **kw: object) -> NewBooking:
    values: dict[str, object] = {"service_id": shop.salon.haircut, "staff_id": shop.salon.aigul, "start": start,
                                 "client_name": "Мария", "phone": "+79123456789", "source": "webchat"}  # fmt: skip
    values.update(kw)
    return NewBooking(**values)  # type: ignore[arg-type]


async def _starts(shop: Shop, staff: int, service_id: int | None = None, day: int = 2) -> list[datetime]:
    async with shop.app.db.read() as session:
        slots = await service.find_slots(
            session, service_id or shop.salon.haircut, now=NOW, staff_id=staff, first_day=SAT + timedelta(day - 2),
            days=1, limit=500,
        )  # fmt: skip
    return [s.start for s in slots]


async def test_book_then_taken_then_cancel_frees_it(shop: Shop) -> None:
    start = _at(15)
    assert start in await _starts(shop, shop.salon.aigul)
    booking_id = await service.book_or_offer(shop.app.db, _new(shop, start), now=NOW)
    free = await _starts(shop, shop.salon.aigul)
    # 15:00-16:00 plus 15 min buffer: 14:15..16:00 starts are gone (they would overlap 15:00-16:15)
    assert start not in free and _at(16, 0) not in free and _at(16, 15) in free and _at(13, 0) in free
    assert _at(15) in await _starts(shop, shop.salon.olga)  # another master is free then

    with pytest.raises(SlotTaken) as taken:
        await service.book_or_offer(shop.app.db, _new(shop, _at(15, 30), client_name="Ирина"), now=NOW)
    assert "not free" in taken.value.user_message
    assert taken.value.alternatives and all(a in free for a in taken.value.alternatives)

    async with shop.app.db.write() as session:
        assert await service.set_status(session, booking_id, "cancelled", now=NOW)
        assert not await service.set_status(session, booking_id, "cancelled", now=NOW)  # a second tap: no-op
    assert start in await _starts(shop, shop.salon.aigul)  # freed at once
    again = await service.book_or_offer(shop.app.db, _new(shop, _at(15, 30), client_name="Ирина"), now=NOW)
    assert again != booking_id

    sent = await events(shop.app, "booking.")
    assert [e["type"] for e in sent] == ["booking.created", "booking.cancelled", "booking.created"]
    data = sent[0]["data"]
    assert sent[0]["subject"] == f"booking:{booking_id}"
    assert data["start"] == "2026-12-12T15:00:00+03:00" and data["end"] == "2026-12-12T16:00:00+03:00"
    assert (data["service"], data["staff"], data["timezone"], data["status"]) == ("Стрижка", "Айгуль",
                                                                                 "Europe/Moscow", "pending")  # fmt: skip
    assert data["price"] == "1500.00" and data["phone"] == "+79123456789" and data["source"] == "webchat"
    assert data["admin_url"] == f"/admin/bookings/{booking_id}"
    assert set(data) == {"booking_id", "lead_id", "contact_id", "conversation_id", "client_name", "phone",
                         "service_id", "service", "staff_id", "staff", "start", "end", "timezone", "status",
                         "source", "price", "notes", "summary", "admin_url"}  # fmt: skip


async def test_two_concurrent_bookers_one_wins(shop: Shop) -> None:
    start = _at(11)

    async def attempt(name: str) -> int | SlotTaken:
        try:
            return await service.book_or_offer(shop.app.db, _new(shop, start, client_name=name), now=NOW)
        except SlotTaken as exc:
            return exc

    results = await asyncio.gather(*(attempt(n) for n in ("Анна", "Вера", "Дина")))
    won = [r for r in results if isinstance(r, int)]
    lost = [r for r in results if isinstance(r, SlotTaken)]
    assert len(won) == 1 and len(lost) == 2
    assert all(start not in r.alternatives and r.alternatives for r in lost)
    async with shop.app.db.read() as session:
        rows = (await session.execute(select(m.bookings.c.client_name).where(m.bookings.c.start_at == start))).all()
    assert len(rows) == 1


async def test_the_refusals(shop: Shop) -> None:
    db = shop.app.db
    cases: list[tuple[NewBooking, type[Exception], str]] = [
        (_new(shop, _at(15, day=-1)), InvalidInput, "past"),
        (_new(shop, _at(15, 10)), InvalidInput, "quarter"),
        (_new(shop, _at(15).replace(tzinfo=None)), InvalidInput, "offset"),
        (_new(shop, _at(12, day=3)), SlotTaken, "does not work"),  # Sunday: Айгуль's day off
        (_new(shop, _at(14, 30)), SlotTaken, "not free"),  # the break 14:00-15:00
        (_new(shop, _at(19, 30)), SlotTaken, "not free"),  # would end after 20:00
        (_new(shop, _at(12, 15, day=0)), SlotTaken, "not free"),  # 15 minutes from now: under the notice
        (_new(shop, _at(11), service_id=shop.salon.manicure), InvalidInput, "does not do"),
        (_new(shop, _at(11), service_id=shop.salon.consult), InvalidInput, "by phone only"),
        (_new(shop, _at(11), service_id=999), Exception, "no service"),
        (_new(shop, _at(11), staff_id=999), InvalidInput, "does not do"),
        (_new(shop, _at(11), client_name="  "), InvalidInput, "client_name"),
        (_new(shop, _at(11), client_name="x" * 201), InvalidInput, "client_name"),
        (_new(shop, _at(11), notes="x" * 5000), InvalidInput, "notes"),
        (_new(shop, _at(11), source="DROP TABLE"), InvalidInput, "source"),
        (_new(shop, _at(11), status="completed"), InvalidInput, "status"),
    ]
    for new, kind, words in cases:
        with pytest.raises(kind) as refused:
            await service.book_or_offer(db, new, now=NOW)
        assert words in str(refused.value), (new, refused.value)
    async with db.read() as session:
        assert not (await session.execute(select(m.bookings.c.id))).all()  # nothing stored
    assert await events(shop.app, "booking.") == []
    # staff may book the phone-only consultation, and at short notice
    booked = await service.book_or_offer(
        db, _new(shop, _at(12, 30, day=0), service_id=shop.salon.consult, by_staff=True, source="admin"), now=NOW
    )
    assert booked > 0


async def test_a_shared_resource_is_never_double_booked(shop: Shop) -> None:
    db = shop.app.db
    async with db.write() as session:
        third = await service.add_staff(
            session, name="Дина", hours={"timezone": "Europe/Moscow", "week": {"sat": "09:00-18:00"}},
            services=[shop.salon.manicure], now=NOW,
        )  # fmt: skip
    start = _at(12)
    await service.book_or_offer(
        db, _new(shop, start, service_id=shop.salon.manicure, staff_id=shop.salon.olga), now=NOW
    )
    assert start not in await _starts(shop, third, shop.salon.manicure)  # the one chair is taken
    with pytest.raises(SlotTaken):
        await service.book_or_offer(
            db, _new(shop, _at(12, 30), service_id=shop.salon.manicure, staff_id=third), now=NOW
        )
    assert start in await _starts(shop, shop.salon.aigul)  # a haircut needs no chair


async def test_move_status_rules_and_reminders(shop: Shop) -> None:
    db = shop.app.db
    await add_member(db, "Администратор", email="desk@salon.example", packs="booking-ru", actor="test")
    await add_member(db, "Чужой", email="other@shop.example", packs="care-ru", actor="test")
    booking_id = await service.book_or_offer(db, _new(shop, _at(10)), now=NOW)
    async with db.read() as session:
        due = [r.due_at for r in (await session.execute(select(m.reminders).order_by(m.reminders.c.due_at))).all()]
    assert due == [_at(10, day=1), _at(9, 0), _at(13)]  # 24 h; 2 h before is 08:00, quiet: 09:00; after: +2 h

    async with db.write() as session:
        await service.move(session, booking_id, _at(16), now=NOW, staff_id=shop.salon.olga)
    assert _at(10) in await _starts(shop, shop.salon.aigul)
    assert _at(16) not in await _starts(shop, shop.salon.olga)
    async with db.read() as session:
        row = (await session.execute(select(m.bookings).where(m.bookings.c.id == booking_id))).one()
        due = [r.due_at for r in (await session.execute(select(m.reminders).order_by(m.reminders.c.due_at))).all()]
    assert (row.staff_id, row.start_at, row.end_at) == (shop.salon.olga, _at(16), _at(17))
    assert due == [_at(16, day=1), _at(14), _at(19)]
    with pytest.raises(SlotTaken):
        async with db.write() as session:
            await service.move(session, booking_id, _at(8), now=NOW)  # before Ольга starts

    async with db.write() as session:
        with pytest.raises(Conflict, match="not started"):
            await service.set_status(session, booking_id, "completed", now=NOW)
        assert await service.set_status(session, booking_id, "confirmed", now=NOW)
    async with db.write() as session:
        assert await service.set_status(session, booking_id, "no_show", now=_at(17))
    async with db.write() as session:
        with pytest.raises(Conflict):
            await service.set_status(session, booking_id, "cancelled", now=_at(17))
        with pytest.raises(InvalidInput):
            await service.set_status(session, booking_id, "teleported", now=_at(17))
        with pytest.raises(Conflict):
            await service.move(session, booking_id, _at(12), now=NOW)
    types = [e["type"] for e in await events(shop.app, "booking.")]
    assert types == ["booking.created", "booking.moved", "booking.confirmed", "booking.no_show"]
    async with db.read() as session:
        told = (await session.execute(select(StaffNotification).order_by(StaffNotification.id))).scalars().all()
    assert [(n.address, n.subject.split(":")[0]) for n in told] == [
        ("desk@salon.example", "Новая запись"), ("desk@salon.example", "Запись перенесена")]  # fmt: skip
    assert "Ольга" in told[1].body and "12.12.2026 16:00" in told[1].body and told[1].link.endswith(f"/{booking_id}")
    moved = (await events(shop.app, "booking.moved"))[0]["data"]
    assert moved["staff"] == "Ольга" and moved["start"] == "2026-12-12T16:00:00+03:00"
    assert Decimal(moved["price"]) == Decimal("1500")
