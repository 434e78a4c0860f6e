"""Meta's webhook for Instagram Direct: `GET /webhooks/instagram/{page_id}` answers the subscription check,
`POST` takes messages and receipts, only with a valid `X-Hub-Signature-256`."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from otklik.channels.instagram.parse import PAGE_ID, SIGNATURE_HEADER, parse_body, verify_signature
from otklik.clock import utcnow
from otklik.platform.media_links import serve_link
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped, too_large

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik
    from otklik.channels.instagram.runtime import InstagramChannels, Page

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_BODY = 3 * 1024 * 1024
MAX_CHALLENGE = 200


async def _page(otklik: Otklik, page_id: str) -> tuple[InstagramChannels | None, Page | None]:
    if not PAGE_ID.match(page_id):
        return None, None
    channels = otklik.runtime_of("instagram")
    page = channels.page(page_id) if channels is not None else None
    if page is None:
        await otklik.refresh_accounts()
        channels = otklik.runtime_of("instagram")
        page = channels.page(page_id) if channels is not None else None
    return channels, page


@router.get("/instagram/{page_id}", response_model=None)
async def verify(request: Request, page_id: str) -> Response:
    otklik: Otklik = request.app.state.otklik
    _channels, page = await _page(otklik, page_id[:40])
    query = request.query_params
    mode, token, challenge = query.get("hub.mode"), query.get("hub.verify_token") or "", query.get("hub.challenge")
    ok = (
        page is not None
        and bool(page.verify_token)
        and mode == "subscribe"
        and hmac.compare_digest(token.encode(), page.verify_token.encode())
        and challenge is not None
        and 0 < len(challenge) <= MAX_CHALLENGE
        and challenge.isprintable()
    )
    if not ok:
        return PlainTextResponse("verification failed", status_code=403)
    return PlainTextResponse(challenge or "")


@router.post("/instagram/{page_id}", response_model=None)
async def receive(request: Request, page_id: str) -> JSONResponse | dict[str, Any]:
    otklik: Otklik = request.app.state.otklik
    if declared_too_large(request, MAX_BODY):
        return too_large()
    channels, page = await _page(otklik, page_id[:40])
    try:
        body = await read_capped(request, MAX_BODY)
    except BodyTooLarge:
        return too_large()
    if channels is None or page is None or not verify_signature(page.app_secret, body, request.headers.get(SIGNATURE_HEADER)):  # fmt: skip
        return JSONResponse({"detail": "unknown page or bad signature"}, status_code=401)
    try:
        payload = parse_body(body)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    if payload.get("object") not in (None, "instagram"):
        return {"ok": True, "events": 0}
    return {"ok": True, "events": await channels.handle(page, payload)}


@router.get("/instagram/{page_id}/media/{media_id}", response_model=None)
async def media(request: Request, page_id: str, media_id: str) -> Response:
    """A file we send, fetched by Meta through the signed link the sender gave it (404 for anything else)."""
    otklik: Otklik = request.app.state.otklik
    channels = otklik.runtime_of("instagram") if PAGE_ID.match(page_id[:40]) else None
    if channels is None or channels.page(page_id[:40]) is None:
        return Response(b"not found", status_code=404, media_type="text/plain")
    query = {k: request.query_params.get(k, "")[:100] for k in ("t", "exp", "sig")}
    return await serve_link(otklik.ctx.media, otklik.settings.secret_key, media_id[:64], query, utcnow())
