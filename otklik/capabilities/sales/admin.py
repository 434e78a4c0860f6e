"""`/admin/sales/…`: orders (list with filters by status and date, detail with lines and history, cancel;
permission `sales.orders`) and the catalog (search, filters by brand, category and stock, with price and
stock; permission `sales.catalog`). Every change is in the order's history and in the audit log."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.datastructures import UploadFile

from otklik.adapters.db.models import StaffMember
from otklik.capabilities.sales import CATALOG, ORDERS, fulfil, importer, orders, payment, seller, sync
from otklik.capabilities.sales.models import documents, products
from otklik.capabilities.sales.models import orders as order_table
from otklik.capabilities.sales.pricing import money
from otklik.capabilities.sales.search import IndexCache
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx
from otklik.core.cells import formula_safe
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.audit import audit
from otklik.platform.users import Principal
from otklik.platform.webhooks.service import list_deliveries
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId, parse_id

router = APIRouter()
PAGE = 50


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10]) if text.strip() else None
    except ValueError:
        return None


async def _executives(session: Any) -> list[dict[str, Any]]:
    rows = (await session.execute(select(StaffMember.id, StaffMember.name, StaffMember.active)
                                  .order_by(StaffMember.name))).all()  # fmt: skip
    return [{"id": int(r.id), "name": r.name, "active": bool(r.active)} for r in rows]


@router.get("/sales/orders", response_class=HTMLResponse, include_in_schema=False)
async def orders_page(
    request: Request, status: str = "", since: str = "", until: str = "", executive: str = "",
    _p: Principal = Depends(need(ORDERS)),
) -> HTMLResponse:  # fmt: skip
    query = select(order_table).order_by(order_table.c.id.desc()).limit(PAGE)
    status = status if status in orders.STATUSES else ""
    if status:
        query = query.where(order_table.c.status == status)
    executive = executive.strip()[:20]
    if executive == "none":
        query = query.where(order_table.c.assignee_id.is_(None))
    elif executive:
        try:
            query = query.where(order_table.c.assignee_id == parse_id(executive, "executive"))
        except InvalidInput:
            executive = ""
    start, end = _day(since), _day(until)
    if start:
        query = query.where(order_table.c.created_at >= datetime.combine(start, datetime.min.time(), UTC))
    if end and end < date.max:  # 9999-12-31 has no next day: no upper bound then
        query = query.where(
            order_table.c.created_at < datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)
        )
    async with otklik_of(request).db.read() as session:
        rows = [dict(r) for r in (await session.execute(query)).mappings()]
        executives = await _executives(session)
    names = {e["id"]: e["name"] for e in executives}
    for row in rows:
        row["total_text"] = money(row["total"], row["currency"])
        row["assignee"] = names.get(row["assignee_id"], "") if row["assignee_id"] is not None else ""
    return render(request, "admin/sales_orders.html", orders=rows, statuses=orders.STATUSES, executives=executives,
                  filters={"status": status, "since": start or "", "until": end or "", "executive": executive})  # fmt: skip


async def _order_page(
    request: Request, number: str, *, status_code: int = 200, error: str = "", notice: str = ""
) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        tx = as_tx(session)
        order = await orders.get_by_number(tx, number)
        if order is None:
            raise NotFound("no such order")
        lines = await orders.lines_of(tx, order.id)
        history = await orders.history_of(tx, order.id)
        docs = [dict(r) for r in (await session.execute(
            select(documents).where(documents.c.order_id == order.id, documents.c.media_id != "")
            .order_by(documents.c.id))).mappings()]  # fmt: skip
        assignee = None
        if order.assignee_id is not None:
            assignee = await session.scalar(select(StaffMember.name).where(StaffMember.id == order.assignee_id))
        paid_rows = await orders.payments_of(tx, order.id)
        executives = [e for e in await _executives(session) if e["active"] and e["id"] != order.assignee_id]
    deliveries = await list_deliveries(otklik_of(request).db, subject=orders.subject_of(order), limit=100)
    for line in lines:
        line["unit_text"] = money(line["unit_price"], order.currency)
        line["total_text"] = money(line["line_total"], order.currency)
    figures = {k: money(getattr(order, k), order.currency) for k in ("subtotal", "iva", "total")}
    figures.update(payment.balance_text(order, paid_rows))
    for row in paid_rows:
        row["amount_text"] = money(row["amount"], order.currency)
    return render(request, "admin/sales_order.html", status_code=status_code, order=order, lines=lines,
                  history=history, figures=figures, error=error, documents=docs, deliveries=deliveries,
                  assignee=assignee, payments=paid_rows, executives=executives, notice=notice,
                  can_pay=order.status in payment.PAYABLE, can_reassign=order.status != orders.CANCELLED,
                  can_cancel=orders.CANCELLED in orders.NEXT[order.status])  # fmt: skip


@router.get("/sales/orders/{number}", response_class=HTMLResponse, include_in_schema=False)
async def order_page(request: Request, number: str, _p: Principal = Depends(need(ORDERS))) -> HTMLResponse:
    return await _order_page(request, number[:40])


@router.get("/sales/orders/{number}/documents/{doc_id}", include_in_schema=False)
async def order_document(
    request: Request, number: str, doc_id: PathId, _p: Principal = Depends(need(ORDERS))
) -> Response:
    """The PDF of one of the order's documents (login and the `sales.orders` permission required)."""
    otklik = otklik_of(request)
    async with otklik.db.read() as session:
        row = (await session.execute(
            select(documents.c.media_id, documents.c.filename)
            .join(order_table, order_table.c.id == documents.c.order_id)
            .where(documents.c.id == doc_id, order_table.c.number == number[:40].upper(), documents.c.media_id != "")
        )).first()  # fmt: skip
    if row is None:
        raise NotFound("no such document")
    try:
        data = await otklik.ctx.media.read(row.media_id)
    except KeyError:
        raise NotFound("the document's file is missing from the media store") from None
    safe = "".join(ch for ch in row.filename if ch.isascii() and (ch.isalnum() or ch in "-_.")) or "document.pdf"
    headers = {"Content-Disposition": f'attachment; filename="{safe}"', "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type="application/pdf", headers=headers)


@router.post("/sales/orders/{number}/payments", response_class=HTMLResponse, include_in_schema=False)
async def add_payment(request: Request, number: str, principal: Principal = Depends(need(ORDERS))) -> Response:
    """A payment entered by hand (a transfer the seller saw): the same rules as the payments API."""
    form = await request.form(max_fields=5, max_files=0)
    raw = str(form.get("amount", "")).strip()[:30]
    reference = " ".join(str(form.get("reference", "")).split())[:120]
    try:
        amount = Decimal(raw.replace(",", ".")) if re.fullmatch(r"\d{1,12}([.,]\d{1,2})?", raw) else None
    except ArithmeticError:
        amount = None
    if amount is None or amount <= 0:
        return await _order_page(request, number[:40], status_code=422,
                                 error="amount: a positive number with at most 2 decimals, e.g. 150000.50")  # fmt: skip
    if reference and not reference.isprintable():
        return await _order_page(request, number[:40], status_code=422, error="reference: printable text only")
    try:
        async with otklik_of(request).db.write() as session:
            done = await payment.record(session, number[:40], amount, reference, principal.actor, utcnow())
    except payment.Refused as exc:
        if exc.status == 404:
            raise NotFound(exc.user_message) from None
        return await _order_page(request, number[:40], status_code=exc.status, error=exc.user_message)
    return RedirectResponse(f"/admin/sales/orders/{done.order.number}", status_code=303)


@router.post("/sales/orders/{number}/assign", response_class=HTMLResponse, include_in_schema=False)
async def reassign_order(request: Request, number: str, principal: Principal = Depends(need(ORDERS))) -> Response:
    form = await request.form(max_fields=5, max_files=0)
    note = " ".join(str(form.get("note", "")).split())[:300]
    otklik = otklik_of(request)
    now = utcnow()
    try:
        member_id = parse_id(str(form.get("executive", ""))[:20], "executive")
        async with otklik.db.write() as session:
            order, member, before = await fulfil.reassign(otklik.ctx, session, number[:40], member_id,
                                                          principal.actor, now, note)  # fmt: skip
            audit(session, principal.actor, "sales.order_reassign", "sales_order", order.number,
                  {"from": before, "to": member.name, "to_id": member.id, "note": note}, now=now)  # fmt: skip
    except InvalidInput as exc:
        return await _order_page(request, number[:40], status_code=422, error=exc.user_message)
    return RedirectResponse(f"/admin/sales/orders/{order.number}", status_code=303)


@router.post("/sales/orders/{number}/check", response_class=HTMLResponse, include_in_schema=False)
async def check_order(request: Request, number: str, principal: Principal = Depends(need(ORDERS))) -> Response:
    """The executive confirms the price and stock of the lines quoted "sujeto a confirmación": the worker then
    sends the pre-invoice."""
    now = utcnow()
    try:
        async with otklik_of(request).db.write() as session:
            tx = as_tx(session)
            order = await orders.get_by_number(tx, number[:40])
            if order is None:
                raise NotFound("no such order")
            done = await orders.confirm_check(tx, order.id, principal.actor, now)
            audit(session, principal.actor, "sales.order_check", "sales_order", done.number,
                  {"skus": order.to_check}, now=now)  # fmt: skip
    except InvalidInput as exc:
        return await _order_page(request, number[:40], status_code=409, error=exc.user_message)
    return RedirectResponse(f"/admin/sales/orders/{done.number}", status_code=303)


@router.post("/sales/orders/{number}/cancel", response_class=HTMLResponse, include_in_schema=False)
async def cancel_order(request: Request, number: str, principal: Principal = Depends(need(ORDERS))) -> Response:
    form = await request.form(max_fields=5, max_files=0)
    note = " ".join(str(form.get("note", "")).split())[:500]
    now = utcnow()
    try:
        async with otklik_of(request).db.write() as session:
            tx = as_tx(session)
            order = await orders.get_by_number(tx, number[:40])
            if order is None:
                raise NotFound("no such order")
            changed = await orders.set_status(tx, order.id, orders.CANCELLED, principal.actor, now, note)
            audit(session, principal.actor, "sales.order_cancel", "sales_order", changed.number,
                  {"from": order.status, "note": note}, now=now)  # fmt: skip
    except InvalidInput as exc:
        return await _order_page(request, number[:40], status_code=409, error=exc.user_message)
    return RedirectResponse(f"/admin/sales/orders/{changed.number}", status_code=303)


@router.get("/sales/catalog", response_class=HTMLResponse, include_in_schema=False)
async def catalog_page(
    request: Request, q: str = "", brand: str = "", category: str = "", stock: str = "",
    _p: Principal = Depends(need(CATALOG)),
) -> HTMLResponse:  # fmt: skip
    q, brand, category = q.strip()[:200], brand.strip()[:80], category.strip()[:80]
    otklik = otklik_of(request)
    async with otklik.db.read() as session:
        if q:
            cache = otklik.ctx.state.get("sales.index")
            if not isinstance(cache, IndexCache):
                cache = otklik.ctx.state["sales.index"] = IndexCache()
            index = await cache.get(session)
            rows = [dict(h.product) for h in index.search(q, 200)]
        else:
            query = select(products).where(products.c.active.is_(True)).order_by(products.c.name).limit(500)
            rows = [dict(r) for r in (await session.execute(query)).mappings()]
        facets = (await session.execute(select(products.c.brand, products.c.category, func.count())
                                        .where(products.c.active.is_(True))
                                        .group_by(products.c.brand, products.c.category))).all()  # fmt: skip
    rows = [r for r in rows if (not brand or r["brand"] == brand) and (not category or r["category"] == category)
            and (stock != "in" or int(r["stock"]) > 0) and (stock != "out" or int(r["stock"]) <= 0)]  # fmt: skip
    for row in rows:
        row["price_text"] = money(row["price"], row["currency"])
    brands = sorted({b for b, _, _ in facets if b})
    categories = sorted({c for _, c, _ in facets if c})
    filters: dict[str, Any] = {"q": q, "brand": brand, "category": category, "stock": stock}
    return render(request, "admin/sales_catalog.html", products=rows[:500], brands=brands, categories=categories,
                  filters=filters)  # fmt: skip


# --- settings: IVA, validity, cart lifetime, series, letterhead, logo (permission `sales.catalog`) ----------


async def _settings_page(
    request: Request, *, status_code: int = 200, errors: list[str] | None = None,
    form: dict[str, str] | None = None, saved: str = "",
) -> HTMLResponse:  # fmt: skip
    current = await seller.settings(otklik_of(request).db)
    return render(request, "admin/sales_settings.html", status_code=status_code, cfg=current, errors=errors or [],
                  form=form, saved=saved, max_logo_kb=seller.MAX_LOGO_BYTES // 1024)  # fmt: skip


@router.get("/sales/settings", response_class=HTMLResponse, include_in_schema=False)
async def settings_page(request: Request, _p: Principal = Depends(need(CATALOG))) -> HTMLResponse:
    saved = request.query_params.get("saved", "")
    return await _settings_page(request, saved=saved if saved in ("settings", "logo", "logo_removed") else "")


@router.post("/sales/settings", response_class=HTMLResponse, include_in_schema=False)
async def save_settings(request: Request, principal: Principal = Depends(need(CATALOG))) -> Response:
    form = await request.form(max_fields=60, max_files=0)
    fields = {k: v[:4000] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    try:
        await seller.save_settings(otklik_of(request).db, fields, actor=principal.actor)
    except InvalidInput as exc:
        return await _settings_page(request, status_code=422, errors=exc.user_message.split("\n"), form=fields)
    return RedirectResponse("/admin/sales/settings?saved=settings", status_code=303)


@router.post("/sales/settings/logo", response_class=HTMLResponse, include_in_schema=False)
async def save_logo(request: Request, principal: Principal = Depends(need(CATALOG))) -> Response:
    form = await request.form(max_fields=5, max_files=1)
    otklik = otklik_of(request)
    try:
        if form.get("remove") == "1":
            await seller.set_logo(otklik.db, otklik.ctx.media, None, actor=principal.actor)
            return RedirectResponse("/admin/sales/settings?saved=logo_removed", status_code=303)
        upload = form.get("logo")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput("logo: choose a PNG or JPEG file")
        data = await upload.read(seller.MAX_LOGO_BYTES + 1)
        await seller.set_logo(otklik.db, otklik.ctx.media, data, actor=principal.actor)
    except InvalidInput as exc:
        status = 413 if isinstance(exc, seller.TooLarge) else 422
        return await _settings_page(request, status_code=status, errors=[exc.user_message])
    return RedirectResponse("/admin/sales/settings?saved=logo", status_code=303)


@router.get("/sales/settings/logo/{media_id}", include_in_schema=False)
async def logo_file(request: Request, media_id: str, _p: Principal = Depends(need(CATALOG))) -> Response:
    """The current logo only (the id in the path changes with it: no stale cached image, and no other media)."""
    otklik = otklik_of(request)
    current = (await seller.settings(otklik.db)).get("logo_media_id") or ""
    if not current or media_id != current:
        raise NotFound("no such logo")
    try:
        data = await otklik.ctx.media.read(current)
    except KeyError:
        raise NotFound("the logo's file is missing from the media store") from None
    kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(data, media_type=kind, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


# --- catalog sync: status, history, run now (permission `sales.catalog`) ------------------------------------


@router.get("/sales/sync", response_class=HTMLResponse, include_in_schema=False)
async def sync_page(request: Request, _p: Principal = Depends(need(CATALOG))) -> HTMLResponse:
    sources = await sync.overview(otklik_of(request).db, utcnow())
    notice = request.query_params.get("run", "")
    return render(request, "admin/sales_sync.html", sources=sources, every=int(sync.EVERY_SECONDS),
                  notice=notice if notice in ("queued", "running") else "",
                  source_name=request.query_params.get("source", "")[:64])  # fmt: skip


@router.get("/sales/sync/{name}", response_class=HTMLResponse, include_in_schema=False)
async def sync_source_page(request: Request, name: str, _p: Principal = Depends(need(CATALOG))) -> HTMLResponse:
    source = (
        await sync.source_history(otklik_of(request).db, name[:64], utcnow()) if sync.NAME.fullmatch(name) else None
    )
    if source is None:
        raise NotFound("no such sync source")
    return render(request, "admin/sales_sync_source.html", source=source, every=int(sync.EVERY_SECONDS))


@router.post("/sales/sync/{name}/run", response_class=HTMLResponse, include_in_schema=False)
async def sync_run_now(request: Request, name: str, principal: Principal = Depends(need(CATALOG))) -> Response:
    if not sync.NAME.fullmatch(name):
        raise NotFound("no such sync source")
    otklik = otklik_of(request)
    now = utcnow()
    try:
        outcome = await sync.request_run(otklik.db, name, now)
    except sync.SyncError as exc:
        if "no sync source" in str(exc):
            raise NotFound(str(exc)) from None
        sources = await sync.overview(otklik.db, now)
        return render(request, "admin/sales_sync.html", status_code=409, sources=sources, every=int(sync.EVERY_SECONDS),
                      notice="", source_name=name, error=str(exc))  # fmt: skip
    if outcome == "queued":
        async with otklik.db.write() as session:
            audit(session, principal.actor, "sales.sync_run_now", "sales_sync_source", name, {}, now=now)
    return RedirectResponse(f"/admin/sales/sync?run={outcome}&source={name}", status_code=303)


# --- catalog import with a preview; catalog export (permission `sales.catalog`) ---------------------------

IMPORT_OPTIONS = ("replace", "skip_invalid", "net_prices")
SHOWN_ROWS = 200  # per kind on the preview page; the counts are always complete
SHA256 = re.compile(r"[0-9a-f]{64}")


def _import_limit(request: Request) -> int:
    return min(otklik_of(request).ctx.media.max_bytes, importer.MAX_FILE_BYTES)


def _options(form: Any) -> dict[str, bool]:
    return {name: form.get(name) in ("1", "on", "true") for name in IMPORT_OPTIONS}


def _import_page(request: Request, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("options", dict.fromkeys(IMPORT_OPTIONS, False))
    return render(request, "admin/sales_import.html", status_code=status_code, limit_mb=_import_limit(request) / 2**20,
                  max_rows=importer.MAX_ROWS, **context)  # fmt: skip


async def _preview(
    request: Request, data: bytes, sha: str, filename: str, options: dict[str, bool], *, status_code: int = 200,
    notice: str = "",
) -> HTMLResponse:  # fmt: skip
    try:
        sheet = await asyncio.to_thread(importer.read_bytes, data, filename)
    except importer.CatalogFileError as exc:
        return _import_page(request, status_code=422, error=str(exc), options=options)
    report = await importer.import_catalog(
        otklik_of(request).db, sheet, replace=options["replace"], dry_run=True, skip_invalid=options["skip_invalid"],
        prices_include_iva=not options["net_prices"], detail=True,
    )  # fmt: skip
    shown: dict[str, list[importer.RowOutcome]] = {k: [] for k in ("rejected", "new", "updated", "deactivated")}
    for row in report.rows:
        if row.kind in shown and len(shown[row.kind]) < (1000 if row.kind == "rejected" else SHOWN_ROWS):
            shown[row.kind].append(row)
    header_errors = [e for e in report.errors if e.line == 1]
    rejected = len({e.line for e in report.errors if e.line > 1})
    can_apply = bool(report.digest) and not header_errors and (not rejected or options["skip_invalid"])
    return _import_page(
        request, status_code=status_code, preview=report, shown=shown, rejected=rejected, header_errors=header_errors,
        can_apply=can_apply, sha=sha, filename=filename, size=len(data), options=options, notice=notice,
    )  # fmt: skip


@router.get("/sales/import", response_class=HTMLResponse, include_in_schema=False)
async def import_page(request: Request, _p: Principal = Depends(need(CATALOG))) -> HTMLResponse:
    return _import_page(request)


@router.post("/sales/import", response_class=HTMLResponse, include_in_schema=False)
async def import_preview(request: Request, _p: Principal = Depends(need(CATALOG))) -> HTMLResponse:
    """Upload → preview: nothing is written to the catalog; the file is kept in the media store under its
    sha256, which the confirmation names."""
    form = await request.form(max_fields=10, max_files=1)
    options = _options(form)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_page(request, status_code=422, error="choose a CSV or XLSX file", options=options)
    limit = _import_limit(request)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        return _import_page(request, status_code=413, options=options,
                            error=f"the file is larger than {limit / 2**20:.0f} MB (larger files: otklik catalog import)")  # fmt: skip
    filename = "".join(ch for ch in upload.filename if ch.isprintable())[-120:]
    stored = await otklik_of(request).ctx.media.save(data, "application/octet-stream", filename)
    return await _preview(request, data, stored.media_id, filename, options)


@router.post("/sales/import/confirm", response_class=HTMLResponse, include_in_schema=False)
async def import_confirm(request: Request, principal: Principal = Depends(need(CATALOG))) -> HTMLResponse:
    """Apply exactly the previewed file: the one whose sha256 the preview showed, with the preview's options,
    and only if the catalog still gives the preview's digest (else a new preview, nothing written)."""
    form = await request.form(max_fields=10, max_files=0)
    options = _options(form)
    sha = str(form.get("sha256", ""))
    digest = str(form.get("digest", ""))
    filename = str(form.get("filename", ""))[:120]
    otklik = otklik_of(request)
    if not SHA256.fullmatch(sha) or not SHA256.fullmatch(digest):
        return _import_page(request, status_code=422, error="the confirmation names no previewed file: upload it again")
    try:
        data = await otklik.ctx.media.read(sha)
    except KeyError:
        return _import_page(request, status_code=410, error="the previewed file is gone: upload it again")
    if hashlib.sha256(data).hexdigest() != sha:  # the store is content-addressed; checked all the same
        return _import_page(
            request, status_code=409, error="the stored file does not match the preview: upload it again"
        )
    try:
        sheet = await asyncio.to_thread(importer.read_bytes, data, filename)
    except importer.CatalogFileError as exc:
        return _import_page(request, status_code=422, error=str(exc), options=options)
    report = await importer.import_catalog(
        otklik.db, sheet, replace=options["replace"], skip_invalid=options["skip_invalid"],
        prices_include_iva=not options["net_prices"], expect=digest,
    )  # fmt: skip
    if not report.applied:
        return await _preview(request, data, sha, filename, options, status_code=409,
                              notice="the catalog changed since the preview (or the options did): review it again")  # fmt: skip
    now = utcnow()
    async with otklik.db.write() as session:
        audit(session, principal.actor, "sales.catalog_import", "sales_catalog", sha[:16],
              {"file": filename, "sha256": sha, "added": report.added, "changed": report.changed,
               "deactivated": report.deactivated, "unchanged": report.unchanged, "skipped": report.skipped,
               **options}, now=now)  # fmt: skip
    return _import_page(request, done=report, filename=filename, sha=sha)


EXPORT_COLUMNS = (*importer.COLUMNS, "images")


@router.get("/sales/catalog.csv", include_in_schema=False)
async def catalog_export(request: Request, _p: Principal = Depends(need(CATALOG))) -> Response:
    """The active products as a CSV the import reads (UTF-8 with BOM); text cells through `formula_safe`, so a
    name such as `=HYPERLINK(…)` opens as text in a spreadsheet (and comes back with its apostrophe)."""
    query = select(products).where(products.c.active.is_(True)).order_by(products.c.sku)
    async with otklik_of(request).db.read() as session:
        rows = (await session.execute(query)).mappings().all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for r in rows:
        attributes = ";".join(f"{k}={v}" for k, v in (r["attributes"] or {}).items())
        writer.writerow([
            formula_safe(r["sku"]), formula_safe(r["name"]), formula_safe(r["brand"]), formula_safe(r["category"]),
            f"{Decimal(r['price']):.2f}", r["currency"], int(r["stock"]), formula_safe(r["description"]),
            formula_safe(attributes), formula_safe(" ".join(r["images"] or [])),
        ])  # fmt: skip
    headers = {"Content-Disposition": 'attachment; filename="catalogo.csv"', "X-Content-Type-Options": "nosniff"}
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
