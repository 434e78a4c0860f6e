"""Care dashboards (DASHBOARDS): the incidents dashboard and the review insights, with CSV exports,
inline-SVG charts and the "sync now" button for a WB account (Perm.SETTINGS). Reply drafts are in
`care_replies`. The figures come from `otklik.capabilities.care` (incidents, reviews); dates are UTC days.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import QueryParams
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from otklik.adapters.wildberries.accounts import wb_accounts
from otklik.capabilities.care import DASHBOARDS
from otklik.capabilities.care import admin_queries as q
from otklik.capabilities.care.admin_charts import bar_chart, stacked_chart
from otklik.capabilities.care.categories import CARE_CATEGORIES, OUTCOMES, REVIEW_CATEGORIES
from otklik.capabilities.care.incidents import Bucket, Period, csv_safe, incident_stats, incidents_csv, list_incidents
from otklik.capabilities.care.reviews import list_reviews, review_insights, reviews_csv
from otklik.capabilities.care.sync import sync_account
from otklik.capabilities.care.syncstate import save_state
from otklik.clock import utcnow
from otklik.core.errors import Conflict, InvalidInput, OtklikError
from otklik.platform.audit import audit
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import local_text, need, otklik_of, render, zone_of
from otklik.platform.webkit.i18n import translator

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

log = logging.getLogger(__name__)
router = APIRouter()
DASHBOARDS_PAGE = need(DASHBOARDS)
SETTINGS = need(Perm.SETTINGS)
PAGE = 50
MAX_PARAM = 200  # longer query values are garbage: cut before parsing (the parser then refuses them)
FILTER_KEYS = ("from", "to", "bucket", "category", "product", "needs_check", "page", "account", "nm_id")


def _params(query: QueryParams) -> dict[str, str]:
    return {key: query.get(key, "")[:MAX_PARAM] for key in FILTER_KEYS}


def _labels(t: Any, keys: tuple[str, ...]) -> dict[str, str]:
    return {key: t("care.cat." + key) for key in keys}


def neutralise_csv(text: str) -> str:
    """Every cell of a CSV export through `csv_safe` (idempotent): no cell may start a formula."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in csv.reader(io.StringIO(text)):
        writer.writerow([csv_safe(cell) for cell in row])
    return out.getvalue()


async def _csv(text: str, name: str) -> Response:
    # Re-reading a whole export is CPU work: a worker thread, not the event loop.
    body = "\ufeff" + await asyncio.to_thread(neutralise_csv, text)  # the BOM makes spreadsheet apps read UTF-8
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _error(request: Request, exc: OtklikError) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"detail": exc.user_message}, status_code=exc.status_code)
    return render(request, "admin/care_error.html", status_code=exc.status_code, message=exc.user_message)


# --- incidents -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentFilters:
    period: Period
    first: date
    last: date
    bucket: Bucket
    category: str | None
    product: str | None
    needs_check: bool | None
    page: int


def incident_filters(raw: dict[str, str]) -> IncidentFilters:
    period, first, last = q.parse_period(raw.get("from"), raw.get("to"), default_days=30)
    bucket = q.parse_bucket(raw.get("bucket"), first, last, default="day")
    category = q.parse_choice(raw.get("category"), CARE_CATEGORIES, "category")
    product = (raw.get("product") or "").strip()
    if len(product) > 120:
        raise InvalidInput("product: at most 120 characters")
    needs = q.parse_choice(raw.get("needs_check"), ("1", "0"), "needs_check")
    page = q.parse_int(raw.get("page"), "page", low=1, high=100_000) or 1
    return IncidentFilters(period, first, last, bucket, category, product or None,
                           None if needs is None else needs == "1", page)  # fmt: skip


@router.get("/care/incidents", response_class=HTMLResponse, include_in_schema=False)
async def incidents_page(request: Request, _p: Principal = Depends(DASHBOARDS_PAGE)) -> HTMLResponse:
    raw = _params(request.query_params)
    try:
        f = incident_filters(raw)
    except InvalidInput as exc:
        return render(request, "admin/care_incidents.html", status_code=422, errors=[exc.user_message], form=raw,
                      categories=CARE_CATEGORIES, stats=None)  # fmt: skip
    db = otklik_of(request).db
    stats = await incident_stats(db, f.period, bucket=f.bucket, category=f.category, product=f.product)
    rows = await list_incidents(db, f.period, category=f.category, product=f.product, needs_check=f.needs_check,
                                limit=PAGE + 1, offset=(f.page - 1) * PAGE)  # fmt: skip
    titles = await q.product_titles(db, [*stats.by_product, *(r.product for r in rows)])
    t = translator(_p.language)
    labels = _labels(t, CARE_CATEGORIES)
    by_category = bar_chart([(k, labels.get(k, k), n) for k, n in stats.by_category.items()], CARE_CATEGORIES)
    by_outcome = bar_chart([(k, t("care.outcome." + k), n) for k, n in stats.by_outcome.items()], OUTCOMES)
    products = list(stats.by_product.items())[:10]
    by_product = bar_chart([(k, _product_label(k, titles), n) for k, n in products], ())
    ratings = bar_chart([(str(s), "★" * s, n) for s, n in stats.ratings.items()], ("5", "4", "3", "2", "1"))
    series = stacked_chart(q.fill_series(stats.series, f.first, f.last, f.bucket), CARE_CATEGORIES, labels)
    form = {**raw, "from": f.first.isoformat(), "to": f.last.isoformat(), "bucket": f.bucket}
    export = urlencode({k: form[k] for k in ("from", "to", "category") if form.get(k)})
    return render(
        request, "admin/care_incidents.html", form=form, stats=stats, rows=rows[:PAGE], more=len(rows) > PAGE,
        page=f.page, categories=CARE_CATEGORIES, labels=labels, titles=titles, graphs={
            "category": by_category, "outcome": by_outcome, "product": by_product, "ratings": ratings,
            "series": series}, export=export, product_options=list(stats.by_product),
        page_query=lambda n: urlencode({**{k: v for k, v in form.items() if v and k != "page"}, "page": n}),
    )  # fmt: skip


def _product_label(key: str, titles: dict[str, str]) -> str:
    title = titles.get(key)
    return f"{key} · {title}"[:60] if title else key


@router.get("/care/incidents.csv", include_in_schema=False)
async def incidents_export(request: Request, _p: Principal = Depends(DASHBOARDS_PAGE)) -> Response:
    try:
        f = incident_filters(_params(request.query_params))
    except InvalidInput as exc:
        return _error(request, exc)
    text = await incidents_csv(otklik_of(request).db, f.period, category=f.category)
    return await _csv(text, f"incidents-{f.first.isoformat()}-{f.last.isoformat()}.csv")


# --- review insights -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewFilters:
    period: Period
    first: date
    last: date
    bucket: Bucket
    account_id: int | None
    nm_id: int | None
    category: str | None


def review_filters(raw: dict[str, str]) -> ReviewFilters:
    period, first, last = q.parse_period(raw.get("from"), raw.get("to"), default_days=90)
    bucket = q.parse_bucket(raw.get("bucket"), first, last, default="week")
    account = q.parse_int(raw.get("account"), "account", low=1)
    nm_id = q.parse_int(raw.get("nm_id"), "nm_id", low=1)
    category = q.parse_choice(raw.get("category"), REVIEW_CATEGORIES, "category")
    return ReviewFilters(period, first, last, bucket, account, nm_id, category)


SYNC_NOTICES = {"sync_started": "care.sync.started"}


@router.get("/care/reviews", response_class=HTMLResponse, include_in_schema=False)
async def reviews_page(request: Request, principal: Principal = Depends(DASHBOARDS_PAGE)) -> HTMLResponse:
    otk = otklik_of(request)
    raw = _params(request.query_params)
    accounts = await _accounts_with_status(request)
    try:
        f = review_filters(raw)
    except InvalidInput as exc:
        return render(request, "admin/care_reviews.html", status_code=422, errors=[exc.user_message], form=raw,
                      categories=REVIEW_CATEGORIES, insights=None, accounts=accounts)  # fmt: skip
    insights = await review_insights(otk.db, f.period, bucket=f.bucket, account_id=f.account_id, nm_id=f.nm_id,
                                     examples_per_category=3)  # fmt: skip
    drill = (
        await list_reviews(otk.db, f.period, category=f.category, nm_id=f.nm_id, account_id=f.account_id, limit=50)
        if f.category
        else []
    )
    labels = _labels(translator(principal.language), REVIEW_CATEGORIES)
    by_category = bar_chart([(k, labels.get(k, k), n) for k, n in insights.by_category.items()], REVIEW_CATEGORIES)
    by_product = bar_chart([(p, p[:60], n) for p, n in list(insights.by_product.items())[:10]], ())
    series = stacked_chart(q.fill_series(insights.series, f.first, f.last, f.bucket), REVIEW_CATEGORIES, labels)
    shown = [c for c in REVIEW_CATEGORIES if c in insights.by_category]
    form = {**raw, "from": f.first.isoformat(), "to": f.last.isoformat(), "bucket": f.bucket}
    export = urlencode({k: form[k] for k in ("from", "to", "account") if form.get(k)})
    notice = SYNC_NOTICES.get(request.query_params.get("notice", ""))
    return render(
        request, "admin/care_reviews.html", form=form, insights=insights, categories=REVIEW_CATEGORIES,
        labels=labels, shown=shown, graphs={"category": by_category, "product": by_product, "series": series},
        export=export, accounts=accounts, drill=drill, drill_category=f.category, notice=notice,
        base_query=urlencode({k: v for k, v in form.items() if v and k not in ("category", "page")}),
    )  # fmt: skip


@router.get("/care/reviews.csv", include_in_schema=False)
async def reviews_export(request: Request, _p: Principal = Depends(DASHBOARDS_PAGE)) -> Response:
    raw = _params(request.query_params)
    try:
        f = review_filters(raw)
        everything = q.parse_choice(request.query_params.get("all", "")[:4], ("1", "0"), "all") == "1"
    except InvalidInput as exc:
        return _error(request, exc)
    text = await reviews_csv(otklik_of(request).db, f.period, negative_only=not everything, account_id=f.account_id)
    return await _csv(text, f"reviews-{f.first.isoformat()}-{f.last.isoformat()}.csv")


# --- sync now ------------------------------------------------------------------------------------------


def _running(request: Request) -> set[int]:
    """WB account ids with a "sync now" running in this process (the guard against double runs)."""
    running: set[int] | None = getattr(request.app.state, "care_sync_running", None)
    if running is None:
        running = set()
        request.app.state.care_sync_running = running
    return running


async def _accounts_with_status(request: Request) -> list[dict[str, Any]]:
    db, running = otklik_of(request).db, _running(request)
    return [
        {"id": i, "name": name, "running": i in running, **(await q.sync_status(db, i))}
        for i, name in await q.wb_account_choices(db)
    ]


async def _sync_once(otk: Otklik, account_id: int, running: set[int]) -> None:
    """One sync of one account in the background; never raises (the error is stored for the page)."""
    try:
        for account in await wb_accounts(otk.db, otk.vault):
            if account.id == account_id:
                await sync_account(otk.db, otk.settings, account, llm=otk.ctx.llm, limiters=otk.ctx.wb_limiters)
    except Exception as exc:  # a bug or a storage problem: keep it visible on the page, not only in the log
        log.exception("sync now of WB account %s failed", account_id)
        try:
            async with otk.db.write() as session:
                now = utcnow().isoformat()
                await save_state(
                    session, account_id, last_run_at=now, last_error=f"internal error: {type(exc).__name__}"
                )
        except Exception:
            log.exception("could not record the failed sync of WB account %s", account_id)
    finally:
        running.discard(account_id)


@router.post("/care/reviews/sync", include_in_schema=False)
async def sync_now(request: Request, principal: Principal = Depends(SETTINGS)) -> Response:
    otk = otklik_of(request)
    form = await request.form(max_fields=10, max_files=0)
    value = form.get("account_id")
    try:
        account_id = q.parse_int(value if isinstance(value, str) else "", "account_id", low=1)
        choices = dict(await q.wb_account_choices(otk.db))
        if account_id is None or account_id not in choices:
            raise InvalidInput("account_id: choose one of the connected Wildberries accounts")
        running = _running(request)
        if account_id in running:
            raise Conflict("a sync of this account is already running; wait for it to finish")
        if otk.supervisor.stop.is_set():
            raise Conflict("the server is shutting down; try again in a minute")
        async with otk.db.write() as session:
            audit(session, principal.actor, "review.sync_started", "channel_account", account_id,
                  {"account": choices[account_id]})  # fmt: skip
        running.add(account_id)

        async def once(_stop: Any) -> None:
            await _sync_once(otk, account_id, running)

        otk.supervisor.start(f"wb-sync-now:{account_id}", once)
    except OtklikError as exc:
        return _error(request, exc)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"account_id": account_id, "running": True}, status_code=202)
    return RedirectResponse(f"/admin/care/reviews?{urlencode({'notice': 'sync_started'})}", status_code=303)


@router.get("/care/reviews/sync-status", include_in_schema=False)
async def sync_state(request: Request, _p: Principal = Depends(DASHBOARDS_PAGE)) -> JSONResponse:
    zone = zone_of(request)
    accounts = await _accounts_with_status(request)
    for account in accounts:  # the page shows them in the business's time zone; the raw values stay UTC
        for key in ("last_run_at", "last_ok_at"):
            account[key + "_local"] = local_text(account.get(key), zone)
    return JSONResponse({"accounts": accounts}, headers={"Cache-Control": "no-store"})
