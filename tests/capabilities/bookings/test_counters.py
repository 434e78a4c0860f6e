"""Bookings declares its counters (`Capability.counters`): the metrics job counts leads and bookings without
reading bookings' tables itself, so the dashboard shows the lead → booking conversion."""

from __future__ import annotations

from datetime import timedelta

from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.service import NewBooking
from otklik.capabilities.metrics.aggregate import counters_of, recompute
from otklik.capabilities.metrics.definitions import Filters
from otklik.capabilities.metrics.query import report
from otklik.registry import CAPABILITIES
from tests.capabilities.bookings.conftest import NOW, Shop, new_conversation


async def test_leads_and_bookings_are_counted(shop: Shop) -> None:
    counters = {c.name: c for c in counters_of(CAPABILITIES)}
    assert {"leads", "bookings"} <= set(counters)
    conversation_id = await new_conversation(shop.app)
    async with shop.app.db.write() as session:
        slots = await service.find_slots(session, shop.salon.haircut, now=NOW, days=7, limit=2)
    for n, slot in enumerate(slots):
        await service.book_or_offer(
            shop.app.db,
            NewBooking(shop.salon.haircut, slot.staff_id, slot.start, f"Клиент {n}", "+79123456789",
                       conversation_id=conversation_id if n == 0 else None, source="webchat"),
            now=NOW,
        )  # fmt: skip
    async with shop.app.db.read() as session:
        counted = await counters["bookings"].fn(session, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
        assert sorted(counted, key=lambda c: c[1] is None) == [(NOW, conversation_id), (NOW, None)]
        assert await counters["bookings"].fn(session, NOW + timedelta(hours=1), NOW + timedelta(days=1)) == []
        assert await counters["leads"].fn(session, NOW - timedelta(hours=1), NOW + timedelta(hours=1)) == []
    await recompute(shop.app.db, tuple(counters.values()), now=NOW + timedelta(minutes=5))
    data = (await report(shop.app.db, Filters(NOW.date(), NOW.date()))).json()
    assert data["bookings"] == 2 and data["leads"] == 0 and data["conversion_lead_booking"] is None
