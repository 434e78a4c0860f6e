"""`POST /api/lead` (API token with the `leads` scope; also `/api/v1/bookings/leads`): a lead from a site form
or an ad platform.

In: `{"client_name", "phone", "service_id", "preferred_time", "source"}` plus optional `email`, `comment`,
`utm_source`, `utm_medium`, `utm_campaign`, `utm_content`, `utm_term`. A refusal is 422 `{"error":
"invalid", "message", "fields": {name: why}}` naming every bad field. The same phone within 24 hours is
the same lead (200 with `duplicate: true`); a new one is 201. The contact is matched (an earlier lead or
booking with the phone) or created, and `lead.created` is emitted. When the contact has a reachable
conversation, the bot writes first there with the nearest slots of the service.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.chat import write_first
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.restapi import (
    ApiError,
    check_query,
    decode_cursor,
    error_responses,
    idempotent,
    page,
    page_limit,
    plain,
    read_json,
)
from otklik.platform.webkit.params import BIGINT_MAX, PathId

SCOPE = "leads"
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
FIELDS = ("client_name", "phone", "service_id", "preferred_time", "source", "email", "comment", *UTM)
EMAIL = re.compile(r"[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}")
MAX_COMMENT = 2000

router = APIRouter(tags=["leads"])


def _text(data: dict[str, Any], name: str, limit: int, errors: dict[str, str], *, required: bool = False) -> str | None:
    raw = data.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            errors[name] = "required"
        return None
    if not isinstance(raw, str):
        errors[name] = "a string"
        return None
    text = " ".join(raw.split()) if name != "comment" else raw.strip()
    if len(text) > limit:
        errors[name] = f"at most {limit} characters"
        return None
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        errors[name] = "control characters"
        return None
    return text


def parse_lead(data: dict[str, Any], *, now: datetime) -> service.NewLead:
    """The lead of an API body; `InvalidInput` with `details` {field: why} naming every bad field."""
    errors: dict[str, str] = {}
    name = _text(data, "client_name", service.MAX_CLIENT_NAME, errors, required=True)
    phone_raw = _text(data, "phone", 32, errors, required=True)
    phone = None
    if phone_raw is not None:
        try:
            phone = service.phone_e164(phone_raw)
        except InvalidInput:
            errors["phone"] = "not a valid phone number (e.g. +7 912 345-67-89)"
    service_id = data.get("service_id")
    if service_id is not None and (isinstance(service_id, bool) or not isinstance(service_id, int)
                                   or not 1 <= service_id <= 2**63 - 1):  # fmt: skip
        errors["service_id"] = "a service's id (a positive integer)"
        service_id = None
    preferred: datetime | None = None
    when = _text(data, "preferred_time", 40, errors)
    if when is not None:
        try:
            preferred = datetime.fromisoformat(when)
        except ValueError:
            errors["preferred_time"] = "ISO 8601 with an offset, e.g. 2026-12-12T15:00:00+03:00"
        else:
            if preferred.tzinfo is None:
                errors["preferred_time"] = "needs an offset, e.g. +03:00"
                preferred = None
            elif preferred < now:
                errors["preferred_time"] = "in the past"
                preferred = None
    source = _text(data, "source", 32, errors, required=True)
    if source is not None and not service.SOURCE.fullmatch(source.lower()):
        errors["source"] = "lower-case letters, digits, _ or - (e.g. site, yandex_direct)"
    email = _text(data, "email", 254, errors)
    if email is not None and not EMAIL.fullmatch(email):
        errors["email"] = "not an e-mail address"
    comment = _text(data, "comment", MAX_COMMENT, errors)
    utm: dict[str, str] = {}
    for key in UTM:
        value = _text(data, key, 200, errors)
        if value:
            utm[key.removeprefix("utm_")] = value
    if errors:
        raise InvalidInput("; ".join(f"{k}: {v}" for k, v in errors.items()), details=errors)
    assert name is not None and source is not None
    return service.NewLead(
        client_name=name, phone=phone, source=source.lower(), service_id=service_id, preferred_time=preferred,
        email=email, comment=comment, utm=utm,
    )  # fmt: skip


async def _create(request: Request, data: dict[str, Any]) -> JSONResponse:
    otklik = request.app.state.otklik
    now = utcnow()
    try:
        lead = parse_lead(data, now=now)
    except InvalidInput as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        return JSONResponse({"error": "invalid", "message": exc.user_message, "fields": details}, status_code=422)
    async with otklik.db.write() as session:
        if lead.service_id is not None:
            try:
                await service.get_service(session, lead.service_id)
            except NotFound:
                return JSONResponse(
                    {"error": "invalid", "message": "service_id: no such service",
                     "fields": {"service_id": "no such service"}},
                    status_code=422,
                )  # fmt: skip
        result = await service.record_lead(session, lead, now=now)
    written = False
    if not result.duplicate and result.contact_id is not None and lead.service_id is not None:
        written = await write_first(otklik.ctx, result.contact_id, lead.service_id, now=now)
    body = {"id": result.lead_id, "contact_id": result.contact_id, "duplicate": result.duplicate, "messaged": written}
    return JSONResponse(body, status_code=200 if result.duplicate else 201)


async def create_lead(request: Request, caller: ApiCaller = Depends(require_scope(SCOPE))) -> JSONResponse:
    data = await read_json(request, FIELDS)
    return await idempotent(request, caller.token_id, lambda: _create(request, data))


_RESPONSES = {201: {"description": "the lead"}} | error_responses(401, 403, 413, 415, 422, 429)
router.add_api_route("/api/lead", create_lead, methods=["POST"], summary="Send a lead", responses=_RESPONSES)
router.add_api_route("/api/v1/bookings/leads", create_lead, methods=["POST"], summary="Send a lead (same as /api/lead)",
                     responses=_RESPONSES)  # fmt: skip


# --- reading: `GET /api/v1/bookings[/{id}]` (scope `bookings.read`), `GET /api/v1/bookings/leads[/{id}]`
# (scope `leads.read`; `leads` alone still only sends leads). The REST conventions of docs/api.md: cursor
# paging newest first, errors {"error", "message"}, unknown query parameters refused.

READ_BOOKINGS = "bookings.read"
READ_LEADS = "leads.read"
LEAD_STATUSES = ("new", "booked", "closed")
BOOKING_EXAMPLE = {
    "id": 7, "booking_id": 7, "lead_id": 3, "contact_id": 17, "conversation_id": 40, "client_name": "Мария Петрова",
    "phone": "+79123456789", "service_id": 1, "service": "Стрижка", "staff_id": 2, "staff": "Айгуль",
    "start": "2026-12-12T15:00:00+03:00", "end": "2026-12-12T16:00:00+03:00", "timezone": "Europe/Moscow",
    "status": "confirmed", "source": "site", "price": "1500.00", "notes": "", "rating": None,
    "admin_url": "/admin/bookings/7", "created_at": "2026-12-10T09:00:00.000Z", "updated_at": "2026-12-10T09:00:00.000Z",
}  # fmt: skip
LEAD_EXAMPLE = {
    "id": 3, "contact_id": 17, "conversation_id": None, "client_name": "Мария Петрова", "phone": "+79123456789",
    "email": None, "service_id": 1, "preferred_time": "2026-12-12T12:00:00.000Z", "source": "site",
    "source_detail": None, "comment": "Хочу к Айгуль", "utm": {"source": "yandex", "campaign": "winter"},
    "status": "new", "hits": 1, "created_at": "2026-12-10T09:00:00.000Z", "updated_at": "2026-12-10T09:00:00.000Z",
}  # fmt: skip


def _moment(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, name, f"{name}: ISO 8601 with an offset, e.g. 2026-12-12T00:00:00+03:00") from None
    if value.tzinfo is None:
        raise ApiError(422, name, f"{name}: needs an offset, e.g. +03:00 or Z")
    return value


async def _booking_view(session: Any, row: Any) -> dict[str, Any]:
    data = await service.booking_data(session, int(row.id))  # the `booking.*` events' shape
    data.pop("summary", None)
    return {"id": int(row.id), **data, "rating": row.rating, "created_at": row.created_at, "updated_at": row.updated_at}


def _lead_view(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def _ok(status: int, example: Any, what: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": what, "content": {"application/json": {"example": example}}}}


async def list_bookings(
    request: Request,
    limit: int | None = Query(None, ge=1, le=200, description="1-200, default 50"),
    cursor: str | None = Query(None, max_length=64, description="next_cursor of the previous page"),
    start_from: str | None = Query(None, alias="from", max_length=40, description="starts at or after (ISO 8601)"),
    to: str | None = Query(None, max_length=40, description="starts before (ISO 8601 with an offset)"),
    status: str | None = Query(None, max_length=20, description=" | ".join(service.STATUSES)),
    staff_id: int | None = Query(None, ge=1, le=BIGINT_MAX, description="only this staff member's"),
    contact_id: int | None = Query(None, ge=1, le=BIGINT_MAX, description="only this contact's"),
    _caller: ApiCaller = Depends(require_scope(READ_BOOKINGS)),
) -> JSONResponse:
    check_query(request, ("limit", "cursor", "from", "to", "status", "staff_id", "contact_id"))
    size = page_limit(limit)
    after = decode_cursor("bookings", cursor)
    query = select(m.bookings).order_by(m.bookings.c.id.desc()).limit(size + 1)
    if after is not None:
        query = query.where(m.bookings.c.id < after)
    low, high = _moment("from", start_from), _moment("to", to)
    if low is not None:
        query = query.where(m.bookings.c.start_at >= low)
    if high is not None:
        query = query.where(m.bookings.c.start_at < high)
    if status is not None:
        if status not in service.STATUSES:
            raise ApiError(422, "status", f"status: one of {', '.join(service.STATUSES)}")
        query = query.where(m.bookings.c.status == status)
    if staff_id is not None:
        query = query.where(m.bookings.c.staff_id == staff_id)
    if contact_id is not None:
        query = query.where(m.bookings.c.contact_id == contact_id)
    async with request.app.state.otklik.db.read() as session:
        rows = (await session.execute(query)).all()
        items = [await _booking_view(session, row) for row in rows[:size]]
    return JSONResponse(plain(page("bookings", items, size, len(rows) > size)))


async def get_booking(
    request: Request, booking_id: PathId, _caller: ApiCaller = Depends(require_scope(READ_BOOKINGS))
) -> JSONResponse:
    check_query(request, ())
    async with request.app.state.otklik.db.read() as session:
        row = (await session.execute(select(m.bookings).where(m.bookings.c.id == booking_id))).first()
        if row is None:
            raise ApiError(404, "not_found", f"no booking {booking_id}")
        return JSONResponse(plain(await _booking_view(session, row)))


async def list_leads(
    request: Request,
    limit: int | None = Query(None, ge=1, le=200, description="1-200, default 50"),
    cursor: str | None = Query(None, max_length=64, description="next_cursor of the previous page"),
    status: str | None = Query(None, max_length=20, description=" | ".join(LEAD_STATUSES)),
    source: str | None = Query(None, max_length=32, description="only leads of this source (site, yandex_direct…)"),
    contact_id: int | None = Query(None, ge=1, le=BIGINT_MAX, description="only this contact's"),
    _caller: ApiCaller = Depends(require_scope(READ_LEADS)),
) -> JSONResponse:
    check_query(request, ("limit", "cursor", "status", "source", "contact_id"))
    size = page_limit(limit)
    after = decode_cursor("leads", cursor)
    query = select(m.leads).order_by(m.leads.c.id.desc()).limit(size + 1)
    if after is not None:
        query = query.where(m.leads.c.id < after)
    if status is not None:
        if status not in LEAD_STATUSES:
            raise ApiError(422, "status", f"status: one of {', '.join(LEAD_STATUSES)}")
        query = query.where(m.leads.c.status == status)
    if source is not None:
        if not service.SOURCE.fullmatch(source):
            raise ApiError(422, "source", "source: lower-case letters, digits, _ or - (e.g. site, yandex_direct)")
        query = query.where(m.leads.c.source == source)
    if contact_id is not None:
        query = query.where(m.leads.c.contact_id == contact_id)
    async with request.app.state.otklik.db.read() as session:
        rows = (await session.execute(query)).all()
    items = [_lead_view(row) for row in rows[:size]]
    return JSONResponse(plain(page("leads", items, size, len(rows) > size)))


async def get_lead(
    request: Request, lead_id: PathId, _caller: ApiCaller = Depends(require_scope(READ_LEADS))
) -> JSONResponse:
    check_query(request, ())
    async with request.app.state.otklik.db.read() as session:
        row = (await session.execute(select(m.leads).where(m.leads.c.id == lead_id))).first()
    if row is None:
        raise ApiError(404, "not_found", f"no lead {lead_id}")
    return JSONResponse(plain(_lead_view(row)))


# `/leads` before `/{booking_id}`: the path "leads" is not a booking's id.
router.add_api_route("/api/v1/bookings/leads", list_leads, methods=["GET"], summary="List leads, newest first",
                     tags=["bookings"], response_model=None,
                     responses=_ok(200, {"data": [LEAD_EXAMPLE], "next_cursor": None}, "a page of leads")
                     | error_responses(401, 403, 422, 429))  # fmt: skip
router.add_api_route("/api/v1/bookings/leads/{lead_id}", get_lead, methods=["GET"], summary="A lead",
                     tags=["bookings"], response_model=None,
                     responses=_ok(200, LEAD_EXAMPLE, "the lead") | error_responses(401, 403, 404, 422, 429))  # fmt: skip
router.add_api_route("/api/v1/bookings", list_bookings, methods=["GET"], summary="List bookings, newest first",
                     tags=["bookings"], response_model=None,
                     responses=_ok(200, {"data": [BOOKING_EXAMPLE], "next_cursor": None}, "a page of bookings")
                     | error_responses(401, 403, 422, 429))  # fmt: skip
router.add_api_route("/api/v1/bookings/{booking_id}", get_booking, methods=["GET"], summary="A booking",
                     tags=["bookings"], response_model=None,
                     responses=_ok(200, BOOKING_EXAMPLE, "the booking") | error_responses(401, 403, 404, 422, 429))  # fmt: skip
