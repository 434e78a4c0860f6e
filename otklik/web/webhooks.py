"""Inbound webhooks of channels. Every request is authenticated (signature or secret token) before
anything is parsed or stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select

from otklik.adapters.channels.telegram import SECRET_HEADER
from otklik.adapters.channels.webhook import WebhookInbound, verify
from otklik.adapters.db.models import ChannelAccount
from otklik.bootstrap import Otklik

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_BODY = 256 * 1024


@router.post("/api/{account_name}", response_model=None)
async def api_channel(request: Request, account_name: str) -> JSONResponse | dict[str, Any]:
    otklik: Otklik = request.app.state.otklik
    body = await request.body()
    async with otklik.db.read() as session:
        account = await session.scalar(
            select(ChannelAccount).where(
                ChannelAccount.name == account_name[:120],
                ChannelAccount.kind == "webhook",
                ChannelAccount.enabled.is_(True),
            )
        )
    secret = otklik.vault.decrypt(account.secret) if account is not None and account.secret else None
    if secret is None or not verify(secret, body, request.headers.get("x-otklik-signature")):
        return JSONResponse({"detail": "unknown account or bad signature"}, status_code=401)
    if len(body) > MAX_BODY:
        return JSONResponse({"detail": "body too large"}, status_code=413)
    try:
        inbound = WebhookInbound.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first['msg']}" if where else first["msg"]}, status_code=400)
    assert account is not None
    result = await otklik.ingest(inbound.event(int(account.id)))
    return {"accepted": True, "duplicate": result.duplicate}


@router.post("/telegram/{account_id}", response_model=None)
async def telegram(request: Request, account_id: int) -> JSONResponse | dict[str, Any]:
    """Telegram delivers updates here; the `X-Telegram-Bot-Api-Secret-Token` header must match."""
    otklik: Otklik = request.app.state.otklik
    channels = otklik.telegram
    if channels is None or not channels.secret_ok(account_id, request.headers.get(SECRET_HEADER)):
        return JSONResponse({"detail": "unknown bot or bad secret token"}, status_code=401)
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"detail": "body too large"}, status_code=413)
    try:
        await channels.handle_webhook(account_id, body)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return {"ok": True}
