"""Settings → SMS: the provider that reaches people outside the chat (SMS.ru, a generic HTTP gateway or
none), its secret (sealed with the Vault, never shown again), the sender name, a "send test SMS" button and
the recent attempts of `platform.reach` with their route and status. Owner and admin (`Perm.SETTINGS`);
CSRF by the admin guard; every change audited by `platform.reach.config.save`."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from otklik.core.channel import SendError
from otklik.core.errors import OtklikError
from otklik.platform.audit import audit
from otklik.platform.reach import config, service
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render

router = APIRouter()
SETTINGS = need(Perm.SETTINGS)
PAGE = "/admin/settings/sms"


async def _page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    otk = otklik_of(request)
    current = await config.load(otk.db)
    context.setdefault("sent", {
        "provider": current.provider, "sender": current.sender,
        "http": json.dumps(current.http, ensure_ascii=False, indent=2) if current.http else "",
    })  # fmt: skip
    token = config.callback_token(current, otk.vault) if current.provider == "smsru" else ""
    callback = f"{(otk.settings.public_url or '').rstrip('/')}/webhooks/sms/smsru/{token}" if token else ""
    return render(
        request, "admin/settings_sms.html", status_code=status_code, tab="sms", current=current, callback=callback,
        attempts=await service.recent(otk.db, 50), providers=config.PROVIDERS, **context,
    )  # fmt: skip


@router.get("/settings/sms", response_class=HTMLResponse, include_in_schema=False)
async def sms_page(
    request: Request, done: str = Query("", max_length=16), _p: Principal = Depends(SETTINGS)
) -> HTMLResponse:
    notice = {"saved": "sms.saved"}.get(done)
    return await _page(request, notice=(notice, {}) if notice else None)


@router.post("/settings/sms", include_in_schema=False)
async def save_sms(
    request: Request,
    provider: str = Form("", max_length=200),
    sender: str = Form("", max_length=100),
    secret: str = Form("", max_length=2000),  # longer: the framework's 422; shorter: our clear message
    http: str = Form("", max_length=20_000),
    principal: Principal = Depends(SETTINGS),
) -> Response:
    otk = otklik_of(request)
    try:
        await config.save(
            otk.db, otk.vault, provider=provider, sender=sender, secret=secret, http=http, actor=principal.actor
        )
    except OtklikError as exc:
        sent = {"provider": provider, "sender": sender[:20], "http": http[: config.MAX_BODY]}
        return await _page(request, exc.status_code, errors=[exc.user_message], sent=sent)
    return RedirectResponse(f"{PAGE}?done=saved", status_code=303)


@router.post("/settings/sms/test", response_class=HTMLResponse, include_in_schema=False)
async def test_sms(
    request: Request,
    to: str = Form("", max_length=200),
    text: str = Form("", max_length=2000),
    principal: Principal = Depends(SETTINGS),
) -> HTMLResponse:
    otk = otklik_of(request)
    try:
        result = await service.send_test_sms(otk.db, otk.vault, otk.settings, to, text or "otklik: test SMS")
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message], test_to=to[:40])
    except SendError as exc:
        return await _page(request, 502, errors=[str(exc)[:300]], test_to=to[:40])
    async with otk.db.write() as session:
        audit(session, principal.actor, "reach.sms_test", "setting", config.KEY, {"provider_id": result.provider_id})
    notice = ("sms.test_sent", {"id": result.provider_id or "-"})
    return await _page(request, notice=notice, test_to=to[:40])
