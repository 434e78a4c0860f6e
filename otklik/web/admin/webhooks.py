"""Settings → Webhooks: endpoints (add, enable/disable, remove, send a test event) and recent deliveries with
their failures and a "Resend" button. Owner and admin (`Perm.SETTINGS`); CSRF by the admin guard; every
change audited by the use cases in `platform/webhooks/service.py`. A generated secret is shown on the one
response that created it (pages are `no-store`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from otklik.core.errors import OtklikError
from otklik.platform.users import Perm, Principal
from otklik.platform.webhooks import service
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

router = APIRouter()
SETTINGS = need(Perm.SETTINGS)
PAGE = "/admin/settings/webhooks"


async def _page(request: Request, status_code: int = 200, *, problems: bool = False, **context: Any) -> HTMLResponse:
    otk = otklik_of(request)
    return render(
        request,
        "admin/settings_webhooks.html",
        status_code=status_code,
        tab="webhooks",
        endpoints=await service.list_endpoints(otk.db),
        deliveries=await service.list_deliveries(otk.db, problems=problems, limit=100),
        counts=await service.counts(otk.db),
        problems=problems,
        **context,
    )


@router.get("/settings/webhooks", response_class=HTMLResponse, include_in_schema=False)
async def webhooks_page(
    request: Request,
    problems: str = Query("", max_length=1),
    done: str = Query("", max_length=16),
    _p: Principal = Depends(SETTINGS),
) -> HTMLResponse:
    notice = {"saved": "webhooks.saved", "resent": "webhooks.resent", "test": "webhooks.test_queued"}.get(done)
    return await _page(request, problems=problems == "1", notice=(notice, {}) if notice else None)


def _back(done: str) -> RedirectResponse:
    return RedirectResponse(f"{PAGE}?done={done}", status_code=303)


@router.post("/settings/webhooks", response_class=HTMLResponse, include_in_schema=False)
async def add_webhook(
    request: Request,
    url: str = Form("", max_length=10_000),  # longer: the framework's 422; shorter: our clear message
    events: str = Form("", max_length=10_000),
    secret: str = Form("", max_length=1000),
    description: str = Form("", max_length=1000),
    principal: Principal = Depends(SETTINGS),
) -> HTMLResponse:
    otk = otklik_of(request)
    try:
        added = await service.add_endpoint(
            otk.db, otk.vault, url, events, secret=secret or None, description=description, actor=principal.actor
        )
    except OtklikError as exc:
        sent = {"url": url[: service.MAX_URL], "events": events[:1000], "description": description[:200]}
        return await _page(request, exc.status_code, errors=[exc.user_message], sent=sent)
    return await _page(request, 201, added=added)


@router.post("/settings/webhooks/{endpoint_id}/active", include_in_schema=False)
async def set_webhook_active(
    request: Request,
    endpoint_id: PathId,
    active: str = Form("", max_length=8),
    principal: Principal = Depends(SETTINGS),
) -> Response:
    if active not in ("0", "1"):
        return await _page(request, 422, errors=["active: expected 0 or 1"])
    try:
        await service.set_active(otklik_of(request).db, endpoint_id, active == "1", actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return _back("saved")


@router.post("/settings/webhooks/{endpoint_id}/remove", include_in_schema=False)
async def remove_webhook(request: Request, endpoint_id: PathId, principal: Principal = Depends(SETTINGS)) -> Response:
    try:
        await service.remove_endpoint(otklik_of(request).db, endpoint_id, actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return _back("saved")


@router.post("/settings/webhooks/{endpoint_id}/test", include_in_schema=False)
async def test_webhook(request: Request, endpoint_id: PathId, principal: Principal = Depends(SETTINGS)) -> Response:
    try:
        await service.send_test(otklik_of(request).db, endpoint_id, actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return _back("test")


@router.post("/settings/webhooks/deliveries/{delivery_id}/resend", include_in_schema=False)
async def resend_delivery(request: Request, delivery_id: PathId, principal: Principal = Depends(SETTINGS)) -> Response:
    otk = otklik_of(request)
    try:
        await service.resend(
            otk.db, str(delivery_id), actor=principal.actor, retry_hours=otk.settings.webhook_retry_hours
        )
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return _back("resent")
