"""Inbound of Telegram bots in webhook mode: `POST /webhooks/telegram/{account id}`; the
`X-Telegram-Bot-Api-Secret-Token` header must match the secret set with setWebhook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from otklik.channels.telegram.adapter import SECRET_HEADER
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped, too_large
from otklik.platform.webkit.params import PathId

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("/telegram/{account_id}", response_model=None)
async def telegram(request: Request, account_id: PathId) -> JSONResponse | dict[str, Any]:
    """Telegram delivers updates here; the `X-Telegram-Bot-Api-Secret-Token` header must match."""
    otklik: Otklik = request.app.state.otklik
    if declared_too_large(request):
        return too_large()
    header = request.headers.get(SECRET_HEADER)
    channels = otklik.runtime_of("telegram")
    if channels is None or not channels.secret_ok(account_id, header):
        await otklik.refresh_accounts()  # a bot connected while running
        channels = otklik.runtime_of("telegram")
        if channels is None or not channels.secret_ok(account_id, header):
            return JSONResponse({"detail": "unknown bot or bad secret token"}, status_code=401)
    try:
        body = await read_capped(request)
    except BodyTooLarge:
        return too_large()
    try:
        await channels.handle_webhook(account_id, body)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return {"ok": True}
