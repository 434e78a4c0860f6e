"""Inbound webhooks of channels. Every request is authenticated (signature or secret token) before
anything is parsed or stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.bootstrap import Otklik
from otklik.channels.api.adapter import WebhookInbound, verify
from otklik.channels.telegram.adapter import SECRET_HEADER
from otklik.platform.webkit.params import PathId

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_BODY = 256 * 1024


class BodyTooLarge(Exception):
    """The request body is over `MAX_BODY`."""


def _declared_too_large(request: Request) -> bool:
    """A `Content-Length` over the cap is refused before a byte of the body is read."""
    declared = request.headers.get("content-length")
    return declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY


async def read_capped(request: Request, limit: int = MAX_BODY) -> bytes:
    """Read the body as a stream; stop (and raise) as soon as more than `limit` bytes arrived."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> JSONResponse:
    return JSONResponse({"detail": "body too large"}, status_code=413, headers={"Connection": "close"})


def _unknown_api_account() -> JSONResponse:
    return JSONResponse({"detail": "unknown account or bad signature"}, status_code=401)


@router.post("/api/{account_name}", response_model=None)
async def api_channel(request: Request, account_name: str) -> JSONResponse | dict[str, Any]:
    otklik: Otklik = request.app.state.otklik
    if _declared_too_large(request):
        return _too_large()
    async with otklik.db.read() as session:  # the account first: an unknown one costs no body read
        account = await session.scalar(
            select(ChannelAccount).where(
                ChannelAccount.name == account_name[:120],
                ChannelAccount.kind == "webhook",
                ChannelAccount.enabled.is_(True),
            )
        )
    secret = otklik.vault.decrypt(account.secret) if account is not None and account.secret else None
    if account is None or secret is None:
        return _unknown_api_account()
    try:
        body = await read_capped(request)
    except BodyTooLarge:
        return _too_large()
    if not verify(secret, body, request.headers.get("x-otklik-signature")):
        return _unknown_api_account()
    try:
        inbound = WebhookInbound.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first['msg']}" if where else first["msg"]}, status_code=400)
    if int(account.id) not in otklik.ctx.accounts:  # added while running: takes effect now, not after a restart
        await otklik.refresh_accounts()
    result = await otklik.ingest(inbound.event(int(account.id)))
    return {"accepted": True, "duplicate": result.duplicate}


@router.post("/telegram/{account_id}", response_model=None)
async def telegram(request: Request, account_id: PathId) -> JSONResponse | dict[str, Any]:
    """Telegram delivers updates here; the `X-Telegram-Bot-Api-Secret-Token` header must match."""
    otklik: Otklik = request.app.state.otklik
    if _declared_too_large(request):
        return _too_large()
    header = request.headers.get(SECRET_HEADER)
    channels = otklik.telegram
    if channels is None or not channels.secret_ok(account_id, header):
        await otklik.refresh_accounts()  # a bot connected while running
        channels = otklik.telegram
        if channels is None or not channels.secret_ok(account_id, header):
            return JSONResponse({"detail": "unknown bot or bad secret token"}, status_code=401)
    try:
        body = await read_capped(request)
    except BodyTooLarge:
        return _too_large()
    try:
        await channels.handle_webhook(account_id, body)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)
    return {"ok": True}
