"""Cashback campaigns (admin, Perm.SETTINGS): list, create/edit with every field, the marketplace-rules note
beside the reward condition, entry deep links and a print-ready QR code (PNG/SVG); the funnel (DASHBOARDS)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from otklik.adapters.qr import render_qr
from otklik.capabilities.cashback import DASHBOARDS, texts
from otklik.capabilities.cashback import campaigns as camp
from otklik.capabilities.cashback.funnel import funnel
from otklik.capabilities.cashback.models import CashbackCampaign
from otklik.capabilities.cashback.rules import Condition, parse_rubles, rubles
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput, NotFound, OtklikError
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render, zone_of
from otklik.platform.webkit.params import PathId

router = APIRouter()
# The admin's dates are in the business's time zone (the business-hours setting), stored in UTC.
MAX_FORM_FIELD = 20_000
QR_CAPTION = "Бонус за отзыв — наведите камеру"
QR_CACHE_SIZE = 64  # rendered cards kept per app (a PNG is a few tens of KB)


def local(moment: datetime | None, zone: ZoneInfo) -> str:
    """A moment as the value of a `datetime-local` input, in `zone`."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _when(value: str, field: str, *, required: bool, zone: ZoneInfo) -> datetime | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{field}: set a date")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: use YYYY-MM-DD HH:MM") from None
    return (parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed).astimezone(UTC)


def _int(value: str, field: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise InvalidInput(f"{field}: a whole number")
    return int(value)


def _rub(value: str, field: str, *, required: bool) -> int | None:
    if not (value or "").strip():
        if required:
            raise InvalidInput(f"{field}: set an amount in RUB")
        return None
    kopecks = parse_rubles(value)
    if kopecks is None:
        raise InvalidInput(f"{field}: an amount in RUB, e.g. 150 or 150,50")
    return kopecks


def campaign_from_form(form: dict[str, str], zone: ZoneInfo) -> camp.CampaignInput:
    """The form's fields -> CampaignInput (InvalidInput names the field that is wrong)."""
    starts = _when(form.get("starts_at", ""), "starts_at", required=True, zone=zone)
    assert starts is not None
    return camp.CampaignInput(
        name=form.get("name", ""),
        reward_kopecks=_rub(form.get("reward", ""), "reward", required=True) or 0,
        starts_at=starts,
        ends_at=_when(form.get("ends_at", ""), "ends_at", required=False, zone=zone),
        status=form.get("status", "draft"),
        all_products=form.get("all_products") == "1",
        products=camp.parse_products(form.get("products", "")),
        condition=form.get("condition", Condition.ANY),
        min_rating=_int(form.get("min_rating", ""), "min_rating") or 1,
        one_per_buyer=form.get("one_per_buyer") == "1",
        auto_approve=form.get("auto_approve") == "1",
        budget_kopecks=_rub(form.get("budget", ""), "budget", required=False),
        max_claims=_int(form.get("max_claims", ""), "max_claims"),
        erase_after_days=_int(form.get("erase_after_days", ""), "erase_after_days") or 30,
        texts={key: form.get(f"text_{key}", "") for key in texts.EDITABLE},
    )


def form_of(row: CashbackCampaign | None, zone: ZoneInfo) -> dict[str, Any]:
    """The form's values for an existing campaign (or the defaults for a new one)."""
    if row is None:
        return {
            "status": "draft",
            "condition": "any",
            "min_rating": 1,
            "one_per_buyer": True,
            "auto_approve": True,
            "erase_after_days": 30,
            "starts_at": local(utcnow(), zone),
            "texts": {},
        }
    products = "\n".join(f"{p['nm_id']} {p.get('name', '')}".strip() for p in camp.products_of(row))
    return {
        "name": row.name,
        "status": row.status,
        "reward": f"{row.reward_kopecks / 100:g}",
        "products": products,
        "all_products": row.all_products,
        "condition": row.condition,
        "min_rating": row.min_rating,
        "one_per_buyer": row.one_per_buyer,
        "auto_approve": row.auto_approve,
        "budget": f"{row.budget_kopecks / 100:g}" if row.budget_kopecks else "",
        "max_claims": row.max_claims or "",
        "starts_at": local(row.starts_at, zone),
        "ends_at": local(row.ends_at, zone),
        "erase_after_days": row.erase_after_days,
        "texts": dict(row.texts or {}),
    }


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_fields=len(texts.EDITABLE) + 40, max_files=0)
    return {k: str(v)[:MAX_FORM_FIELD] for k, v in form.items() if isinstance(v, str)}


async def links(request: Request, campaign_id: int) -> list[dict[str, str]]:
    """Entry deep links of the campaign: every channel account whose kind has them (Telegram bots first,
    then the web chat)."""
    otk = otklik_of(request)
    links: list[dict[str, str]] = await otk.deep_links(camp.deep_link_payload(campaign_id), str(request.base_url))
    return links


async def _load(request: Request, campaign_id: int) -> CashbackCampaign:
    async with otklik_of(request).db.read() as session:
        row = await session.get(CashbackCampaign, campaign_id)
    if row is None:
        raise NotFound("no such campaign")
    return row


async def _edit_page(
    request: Request,
    row: CashbackCampaign | None,
    *,
    status_code: int = 200,
    error: str = "",
    form: dict[str, Any] | None = None,
    saved: bool = False,
) -> HTMLResponse:
    return render(
        request,
        "admin/cashback_campaign.html",
        status_code=status_code,
        campaign=row,
        form=form or form_of(row, zone_of(request)),
        links=await links(request, row.id) if row else [],
        defaults=texts.DEFAULTS,
        editable=texts.EDITABLE,
        conditions=list(Condition),
        statuses=camp.STATUSES,
        error=error,
        saved=saved,
    )


@router.get("/campaigns", response_class=HTMLResponse, include_in_schema=False)
async def campaigns_page(request: Request, _p: Principal = Depends(need(Perm.SETTINGS))) -> HTMLResponse:
    otk = otklik_of(request)
    now = utcnow()
    async with otk.db.read() as session:
        rows = (
            (await session.execute(select(CashbackCampaign).order_by(CashbackCampaign.id.desc()).limit(200)))
            .scalars()
            .all()
        )
        # One aggregate query for the whole page, however many campaigns it lists.
        usage = await camp.usage_of(session, [row.id for row in rows])
    items = [
        {
            "row": row,
            "running": camp.is_running(row, now),
            "reward": rubles(row.reward_kopecks),
            "budget": rubles(row.budget_kopecks) if row.budget_kopecks else "—",
            "used": rubles(usage[row.id].committed_kopecks),
            "rewarded": usage[row.id].rewarded,
        }
        for row in rows
    ]
    return render(request, "admin/cashback_campaigns.html", items=items)


@router.get("/campaigns/new", response_class=HTMLResponse, include_in_schema=False)
async def new_campaign(request: Request, _p: Principal = Depends(need(Perm.SETTINGS))) -> HTMLResponse:
    return await _edit_page(request, None)


@router.post("/campaigns", response_class=HTMLResponse, include_in_schema=False)
async def create(request: Request, principal: Principal = Depends(need(Perm.SETTINGS))) -> Response:
    form = await _form(request)
    try:
        data = campaign_from_form(form, zone_of(request))
        async with otklik_of(request).db.write() as session:
            campaign_id = await camp.create_campaign(session, data, actor=principal.actor, now=utcnow())
    except OtklikError as exc:
        return await _edit_page(request, None, status_code=exc.status_code, error=exc.user_message, form=_echo(form))
    return RedirectResponse(f"/admin/campaigns/{campaign_id}?saved=1", status_code=303)


def _echo(form: dict[str, str]) -> dict[str, Any]:
    """The submitted values, shown again after an error (nothing is lost)."""
    echoed: dict[str, Any] = dict(form)
    for flag in ("all_products", "one_per_buyer", "auto_approve"):
        echoed[flag] = form.get(flag) == "1"
    echoed["texts"] = {k: form.get(f"text_{k}", "") for k in texts.EDITABLE if form.get(f"text_{k}")}
    return echoed


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse, include_in_schema=False)
async def edit_campaign(
    request: Request, campaign_id: PathId, _p: Principal = Depends(need(Perm.SETTINGS))
) -> HTMLResponse:
    try:
        row = await _load(request, campaign_id)
    except NotFound as exc:
        return render(request, "admin/error.html", status_code=404, message_key="cashback.not_found", detail=str(exc))
    return await _edit_page(request, row, saved=request.query_params.get("saved") == "1")


@router.post("/campaigns/{campaign_id}", response_class=HTMLResponse, include_in_schema=False)
async def save_campaign(
    request: Request, campaign_id: PathId, principal: Principal = Depends(need(Perm.SETTINGS))
) -> Response:
    form = await _form(request)
    try:
        row = await _load(request, campaign_id)
        data = campaign_from_form(form, zone_of(request))
        async with otklik_of(request).db.write() as session:
            await camp.update_campaign(session, campaign_id, data, actor=principal.actor, now=utcnow())
    except NotFound as exc:
        return render(request, "admin/error.html", status_code=404, message_key="cashback.not_found", detail=str(exc))
    except OtklikError as exc:
        return await _edit_page(request, row, status_code=exc.status_code, error=exc.user_message, form=_echo(form))
    return RedirectResponse(f"/admin/campaigns/{campaign_id}?saved=1", status_code=303)


class QrCache:
    """Rendered QR cards by (campaign, link target, link URL, format), least recently used dropped first.

    The URL is part of the key, so a renamed bot or a new public URL renders a fresh card."""

    def __init__(self, size: int = QR_CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, str, str, str], bytes] = OrderedDict()

    def get(self, key: tuple[int, str, str, str]) -> bytes | None:
        body = self._items.get(key)
        if body is not None:
            self._items.move_to_end(key)
        return body

    def put(self, key: tuple[int, str, str, str], body: bytes) -> None:
        self._items[key] = body
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def qr_cache(request: Request) -> QrCache:
    """The app's QR cache (one per app: it goes away with the app, tests never share one)."""
    cache: QrCache | None = getattr(request.app.state, "cashback_qr_cache", None)
    if cache is None:
        cache = request.app.state.cashback_qr_cache = QrCache()
    return cache


@router.get("/campaigns/{campaign_id}/qr.{fmt}", include_in_schema=False)
async def campaign_qr(
    request: Request, campaign_id: PathId, fmt: str, target: str = "", _p: Principal = Depends(need(Perm.SETTINGS))
) -> Response:
    if fmt not in ("png", "svg"):
        return Response("use qr.png or qr.svg", status_code=404)
    try:
        await _load(request, campaign_id)
    except NotFound:
        return Response("no such campaign", status_code=404)
    options = await links(request, campaign_id)
    link = next((o for o in options if o["target"] == target), options[0])
    cache = qr_cache(request)
    key = (campaign_id, link["target"], link["url"], fmt)
    body = cache.get(key)
    if body is None:
        # Segno and Pillow are CPU-bound: rendered in a worker thread, never on the event loop.
        body = await asyncio.to_thread(render_qr, link["url"], fmt=fmt, caption=QR_CAPTION)
        cache.put(key, body)
    media = "image/png" if fmt == "png" else "image/svg+xml"
    name = f"cashback-{campaign_id}-{link['target']}.{fmt}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/campaigns/{campaign_id}/funnel", response_class=HTMLResponse, include_in_schema=False)
async def campaign_funnel(
    request: Request, campaign_id: PathId, _p: Principal = Depends(need(DASHBOARDS))
) -> HTMLResponse:
    try:
        row = await _load(request, campaign_id)
    except NotFound as exc:
        return render(request, "admin/error.html", status_code=404, message_key="cashback.not_found", detail=str(exc))
    figures = await funnel(otklik_of(request).db, campaign_id)
    return render(request, "admin/cashback_funnel.html", campaign=row, f=figures, rubles=rubles)
