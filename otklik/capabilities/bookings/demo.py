"""The demo install's salon: four services, two masters with breaks and days off, a chair resource for
the manicure, and a few bookings of the coming days. `salon` is also what the tests start from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings import service
from otklik.platform.demo import DemoSeed

TABLES = ("bookings_reminders", "bookings_bookings", "bookings_leads", "bookings_staff", "bookings_services",
          "bookings_resources")  # fmt: skip
AIGUL_HOURS = {
    "timezone": "Europe/Moscow",
    "week": {d: "10:00-14:00, 15:00-20:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat")},
    "holidays": [],
}
OLGA_HOURS = {"timezone": "Europe/Moscow", "week": {d: "09:00-18:00" for d in ("tue", "wed", "thu", "fri", "sat", "sun")},
              "holidays": []}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Salon:
    haircut: int
    manicure: int
    coloring: int
    consult: int
    aigul: int
    olga: int
    chair: int


async def salon(session: AsyncSession, *, now: datetime, record: Any = None) -> Salon:
    """Services, staff and a resource (in the caller's transaction)."""

    def keep(table: str, row_id: int) -> int:
        if record is not None:
            record(table, SimpleNamespace(id=row_id))
        return row_id

    chair = keep("bookings_resources", await service.add_resource(session, "Маникюрное кресло", now=now))
    haircut = keep("bookings_services", await service.add_service(
        session, name="Стрижка", duration_min=60, price="1500", buffer_min=15, now=now,
        reminders=(1440, 120, -120)))  # fmt: skip
    manicure = keep("bookings_services", await service.add_service(
        session, name="Маникюр", duration_min=90, price="2000", now=now, resource_id=chair))  # fmt: skip
    coloring = keep("bookings_services", await service.add_service(
        session, name="Окрашивание", duration_min=180, price="5500", buffer_min=30, now=now,
        reminders=(2880, 120)))  # fmt: skip
    consult = keep("bookings_services", await service.add_service(
        session, name="Консультация стилиста", duration_min=30, price="0", online=False, now=now))  # fmt: skip
    aigul = keep("bookings_staff", await service.add_staff(
        session, name="Айгуль", hours=AIGUL_HOURS, services=[haircut, coloring, consult], now=now))  # fmt: skip
    olga = keep("bookings_staff", await service.add_staff(
        session, name="Ольга", hours=OLGA_HOURS, services=[haircut, manicure], now=now))  # fmt: skip
    return Salon(haircut, manicure, coloring, consult, aigul, olga, chair)


async def seed(session: AsyncSession, demo: DemoSeed) -> None:
    """The demo install: the salon and three bookings of the demo buyers in the coming days."""
    found = await salon(session, now=demo.now, record=demo.record)
    clients = list(demo.conversations)[:3]
    for n, conv in enumerate(clients):
        slots = await service.find_slots(session, found.haircut, now=demo.now, days=7, limit=40)
        if not slots:
            return
        pick = slots[min(len(slots) - 1, 5 + n * 7)]
        booking_id = await service.book(
            session,
            service.NewBooking(
                service_id=found.haircut, staff_id=pick.staff_id, start=pick.start, client_name=f"Клиент {n + 1}",
                contact_id=conv.contact_id, source="demo", status="confirmed" if n else "pending",
            ),
            now=demo.now,
        )  # fmt: skip
        demo.record("bookings_bookings", SimpleNamespace(id=booking_id))
        await session.execute(
            update(m.reminders).where(m.reminders.c.booking_id == booking_id).values(status="skipped")
        )  # the demo never reminds anyone


__all__ = ["TABLES", "Salon", "salon", "seed"]
