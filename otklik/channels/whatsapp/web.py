"""Meta's webhook for the WhatsApp Cloud API: `GET /webhooks/whatsapp/{phone_number_id}` answers the
subscription check, `POST` takes messages and statuses, only with a valid `X-Hub-Signature-256`."""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from otklik.channels.whatsapp.parse import PHONE_NUMBER_ID, SIGNATURE_HEADER, parse_body, verify_signature
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped, too_large

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik
    from otklik.channels.whatsapp.runtime import Number, WhatsAppChannels

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_BODY = 3 * 1024 * 1024  # Meta batches up to ~3 MB of events into one POST; beyond is refused (413)
MAX_CHALLENGE = 200


async def _number(otklik: Otklik, phone_number_id: str) -> tuple[WhatsAppChannels | None, Number | None]:
    if not PHONE_NUMBER_ID.match(phone_number_id):
        return None, None
    channels = otklik.runtime_of("whatsapp")
    number = channels.number(phone_number_id) if channels is not None else None
    if number is None:
        await otklik.refresh_accounts()  # a number connected while running
        channels = otklik.runtime_of("whatsapp")
        number = channels.number(phone_number_id) if channels is not None else None
    return channels, number


@router.get("/whatsapp/{phone_number_id}", response_model=None)
async def verify(request: Request, phone_number_id: str) -> Response:
    """Meta's subscription check: `hub.mode=subscribe` and our verify token → the challenge as plain text."""
    otklik: Otklik = request.app.state.otklik
    _channels, number = await _number(otklik, phone_number_id[:40])
    query = request.query_params
    mode, token, challenge = query.get("hub.mode"), query.get("hub.verify_token") or "", query.get("hub.challenge")
    ok = (
        number is not None
        and bool(number.verify_token)
        and mode == "subscribe"
        and hmac.compare_digest(token.encode(), number.verify_token.encode())
        and challenge is not None
        and 0 < len(challenge) <= MAX_CHALLENGE
        and challenge.isprintable()
    )
    if not ok:
        return PlainTextResponse("verification failed", status_code=403)
    return PlainTextResponse(challenge or "")


@router.post("/whatsapp/{phone_number_id}", response_model=None)
async def receive(request: Request, phone_number_id: str) -> JSONResponse | dict[str, Any]:
    """Signed (HMAC-SHA256 of the raw body with the app secret) or 401 with nothing stored; then every
    message and status of the POST is ingested (a redelivery is recognised by its ids) and we answer 200."""
    otklik: Otklik = request.app.state.otklik
    if declared_too_large(request, MAX_BODY):
        return too_large()
    channels, number = await _number(otklik, phone_number_id[:40])
    try:
        body = await read_capped(request, MAX_BODY)
    except BodyTooLarge:
        return too_large()
    if (
        channels is None
        or number is None
        or not verify_signature(number.app_secret, body, request.headers.get(SIGNATURE_HEADER))
    ):
        return JSONResponse({"detail": "unknown number or bad signature"}, status_code=401)
    try:
        payload = parse_body(body)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    if payload.get("object") not in (None, "whatsapp_business_account"):
        return {"ok": True, "events": 0}  # another product's webhook: nothing for us
    new = await channels.handle(number, payload)
    return {"ok": True, "events": new}
