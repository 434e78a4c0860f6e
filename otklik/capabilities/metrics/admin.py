"""`/admin/metrics` (DASHBOARDS: owner, admin, analysts): the KPIs against their targets, the trend per day (per
hour for today), tables per channel, account, source, flow (the funnel), operator and day, the conversations
behind a number, and CSV / XLSX of every table. Read from the aggregate rows only (`query.report`)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from otklik.capabilities.metrics import DASHBOARDS
from otklik.capabilities.metrics.definitions import FILTER_KEYS, Filters, parse_filters
from otklik.capabilities.metrics.query import DRILLS, TARGETS, Report, accounts, behind, report
from otklik.clock import utcnow
from otklik.core.cells import formula_safe
from otklik.core.errors import InvalidInput
from otklik.platform.users import Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.i18n import translator

router = APIRouter()
PAGE = need(DASHBOARDS)
TABLES = ("channels", "accounts", "sources", "flows", "operators", "days", "hours")
FORMATS = ("csv", "xlsx")
#: The columns of every table: (key, locale key, how the value is read from a slice's numbers).
COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("conversations", lambda n: n["conversations"]),
    ("reopened", lambda n: n["reopened"]),
    ("could_handoff", lambda n: n["could_handoff"]),
    ("bot_handled", lambda n: n["bot_handled"]),
    ("handled_by_bot_share", lambda n: n["handled_by_bot_share"]),
    ("handoffs", lambda n: n["handoffs"]),
    ("bot_p50", lambda n: n["bot_response_ms"]["p50"]),
    ("bot_p90", lambda n: n["bot_response_ms"]["p90"]),
    ("bot_p99", lambda n: n["bot_response_ms"]["p99"]),
    ("bot_over_10s_share", lambda n: n["bot_response_ms"]["over_10s_share"]),
    ("operator_p50", lambda n: n["operator_first_response_ms"]["p50"]),
    ("operator_p90", lambda n: n["operator_first_response_ms"]["p90"]),
    ("seen_unanswered", lambda n: n["seen_unanswered"]),
    ("leads", lambda n: n["leads"]),
    ("bookings", lambda n: n["bookings"]),
    ("orders", lambda n: n["orders"]),
    ("claims", lambda n: n["claims"]),
    ("conversion_conversation_order", lambda n: n["conversion_conversation_order"]),
)


def _raw(request: Request) -> dict[str, str]:
    return {k: v[:201] for k, v in request.query_params.items()}


def _filters(raw: dict[str, str], extra: Sequence[str] = ()) -> Filters:
    unknown = sorted(k for k in raw if k not in FILTER_KEYS and k not in extra)
    if unknown:
        raise InvalidInput(f"unknown filter {unknown[0][:40]!r}; known: {', '.join(FILTER_KEYS)}")
    return parse_filters({k: v for k, v in raw.items() if k in FILTER_KEYS}, today=utcnow().date())


def table_rows(
    rep: Report, table: str, t: Callable[..., str]
) -> tuple[list[str], list[tuple[str, dict[str, Any], dict[str, str]]]]:
    """(header, rows): each row is (label, its numbers, the filters that narrow to it)."""
    data = rep.json()
    items: list[tuple[str, dict[str, Any], dict[str, str]]]
    if table == "channels":
        items = [(r["channel"], r, {"channel": r["channel"]}) for r in data["by_channel"]]
    elif table == "accounts":
        items = [(f"{r['name']} (#{r['account']})", r, {"account": str(r["account"])}) for r in data["by_account"]]
    elif table == "sources":
        items = [(r["source"] or t("metrics.none"), r, {"source": r["source"] or "-"}) for r in data["by_source"]]
    elif table == "flows":
        items = [(r["flow"] or t("metrics.none"), r, {"flow": r["flow"] or "-"}) for r in data["by_flow"]]
    elif table == "operators":
        items = [(r["operator"], r, {"operator": r["operator"]}) for r in data["by_operator"]]
    elif table == "days":
        items = [(r["day"], r, {"from": r["day"], "to": r["day"]}) for r in data["by_day"]]
    else:
        items = [(f"{h:02d}:00", f.numbers(), {}) for h, f in rep.by_hour.items()]
    header = [t(f"metrics.table.{table}"), *(t(f"metrics.col.{key}") for key, _ in COLUMNS)]
    return header, items


def _cell(value: Any) -> Any:
    return "" if value is None else value


def export_csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([formula_safe(h) for h in header])
    for row in rows:
        writer.writerow([formula_safe(_cell(c)) if isinstance(c, str) or c is None else c for c in row])
    return "\ufeff" + out.getvalue()  # the BOM makes spreadsheet apps read UTF-8


def export_xlsx(title: str, header: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append([formula_safe(h) for h in header])
    for row in rows:
        sheet.append([formula_safe(c) if isinstance(c, str) else c for c in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    height: float
    show_label: bool


@dataclass(frozen=True, slots=True)
class Trend:
    width: int
    height: int
    bar: float
    top: int
    bars: list[Bar]


def trend(points: Sequence[tuple[str, int]], *, width: int = 720, height: int = 160) -> Trend:
    """Vertical bars of one count per day (or hour); numbers only — the template writes the labels."""
    top = max((v for _, v in points), default=0) or 1
    step = (width - 20) / max(1, len(points))
    every = max(1, len(points) // 12)
    bars = [
        Bar(label, value, 10 + i * step, 10 + (height - 40) * (1 - value / top), (height - 40) * value / top,
            i % every == 0)
        for i, (label, value) in enumerate(points)
    ]  # fmt: skip
    return Trend(width, height, max(1.0, step * 0.8), top, bars)


def kpis(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The overview's tiles: a value, its target and whether it is met (None: no data)."""
    bot = data["bot_response_ms"]

    def judged(value: Any, target: float, at_least: bool) -> bool | None:
        if value is None:
            return None
        return bool(value >= target) if at_least else bool(value <= target)

    return [
        {"key": "handled_by_bot_share", "value": data["handled_by_bot_share"], "kind": "share",
         "target": TARGETS["handled_by_bot_share"], "at_least": True,
         "met": judged(data["handled_by_bot_share"], TARGETS["handled_by_bot_share"], True),
         "drill": "not_bot_handled"},
        {"key": "bot_p90", "value": bot["p90"], "kind": "ms", "target": TARGETS["bot_response_p90_ms"],
         "at_least": False, "met": judged(bot["p90"], TARGETS["bot_response_p90_ms"], False), "drill": None},
        {"key": "bot_over_10s_share", "value": bot["over_10s_share"], "kind": "share",
         "target": TARGETS["bot_over_10s_share"], "at_least": False,
         "met": judged(bot["over_10s_share"], TARGETS["bot_over_10s_share"], False), "drill": None},
        {"key": "lead_booking", "value": data["conversion_lead_booking"], "kind": "share",
         "target": TARGETS["lead_booking"], "at_least": True,
         "met": judged(data["conversion_lead_booking"], TARGETS["lead_booking"], True), "drill": None},
    ]  # fmt: skip


async def _report(request: Request, filters: Filters) -> Report:
    otk = otklik_of(request)
    return await report(otk.db, filters, kinds=list(otk.channel_kinds))


@router.get("/metrics", response_class=HTMLResponse, include_in_schema=False)
async def overview(request: Request, principal: Principal = Depends(PAGE)) -> HTMLResponse:
    raw = _raw(request)
    otk = otklik_of(request)
    known = await accounts(otk.db)
    choices: dict[str, Any] = {"channels": sorted(set(otk.channel_kinds) | {a.kind for a in known.values()}),
               "accounts": sorted(known.values(), key=lambda a: a.id), "packs": sorted({a.pack for a in known.values()})}  # fmt: skip
    try:
        filters = _filters(raw)
        rep = await report(otk.db, filters, kinds=list(otk.channel_kinds), known=known)
    except InvalidInput as exc:
        return render(request, "admin/metrics_overview.html", status_code=422, errors=[exc.user_message], form=raw,
                      data=None, **choices)  # fmt: skip
    t = translator(principal.language)
    data = rep.json()
    query = filters.params()
    tables = {name: table_rows(rep, name, t) for name in TABLES if name != "hours" or rep.by_hour}
    days = [(d.isoformat(), 0) for d in _days(filters)]
    per_day = {r["day"]: r for r in data["by_day"]}
    charts = {
        "conversations": trend([(d, per_day.get(d, {}).get("conversations", 0)) for d, _ in days]),
        "handoffs": trend([(d, per_day.get(d, {}).get("handoffs", 0)) for d, _ in days]),
    }
    if rep.by_hour:
        charts["hours"] = trend([(f"{h:02d}", rep.by_hour[h].counts["conversations"] if h in rep.by_hour else 0)
                                 for h in range(24)])  # fmt: skip
    funnel = [
        ("conversations", data["conversations"]), ("could_handoff", data["could_handoff"]),
        ("bot_handled", data["bot_handled"]), ("handoffs", data["handoffs"]), ("orders", data["orders"]),
    ]  # fmt: skip
    return render(
        request, "admin/metrics_overview.html", form={**raw, **query}, data=data, kpis=kpis(data), tables=tables,
        columns=COLUMNS, charts=charts, funnel=funnel, drills=DRILLS, query=query,
        link=lambda extra: urlencode({**query, **extra}), **choices,
    )  # fmt: skip


def _days(filters: Filters) -> list[Any]:
    from datetime import timedelta

    return [filters.first + timedelta(days=i) for i in range((filters.last - filters.first).days + 1)]


@router.get("/metrics/behind", response_class=HTMLResponse, include_in_schema=False)
async def behind_page(request: Request, principal: Principal = Depends(PAGE)) -> HTMLResponse:
    raw = _raw(request)
    metric = raw.pop("metric", "") or "conversations"
    otk = otklik_of(request)
    try:
        filters = _filters(raw)
        rows = await behind(otk.db, filters, metric, kinds=list(otk.channel_kinds))
    except InvalidInput as exc:
        return render(request, "admin/metrics_behind.html", status_code=422, errors=[exc.user_message], rows=[],
                      metric=metric if metric in DRILLS else "", query={})  # fmt: skip
    known = await accounts(otk.db)
    return render(request, "admin/metrics_behind.html", rows=rows, metric=metric, query=filters.params(),
                  names={i: a.name for i, a in known.items()}, back=urlencode(filters.params()))  # fmt: skip


@router.get("/metrics/export.{fmt}", include_in_schema=False)
async def export(request: Request, fmt: str, principal: Principal = Depends(PAGE)) -> Response:
    raw = _raw(request)
    table = raw.pop("table", "")
    try:
        if fmt not in FORMATS:
            raise InvalidInput(f"format: {' or '.join(FORMATS)}")
        if table not in TABLES:
            raise InvalidInput(f"table: one of {', '.join(TABLES)}")
        filters = _filters(raw)
        rep = await _report(request, filters)
    except InvalidInput as exc:
        return render(request, "admin/metrics_behind.html", status_code=422, errors=[exc.user_message], rows=[],
                      metric="", query={})  # fmt: skip
    t = translator(principal.language)
    header, items = table_rows(rep, table, t)
    rows = [[label, *(get(numbers) for _key, get in COLUMNS)] for label, numbers, _q in items]
    name = f"metrics-{table}-{filters.first.isoformat()}-{filters.last.isoformat()}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    if fmt == "csv":
        body = await asyncio.to_thread(export_csv, header, rows)
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    data = await asyncio.to_thread(export_xlsx, table, header, rows)
    return Response(
        data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", headers=headers
    )
