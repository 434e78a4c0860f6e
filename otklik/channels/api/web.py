"""Inbound of the API channel: `POST /webhooks/api/{account name}`, signed with the account's secret
(`X-Otklik-Signature`), checked before anything is parsed or stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.channels.api.adapter import WebhookInbound, verify
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped, too_large

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _unknown_api_account() -> JSONResponse:
    return JSONResponse({"detail": "unknown account or bad signature"}, status_code=401)


@router.post("/api/{account_name}", response_model=None)
async def api_channel(request: Request, account_name: str) -> JSONResponse | dict[str, Any]:
    otklik: Otklik = request.app.state.otklik
    if declared_too_large(request):
        return too_large()
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
        return too_large()
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
