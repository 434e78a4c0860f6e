"""Zenvia's webhook: `POST /webhooks/zenvia/{hook}` with our secret header (registered on both subscriptions),
else 401 with nothing stored. The events are parsed and queued, and we answer at once (Zenvia wants an answer
within about a second); the account's worker ingests them after the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from otklik.channels.zenvia.parse import HOOK_ID, SECRET_HEADER, parse_body, parse_events, verify_secret
from otklik.clock import utcnow
from otklik.platform.media_links import serve_link
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped, too_large

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_BODY = 1024 * 1024  # one event per POST; a file comes as a URL, never inline


@router.post("/zenvia/{hook_id}", response_model=None)
async def receive(request: Request, hook_id: str) -> JSONResponse | dict[str, Any]:
    otklik: Otklik = request.app.state.otklik
    if declared_too_large(request, MAX_BODY):
        return too_large()
    hook_id = hook_id[:64]
    channels = otklik.runtime_of("zenvia") if HOOK_ID.match(hook_id) else None
    hook = channels.hook(hook_id) if channels is not None else None
    if channels is not None and hook is None and await otklik.refresh_accounts():  # connected while running
        channels = otklik.runtime_of("zenvia")
        hook = channels.hook(hook_id) if channels is not None else None
    try:
        body = await read_capped(request, MAX_BODY)
    except BodyTooLarge:
        return too_large()
    if channels is None or hook is None or not verify_secret(hook.secret, request.headers.get(SECRET_HEADER)):
        return JSONResponse({"detail": "unknown webhook or bad secret"}, status_code=401)
    try:
        items = parse_body(body)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    events = parse_events(items, hook.account_id, hook.sender)
    channels.enqueue(hook, events)
    return {"ok": True, "queued": len(events)}


@router.get("/zenvia/{hook_id}/media/{media_id}", response_model=None)
async def media(request: Request, hook_id: str, media_id: str) -> Response:
    """A file we send, fetched by Zenvia through the signed link the sender gave it (404 for anything else)."""
    otklik: Otklik = request.app.state.otklik
    channels = otklik.runtime_of("zenvia") if HOOK_ID.match(hook_id[:64]) else None
    if channels is None or channels.hook(hook_id[:64]) is None:
        return Response(b"not found", status_code=404, media_type="text/plain")
    query = {k: request.query_params.get(k, "")[:100] for k in ("t", "exp", "sig")}
    return await serve_link(otklik.ctx.media, otklik.settings.secret_key, media_id[:64], query, utcnow())
