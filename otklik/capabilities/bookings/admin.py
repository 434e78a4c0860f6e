"""`/admin/bookings` (permission `bookings.manage`: owner, admin, operator): the bookings list with filters,
the day/week calendar of one master, a booking's page with its status buttons (confirm, completed, no-show,
cancel), the manual booking form, services and staff (add a service, add a master with weekly hours, breaks
and days off), and the leads. Every change is audited; a refused form shows the reason and saves nothing."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from otklik.capabilities.bookings import BOOKINGS, service
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings.schedule import load_hours
from otklik.clock import utcnow
from otklik.core.errors import NotFound, OtklikError
from otklik.platform.audit import audit
from otklik.platform.business_hours import WEEKDAYS
from otklik.platform.users import Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

router = APIRouter()
MAX_FIELD = 2000
PAGE = 200


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_fields=30, max_files=0)
    return {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}


def _day(raw: str | None, default: date) -> date:
    try:
        return date.fromisoformat((raw or "")[:10]) if raw else default
    except ValueError:
        return default


def _int(raw: str | None) -> int | None:
    text = (raw or "").strip()
    return int(text) if text.isdigit() and len(text) <= 18 else None


async def _choices(session: Any) -> dict[str, Any]:
    services = (await session.execute(select(m.services).order_by(m.services.c.id))).all()
    staff = (await session.execute(select(m.staff).order_by(m.staff.c.id))).all()
    links = (await session.execute(select(m.staff_services))).all()
    does: dict[int, list[str]] = {}
    names = {int(s.id): s.name for s in services}
    for link in links:
        does.setdefault(int(link.staff_id), []).append(names.get(int(link.service_id), "?"))
    people = [
        {"id": int(p.id), "name": p.name, "hours": load_hours(p.hours), "services": ", ".join(does.get(int(p.id), []))}
        for p in staff
    ]
    return {"services": services, "staff": people}


async def _list(request: Request, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    q = request.query_params
    today = utcnow().date()
    first, last = _day(q.get("from"), today - timedelta(days=1)), _day(q.get("to"), today + timedelta(days=14))
    status = q.get("status") or ""
    staff_id = _int(q.get("staff"))
    query = select(m.bookings).where(
        m.bookings.c.start_at >= datetime.combine(first, time(0), ZoneInfo("UTC")),
        m.bookings.c.start_at < datetime.combine(last + timedelta(days=1), time(0), ZoneInfo("UTC")),
    )
    if status in service.STATUSES:
        query = query.where(m.bookings.c.status == status)
    if staff_id is not None:
        query = query.where(m.bookings.c.staff_id == staff_id)
    async with otklik_of(request).db.read() as session:
        rows = (await session.execute(query.order_by(m.bookings.c.start_at).limit(PAGE))).all()
        choices = await _choices(session)
    extra.setdefault("form", {})
    return render(
        request, "admin/bookings_list.html", status_code=status_code, rows=rows, statuses=service.STATUSES,
        filters={"from": first.isoformat(), "to": last.isoformat(), "status": status, "staff": staff_id},
        names={int(s.id): s.name for s in choices["services"]}, people={p["id"]: p["name"] for p in choices["staff"]},
        **choices, **extra,
    )  # fmt: skip


@router.get("/bookings", response_class=HTMLResponse, include_in_schema=False)
async def bookings_page(request: Request, _p: Principal = Depends(need(BOOKINGS))) -> HTMLResponse:
    return await _list(request)


@router.post("/bookings", response_class=HTMLResponse, include_in_schema=False)
async def manual_booking(request: Request, principal: Principal = Depends(need(BOOKINGS))) -> Response:
    """The manual booking form: service, master, local date and time (the master's zone), client, phone."""
    fields = await _form(request)
    now = utcnow()
    try:
        service_id, staff_id = _int(fields.get("service_id")), _int(fields.get("staff_id"))
        if service_id is None or staff_id is None:
            raise OtklikError("choose a service and a master")
        async with otklik_of(request).db.read() as session:
            hours = (await session.execute(select(m.staff.c.hours).where(m.staff.c.id == staff_id))).scalar()
        if hours is None:
            raise OtklikError("no such master")
        try:
            local = datetime.fromisoformat(fields.get("start", "")[:16])
        except ValueError:
            raise OtklikError("start: a date and a time like 2026-12-12T15:00") from None
        start = local.replace(tzinfo=load_hours(hours).zone)
        phone = service.phone_e164(fields["phone"]) if fields.get("phone", "").strip() else None
        booking_id = await service.book_or_offer(otklik_of(request).db, service.NewBooking(
            service_id, staff_id, start, fields.get("client_name", ""), phone, source="admin",
            notes=fields.get("notes", ""), status="confirmed", by_staff=True,
        ), now=now)  # fmt: skip
    except service.SlotTaken as exc:
        free = ", ".join(f"{a:%d.%m %H:%M}" for a in exc.alternatives[:6])
        return await _list(request, status_code=409, errors=[exc.user_message + (f" — free: {free}" if free else "")],
                           form=fields)  # fmt: skip
    except OtklikError as exc:
        return await _list(request, status_code=422, errors=[exc.user_message], form=fields)
    async with otklik_of(request).db.write() as session:
        audit(session, principal.login, "booking.create", "booking", booking_id, {"source": "admin"}, now=now)
    return RedirectResponse(f"/admin/bookings/{booking_id}", status_code=303)


@router.get("/bookings/calendar", response_class=HTMLResponse, include_in_schema=False)
async def calendar_page(request: Request, _p: Principal = Depends(need(BOOKINGS))) -> HTMLResponse:
    """One master's day or week: the bookings and the free starts of each service they do."""
    q = request.query_params
    async with otklik_of(request).db.read() as session:
        choices = await _choices(session)
        staff_id = _int(q.get("staff")) or (choices["staff"][0]["id"] if choices["staff"] else None)
        person = next((p for p in choices["staff"] if p["id"] == staff_id), None)
        days: list[dict[str, Any]] = []
        if person is not None:
            zone = person["hours"].zone
            first = _day(q.get("day"), utcnow().astimezone(zone).date())
            span = 7 if q.get("view") == "week" else 1
            start = datetime.combine(first, time(0), zone)
            rows = (await session.execute(select(m.bookings).where(
                m.bookings.c.staff_id == staff_id, m.bookings.c.start_at >= start,
                m.bookings.c.start_at < start + timedelta(days=span)).order_by(m.bookings.c.start_at))).all()  # fmt: skip
            for n in range(span):
                day = first + timedelta(days=n)
                days.append({
                    "day": day, "weekday": WEEKDAYS[day.weekday()], "off": day in person["hours"].holidays,
                    "hours": person["hours"].day_text(day.weekday()),
                    "bookings": [r for r in rows if r.start_at.astimezone(zone).date() == day],
                    "zone": zone,
                })  # fmt: skip
    return render(request, "admin/bookings_calendar.html", days=days, person=person, view=q.get("view") or "day",
                  names={int(s.id): s.name for s in choices["services"]}, **choices)  # fmt: skip


@router.get("/bookings/leads", response_class=HTMLResponse, include_in_schema=False)
async def leads_page(request: Request, _p: Principal = Depends(need(BOOKINGS))) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        rows = (await session.execute(select(m.leads).order_by(m.leads.c.id.desc()).limit(PAGE))).all()
    return render(request, "admin/bookings_leads.html", rows=rows, lead=None)


@router.get("/bookings/leads/{lead_id}", response_class=HTMLResponse, include_in_schema=False)
async def lead_page(request: Request, lead_id: PathId, _p: Principal = Depends(need(BOOKINGS))) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        row = (await session.execute(select(m.leads).where(m.leads.c.id == lead_id))).first()
    if row is None:
        return render(request, "admin/bookings_leads.html", status_code=404, rows=[], lead=None, missing=True)
    return render(request, "admin/bookings_leads.html", rows=[row], lead=row)


@router.post("/bookings/services", response_class=HTMLResponse, include_in_schema=False)
async def add_service(request: Request, principal: Principal = Depends(need(BOOKINGS))) -> Response:
    fields = await _form(request)
    now = utcnow()
    try:
        offsets = [int(x) * 60 for x in fields.get("reminders_hours", "24, 2").replace(" ", "").split(",") if x]
        async with otklik_of(request).db.write() as session:
            new = await service.add_service(
                session, name=fields.get("name", ""), duration_min=fields.get("duration_min", ""),
                price=fields.get("price", ""), buffer_min=fields.get("buffer_min") or 0,
                online=fields.get("online") == "on", reminders=offsets, now=now,
            )  # fmt: skip
            audit(session, principal.login, "booking.service_add", "booking_service", new, {"name": fields.get("name")})
    except (OtklikError, ValueError) as exc:
        message = exc.user_message if isinstance(exc, OtklikError) else "reminders: hours like 24, 2"
        return await _list(request, status_code=422, errors=[message], service_form=fields)
    return RedirectResponse("/admin/bookings#services", status_code=303)


@router.post("/bookings/staff", response_class=HTMLResponse, include_in_schema=False)
async def add_staff(request: Request, principal: Principal = Depends(need(BOOKINGS))) -> Response:
    """A master: name, time zone, one line per day (`mon 10:00-14:00, 15:00-20:00`), days off, services."""
    fields = await _form(request)
    form = await request.form(max_fields=60, max_files=0)
    services = [int(v) for v in form.getlist("services") if isinstance(v, str) and v.isdigit() and len(v) <= 18]
    week: dict[str, str] = {}
    for line in fields.get("week", "").splitlines():
        day, _, spans = line.strip().partition(" ")
        if day:
            week[day.lower()[:10]] = spans.strip()
    now = utcnow()
    try:
        async with otklik_of(request).db.write() as session:
            new = await service.add_staff(
                session, name=fields.get("name", ""), services=services, now=now,
                hours={"timezone": fields.get("timezone", ""), "week": week, "holidays": fields.get("days_off", "")},
            )  # fmt: skip
            audit(session, principal.login, "booking.staff_add", "booking_staff", new, {"name": fields.get("name")})
    except OtklikError as exc:
        errors = list(exc.details) if isinstance(exc.details, list) else [exc.user_message]
        return await _list(request, status_code=422, errors=errors, staff_form=fields)
    return RedirectResponse("/admin/bookings#staff", status_code=303)


@router.get("/bookings/{booking_id}", response_class=HTMLResponse, include_in_schema=False)
async def booking_page(request: Request, booking_id: PathId, _p: Principal = Depends(need(BOOKINGS))) -> Response:
    async with otklik_of(request).db.read() as session:
        try:
            data = await service.booking_data(session, booking_id)
        except NotFound:
            return render(request, "admin/bookings_one.html", status_code=404, booking=None, moves=())
    return render(request, "admin/bookings_one.html", booking=data, moves=sorted(service.MOVES[data["status"]]))


@router.post("/bookings/{booking_id}/status", response_class=HTMLResponse, include_in_schema=False)
async def change_status(
    request: Request, booking_id: PathId, principal: Principal = Depends(need(BOOKINGS))
) -> Response:
    fields = await _form(request)
    status = fields.get("status", "")
    now = utcnow()
    try:
        async with otklik_of(request).db.write() as session:
            changed = await service.set_status(session, booking_id, status, now=now)
            if changed:
                audit(session, principal.login, f"booking.{status}"[:64], "booking", booking_id, None, now=now)
    except NotFound:
        return render(request, "admin/bookings_one.html", status_code=404, booking=None, moves=())
    except OtklikError as exc:
        async with otklik_of(request).db.read() as session:
            data = await service.booking_data(session, booking_id)
        return render(request, "admin/bookings_one.html", status_code=409, booking=data, errors=[exc.user_message],
                      moves=sorted(service.MOVES[data["status"]]))  # fmt: skip
    return RedirectResponse(f"/admin/bookings/{booking_id}", status_code=303)
