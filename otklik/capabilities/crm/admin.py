"""`/admin/crm` (permission `settings`: owner and admin): the connected CRMs (add Bitrix24 / amoCRM, test,
enable / disable, remove), the mapping form of each, and the hand-overs that failed or are being retried,
with a "Retry" button. CSRF by the admin guard; secrets never shown; every change audited by `service`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from otklik.adapters.db.models import WebhookEndpoint
from otklik.capabilities.crm import service
from otklik.core.errors import NotFound, OtklikError
from otklik.platform.users import Perm, Principal
from otklik.platform.webhooks.events import INTERNAL_PREFIX
from otklik.platform.webhooks.service import DeliveryView, list_deliveries, resend
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

router = APIRouter()
SETTINGS = need(Perm.SETTINGS)
PAGE = "/admin/crm"
MAX_FIELD = 2000
MAPPING_KEYS = (
    *(f"field_{w}" for w in service.MAPPED), *(f"status_{e}" for e in service.STATUS_EVENTS),
    "default_source", "responsible_id", "pipeline_id", "status_id", "responsible_user_id", "tags",
)  # fmt: skip
NOTICES = {"added": "crm.added", "saved": "crm.saved", "retried": "crm.retried", "removed": "crm.removed"}


async def _endpoint_id(otk: Otklik) -> int | None:
    async with otk.db.read() as session:
        found = await session.scalar(
            select(WebhookEndpoint.id).where(WebhookEndpoint.url == INTERNAL_PREFIX + service.CONSUMER)
        )
    return None if found is None else int(found)


async def failures(otk: Otklik, limit: int = 50) -> list[DeliveryView]:
    """The CRM's deliveries that failed, were given up or wait for another attempt."""
    endpoint = await _endpoint_id(otk)
    if endpoint is None:
        return []
    return await list_deliveries(otk.db, problems=True, endpoint_id=endpoint, limit=limit)


async def retry(otk: Otklik, delivery: str, *, actor: str) -> int:
    """Queue one of the CRM's deliveries again (only the CRM's: not another endpoint's by its id)."""
    endpoint = await _endpoint_id(otk)
    ref = (delivery or "").strip()
    if endpoint is None or not ref.isascii() or not ref.isdigit() or len(ref) > 18:
        raise NotFound(f"no CRM delivery {ref[:20]}")
    mine = await list_deliveries(otk.db, endpoint_id=endpoint, limit=1, before=int(ref) + 1)
    if not mine or mine[0].id != int(ref):
        raise NotFound(f"no CRM delivery {ref[:20]}")
    return await resend(otk.db, ref, actor=actor, retry_hours=otk.settings.webhook_retry_hours)


async def _page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    otk = otklik_of(request)
    return render(
        request, "admin/crm.html", status_code=status_code, connections=await service.list_connections(otk.db),
        failures=await failures(otk, 100), mapped=service.MAPPED, status_events=service.STATUS_EVENTS, **context,
    )  # fmt: skip


@router.get("/crm", response_class=HTMLResponse, include_in_schema=False)
async def crm_page(
    request: Request, done: str = Query("", max_length=16), _p: Principal = Depends(SETTINGS)
) -> HTMLResponse:
    notice = NOTICES.get(done)
    return await _page(request, notice=(notice, {}) if notice else None)


def _back(done: str) -> RedirectResponse:
    return RedirectResponse(f"{PAGE}?done={done}", status_code=303)


@router.post("/crm/bitrix24", response_class=HTMLResponse, include_in_schema=False)
async def add_bitrix24(
    request: Request,
    webhook_url: str = Form("", max_length=MAX_FIELD),
    name: str = Form("", max_length=MAX_FIELD),
    principal: Principal = Depends(SETTINGS),
) -> Response:
    otk = otklik_of(request)
    try:
        await service.add_bitrix24(otk.db, otk.vault, webhook_url, name=name or None, actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message], sent={"name": name[:120]})
    return _back("added")


@router.post("/crm/amocrm", response_class=HTMLResponse, include_in_schema=False)
async def add_amocrm(
    request: Request,
    subdomain: str = Form("", max_length=MAX_FIELD),
    token: str = Form("", max_length=8000),
    refresh_token: str = Form("", max_length=8000),
    client_id: str = Form("", max_length=MAX_FIELD),
    client_secret: str = Form("", max_length=MAX_FIELD),
    name: str = Form("", max_length=MAX_FIELD),
    principal: Principal = Depends(SETTINGS),
) -> Response:
    otk = otklik_of(request)
    try:
        await service.add_amocrm(
            otk.db, otk.vault, subdomain=subdomain, token=token, refresh_token=refresh_token or None,
            client_id=client_id or None, client_secret=client_secret or None, name=name or None, actor=principal.actor,
        )  # fmt: skip
    except OtklikError as exc:
        return await _page(
            request, exc.status_code, errors=[exc.user_message], sent={"name": name[:120], "subdomain": subdomain[:63]}
        )
    return _back("added")


@router.post("/crm/{connection_id}/mapping", response_class=HTMLResponse, include_in_schema=False)
async def save_mapping(request: Request, connection_id: PathId, principal: Principal = Depends(SETTINGS)) -> Response:
    form = await request.form(max_fields=80, max_files=0)
    fields = {
        str(k)[:80]: v[:MAX_FIELD]
        for k, v in form.items()
        if isinstance(v, str) and (k in MAPPING_KEYS or str(k).startswith("source_"))
    }
    otk = otklik_of(request)
    try:
        await service.set_mapping(otk.db, connection_id, fields, actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return _back("saved")


@router.post("/crm/{connection_id}/test", response_class=HTMLResponse, include_in_schema=False)
async def test_connection(request: Request, connection_id: PathId, _p: Principal = Depends(SETTINGS)) -> Response:
    otk = otklik_of(request)
    try:
        ok, message = await service.test_connection(otk.db, otk.vault, connection_id)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return await _page(request, tested={"id": connection_id, "ok": ok, "message": message})


@router.post("/crm/{connection_id}/active", include_in_schema=False)
async def set_active(
    request: Request,
    connection_id: PathId,
    active: str = Form("", max_length=8),
    principal: Principal = Depends(SETTINGS),
) -> Response:
    otk = otklik_of(request)
    try:
        await service.set_active(otk.db, otk.vault, connection_id, active == "1", actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return _back("saved")


@router.post("/crm/{connection_id}/remove", include_in_schema=False)
async def remove(request: Request, connection_id: PathId, principal: Principal = Depends(SETTINGS)) -> Response:
    otk = otklik_of(request)
    try:
        await service.remove(otk.db, otk.vault, connection_id, actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return _back("removed")


@router.post("/crm/deliveries/{delivery_id}/retry", include_in_schema=False)
async def retry_delivery(request: Request, delivery_id: PathId, principal: Principal = Depends(SETTINGS)) -> Response:
    otk = otklik_of(request)
    try:
        await retry(otk, str(delivery_id), actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return _back("retried")
