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

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.chat import write_first
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.restapi import error_responses, idempotent, read_json

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
