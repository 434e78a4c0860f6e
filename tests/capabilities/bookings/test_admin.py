"""`/admin/bookings`: roles (viewer refused, operator allowed), CSRF, escaped output; the list's filters, the
manual booking form (a taken slot, a bad phone, a bad date: 4xx, nothing stored), the status buttons
(no-show only after the start), services and staff forms with bad hours, the calendar and the leads."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings import service
from otklik.clock import utcnow
from otklik.platform.users import Role
from tests.capabilities.bookings.conftest import MSK, Shop


def _next(weekday: int, hour: int) -> str:
    day = utcnow().astimezone(MSK).date() + timedelta(days=1)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return f"{day.isoformat()}T{hour:02d}:00"


async def _count(shop: Shop) -> int:
    async with shop.app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(m.bookings)) or 0)


async def test_roles_csrf_and_escaping(shop: Shop, as_role, anon) -> None:  # type: ignore[no-untyped-def]
    assert (await anon.get("/admin/bookings", follow_redirects=False)).status_code in (303, 401)
    viewer = await as_role(Role.ANALYST)
    assert (await viewer.http.get("/admin/bookings")).status_code == 403
    operator = await as_role(Role.OPERATOR)
    form = {"service_id": str(shop.salon.haircut), "staff_id": str(shop.salon.aigul), "start": _next(5, 11),
            "client_name": "<script>alert(1)</script>", "phone": "+79123456789", "notes": "<b>x</b>"}  # fmt: skip
    no_csrf = await operator.http.post("/admin/bookings", data=form)
    assert no_csrf.status_code == 403 and await _count(shop) == 0
    booked = await operator.post("/admin/bookings", form)
    assert booked.status_code == 303, booked.text
    page = await operator.http.get(booked.headers["location"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    listing = await operator.http.get("/admin/bookings", params={"status": "confirmed"})
    assert listing.status_code == 200 and "&lt;script&gt;" in listing.text and "data-booking=" in listing.text
    assert "data-booking=" not in (await operator.http.get("/admin/bookings", params={"status": "cancelled"})).text


async def test_manual_booking_refusals_and_status(shop: Shop, as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    base = {"service_id": str(shop.salon.haircut), "staff_id": str(shop.salon.aigul), "client_name": "Анна"}
    ok = await admin.post("/admin/bookings", {**base, "start": _next(5, 11)})
    assert ok.status_code == 303
    booking_id = int(ok.headers["location"].rsplit("/", 1)[1])
    for fields, status, words in (
        ({"start": _next(5, 11)}, 409, "not free"),  # taken
        ({"start": _next(6, 11)}, 409, "does not work"),  # Sunday
        ({"start": "2026-02-31T10:00"}, 422, "start"),
        ({"start": _next(5, 12), "phone": "12"}, 422, "phone"),
        ({"start": _next(5, 12), "staff_id": "99999999999999999999"}, 422, "master"),
    ):
        response = await admin.post("/admin/bookings", {**base, **fields})
        assert response.status_code == status and words in response.text, (fields, response.text[-400:])
    assert await _count(shop) == 1

    page = await admin.http.get(f"/admin/bookings/{booking_id}")
    assert 'data-testid="to-cancelled"' in page.text and 'data-testid="to-confirmed"' not in page.text  # confirmed
    early = await admin.post(f"/admin/bookings/{booking_id}/status", {"status": "no_show"})
    assert early.status_code == 409 and "not started" in early.text
    bad = await admin.post(f"/admin/bookings/{booking_id}/status", {"status": "<x>"})
    assert bad.status_code == 409 and "status: one of" in bad.text and "<x>" not in bad.text
    done = await admin.post(f"/admin/bookings/{booking_id}/status", {"status": "cancelled"})
    assert done.status_code == 303
    async with shop.app.db.read() as session:
        assert (await session.execute(select(m.bookings.c.status))).scalar() == "cancelled"
    assert (await admin.http.get("/admin/bookings/999999")).status_code == 404
    assert (await admin.http.get("/admin/bookings/99999999999999999999")).status_code == 422


async def test_services_staff_calendar_and_leads(shop: Shop, as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    bad = await admin.post("/admin/bookings/services", {"name": "Пилинг", "duration_min": "5", "price": "abc"})
    assert bad.status_code == 422 and "duration" in bad.text
    good = await admin.post("/admin/bookings/services",
                            {"name": "Пилинг", "duration_min": "45", "price": "1200.50", "online": "on"})  # fmt: skip
    assert good.status_code == 303
    hours = await admin.post("/admin/bookings/staff", {"name": "Зоя", "timezone": "Mars/Olympus",
                                                      "week": "mon 25:00-26:00\nfunday 10:00-12:00"})  # fmt: skip
    assert hours.status_code == 422 and "timezone" in hours.text and "mon" in hours.text
    added = await admin.http.post("/admin/bookings/staff", data={
        "csrf_token": admin.csrf, "name": "Зоя", "timezone": "Europe/Moscow", "week": "mon 10:00-14:00, 15:00-19:00",
        "days_off": "2026-12-28", "services": [str(shop.salon.haircut)]})  # fmt: skip
    assert added.status_code == 303
    listing = await admin.http.get("/admin/bookings")
    assert "Пилинг" in listing.text and "Зоя" in listing.text and "10:00-14:00, 15:00-19:00" in listing.text

    async with shop.app.db.write() as session:
        start = (await service.find_slots(session, shop.salon.haircut, now=utcnow(), staff_id=shop.salon.olga))[0]
        await service.book(session, service.NewBooking(shop.salon.haircut, shop.salon.olga, start.start, "Вера"),
                           now=utcnow())  # fmt: skip
        lead = await service.record_lead(session, service.NewLead("Лида <i>", "+79123456780", "api",
                                                                  utm={"source": "vk"}), now=utcnow())  # fmt: skip
    day = start.start.astimezone(MSK).date().isoformat()
    calendar = await admin.http.get("/admin/bookings/calendar", params={"staff": shop.salon.olga, "day": day})
    assert calendar.status_code == 200 and "Вера" in calendar.text and "Стрижка" in calendar.text
    week = await admin.http.get("/admin/bookings/calendar", params={"staff": "x", "day": "never", "view": "week"})
    assert week.status_code == 200 and week.text.count("data-day=") == 7
    leads = await admin.http.get(f"/admin/bookings/leads/{lead.lead_id}")
    assert leads.status_code == 200 and "Лида &lt;i&gt;" in leads.text and "source=vk" in leads.text
    assert (await admin.http.get("/admin/bookings/leads/12345")).status_code == 404
