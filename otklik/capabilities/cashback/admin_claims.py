"""Cashback moderation and payouts (CLAIMS): the queue with the screenshot, check results, matched
WB review and the buyer's history; approve, reject with a reason template, ask for a better screenshot,
bulk approve; payouts with masked details, the bank registry (CSV, XLSX: the only unmasked view), mark
paid. Every decision is audited by otklik.capabilities.cashback."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from otklik.adapters.db.models import Contact
from otklik.capabilities.cashback import CLAIMS, moderation, payouts
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.capabilities.cashback.rules import RejectReason, Stage, rubles
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput, OtklikError
from otklik.platform.audit import audit
from otklik.platform.users import Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

router = APIRouter()
# One top-level "Cashback" entry (campaigns, moderation and payouts are its sub-tabs): a moderator, who
# may not open campaigns, gets the same entry leading to moderation.
STATES = ("moderation", "approved", "screenshot", "rejected", "paid", "all")
PAGE = 100


def _ids(values: list[str]) -> list[int]:
    ids = [int(v) for v in values if v.isdigit() and len(v) < 12]
    if not ids:
        raise InvalidInput("choose at least one claim")
    return ids


async def _form_ids(request: Request) -> list[int]:
    form = await request.form(max_fields=moderation.MAX_BULK + 10, max_files=0)
    return _ids([str(v) for v in form.getlist("ids")])


@router.get("/claims", response_class=HTMLResponse, include_in_schema=False)
async def queue(request: Request, state: str = "moderation", _p: Principal = Depends(need(CLAIMS))) -> HTMLResponse:
    state = state if state in STATES else "moderation"
    query = (
        select(CashbackClaim, CashbackCampaign.name, Contact.display_name)
        .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
        .join(Contact, Contact.id == CashbackClaim.contact_id)
        .order_by(CashbackClaim.updated_at.asc() if state == "moderation" else CashbackClaim.id.desc())
        .limit(PAGE)
    )
    if state != "all":
        query = query.where(CashbackClaim.state == state)
    else:
        query = query.where(CashbackClaim.state.not_in([Stage.TERMS, Stage.PRODUCT, Stage.CANCELLED]))
    async with otklik_of(request).db.read() as session:
        rows = (await session.execute(query)).all()
        counts = dict(
            (await session.execute(select(CashbackClaim.state, func.count()).group_by(CashbackClaim.state))).all()
        )
    items = [{"c": c, "campaign": name, "buyer": buyer, "amount": rubles(c.amount_kopecks)} for c, name, buyer in rows]
    return render(
        request,
        "admin/cashback_claims.html",
        items=items,
        state=state,
        states=STATES,
        counts=counts,
        done=request.query_params.get("done", ""),
        refused=request.query_params.get("refused", ""),
    )


@router.get("/claims/{claim_id}", response_class=HTMLResponse, include_in_schema=False)
async def claim_page(request: Request, claim_id: PathId, _p: Principal = Depends(need(CLAIMS))) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        row = (
            await session.execute(
                select(CashbackClaim, CashbackCampaign, Contact.display_name)
                .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
                .join(Contact, Contact.id == CashbackClaim.contact_id)
                .where(CashbackClaim.id == claim_id)
            )
        ).first()
        if row is None:
            return render(request, "admin/error.html", status_code=404, message_key="cashback.not_found")
        claim, campaign, buyer = row
        history = (
            await session.execute(
                select(CashbackClaim, CashbackCampaign.name)
                .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
                .where(CashbackClaim.contact_id == claim.contact_id, CashbackClaim.id != claim.id)
                .order_by(CashbackClaim.id.desc())
                .limit(50)
            )
        ).all()
    return render(
        request,
        "admin/cashback_claim.html",
        c=claim,
        campaign=campaign,
        buyer=buyer,
        amount=rubles(claim.amount_kopecks),
        checks=(claim.checks or {}).get("items", []),
        ocr_text=(claim.checks or {}).get("ocr_text", ""),
        match=(claim.checks or {}).get("match") or {},
        matched=claim.matched or {},
        reasons=(claim.reasons or {}).get("items", []),
        history=[{"c": h, "campaign": name, "amount": rubles(h.amount_kopecks)} for h, name in history],
        reject_reasons=list(RejectReason),
        error=request.query_params.get("error", ""),
        done=request.query_params.get("done", ""),
    )


@router.get("/claims/{claim_id}/screenshot", include_in_schema=False)
async def screenshot(request: Request, claim_id: PathId, _p: Principal = Depends(need(CLAIMS))) -> Response:
    otk = otklik_of(request)
    async with otk.db.read() as session:
        media_id = await session.scalar(select(CashbackClaim.screenshot_media_id).where(CashbackClaim.id == claim_id))
    if not media_id:
        return Response("no screenshot", status_code=404)
    try:
        data = await otk.ctx.media.read(str(media_id))
    except KeyError:
        return Response("no screenshot", status_code=404)
    kind = "image/png" if data.startswith(b"\x89PNG") else "image/webp" if data[8:12] == b"WEBP" else "image/jpeg"
    # The bytes passed images.inspect; served with a fixed image type, never sniffed, never as HTML.
    return Response(
        data,
        media_type=kind,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=600",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


def _back(claim_id: int, **query: str) -> RedirectResponse:
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    return RedirectResponse(f"/admin/claims/{claim_id}?{tail}", status_code=303)


@router.post("/claims/{claim_id}/approve", include_in_schema=False)
async def approve_one(request: Request, claim_id: PathId, principal: Principal = Depends(need(CLAIMS))) -> Response:
    result = await moderation.approve(otklik_of(request).ctx, [claim_id], actor=principal.actor, now=utcnow())
    if result.refused:
        return _back(claim_id, error=result.refused[claim_id])
    return _back(claim_id, done="approved")


@router.post("/claims/{claim_id}/reject", include_in_schema=False)
async def reject_one(request: Request, claim_id: PathId, principal: Principal = Depends(need(CLAIMS))) -> Response:
    form = await request.form(max_fields=10, max_files=0)
    reason, note = str(form.get("reason") or ""), str(form.get("note") or "")[:2000]
    try:
        await moderation.reject(otklik_of(request).ctx, claim_id, reason, note, actor=principal.actor, now=utcnow())
    except OtklikError as exc:
        return _back(claim_id, error=type(exc).__name__.lower())
    return _back(claim_id, done="rejected")


@router.post("/claims/{claim_id}/ask-screenshot", include_in_schema=False)
async def ask_one(request: Request, claim_id: PathId, principal: Principal = Depends(need(CLAIMS))) -> Response:
    form = await request.form(max_fields=10, max_files=0)
    try:
        await moderation.ask_screenshot(
            otklik_of(request).ctx, claim_id, str(form.get("note") or "")[:2000], actor=principal.actor, now=utcnow()
        )
    except OtklikError as exc:
        return _back(claim_id, error=type(exc).__name__.lower())
    return _back(claim_id, done="asked")


@router.post("/claims/approve", include_in_schema=False)
async def approve_bulk(request: Request, principal: Principal = Depends(need(CLAIMS))) -> Response:
    try:
        ids = await _form_ids(request)
        result = await moderation.approve(otklik_of(request).ctx, ids, actor=principal.actor, now=utcnow())
    except OtklikError:
        return RedirectResponse("/admin/claims?refused=none", status_code=303)
    return RedirectResponse(f"/admin/claims?done={len(result.done)}&refused={len(result.refused)}", status_code=303)


# --- payouts -------------------------------------------------------------------------------------


@router.get("/payouts", response_class=HTMLResponse, include_in_schema=False)
async def payouts_page(request: Request, _p: Principal = Depends(need(CLAIMS))) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        rows = (
            await session.execute(
                select(CashbackClaim, CashbackCampaign.name)
                .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
                .where(CashbackClaim.state.in_([Stage.APPROVED, Stage.PAID]))
                .order_by(CashbackClaim.state, CashbackClaim.id.desc())
                .limit(500)
            )
        ).all()
    due = [{"c": c, "campaign": n, "amount": rubles(c.amount_kopecks)} for c, n in rows if c.state == Stage.APPROVED]
    paid = [{"c": c, "campaign": n, "amount": rubles(c.amount_kopecks)} for c, n in rows if c.state == Stage.PAID][:100]
    ready = [c for c, _n in rows if c.state == Stage.APPROVED and c.payout_secret]
    total = rubles(sum(c.amount_kopecks for c in ready))
    return render(
        request,
        "admin/cashback_payouts.html",
        due=due,
        paid=paid,
        ready=len(ready),
        total=total,
        done=request.query_params.get("done", ""),
    )


async def _registry(request: Request, principal: Principal, fmt: str) -> Response:
    otk = otklik_of(request)
    async with otk.db.read() as session:
        rows = await payouts.registry_rows(session, otk.vault)  # at most REGISTRY_LIMIT rows
    async with otk.db.write() as session:
        audit(session, principal.actor, "payout.export", "payouts", None, {"format": fmt, "rows": len(rows)})
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    # Building the file (openpyxl above all) is CPU work: a worker thread, never the event loop.
    if fmt == "csv":
        body, media = await asyncio.to_thread(payouts.registry_csv, rows), "text/csv; charset=utf-8"
    else:
        body = await asyncio.to_thread(payouts.registry_xlsx, rows)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    headers = {"Content-Disposition": f'attachment; filename="payouts-{stamp}.{fmt}"', "Cache-Control": "no-store"}
    return Response(body, media_type=media, headers=headers)


@router.get("/payouts/registry.csv", include_in_schema=False)
async def registry_csv(request: Request, principal: Principal = Depends(need(CLAIMS))) -> Response:
    return await _registry(request, principal, "csv")


@router.get("/payouts/registry.xlsx", include_in_schema=False)
async def registry_xlsx(request: Request, principal: Principal = Depends(need(CLAIMS))) -> Response:
    return await _registry(request, principal, "xlsx")


@router.post("/payouts/paid", include_in_schema=False)
async def mark_paid(request: Request, principal: Principal = Depends(need(CLAIMS))) -> Response:
    try:
        ids = await _form_ids(request)
        done = await payouts.mark_paid(otklik_of(request).ctx, ids, actor=principal.actor, now=utcnow())
    except OtklikError:
        return RedirectResponse("/admin/payouts?done=0", status_code=303)
    return RedirectResponse(f"/admin/payouts?done={len(done)}", status_code=303)
