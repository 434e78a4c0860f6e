"""The audit log page: who changed what (flows, settings, users, conversations, later claims), filterable,
newest first, by cursor; CSV export of the same filter. Shown in the business-hours time zone."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from otklik.core.cells import formula_safe
from otklik.core.errors import InvalidInput
from otklik.platform import audit_log
from otklik.platform.audit import AUDIT_PREFIXES
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render

router = APIRouter()
AUDIT = need(Perm.AUDIT)
_FIELDS = ("actor", "kind", "subject", "from", "to")


def parse_filter(params: dict[str, str], zone: ZoneInfo) -> audit_log.AuditFilter:
    """Query parameters to a filter; dates are local days of `zone` (`to` inclusive)."""
    values = {k: params.get(k, "").strip() for k in _FIELDS}
    for key, value in values.items():
        if len(value) > 120 or not value.isprintable():
            raise InvalidInput(f"{key}: at most 120 printable characters")
    subject_type, _sep, subject_id = values["subject"].partition(":")
    return audit_log.AuditFilter(
        actor=values["actor"],
        kind=values["kind"],
        subject_type=subject_type[:32],
        subject_id=subject_id[:64],
        since=_day(values["from"], zone, "from"),
        until=_day(values["to"], zone, "to", next_day=True),
    )


def _day(raw: str, zone: ZoneInfo, name: str, *, next_day: bool = False) -> datetime | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name}: not a date like 2026-01-31") from None
    if next_day:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=zone)


def _params(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in (*_FIELDS, "cursor")}


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
async def audit_page(request: Request, _p: Principal = Depends(AUDIT)) -> HTMLResponse:
    otk = otklik_of(request)
    zone = otk.live.snapshot.hours.zone
    params = _params(request)
    try:
        flt = parse_filter(params, zone)
        entries, cursor = await audit_log.page(otk.db, flt, params["cursor"])
    except InvalidInput as exc:
        return render(
            request,
            "admin/audit.html",
            status_code=422,
            errors=[exc.user_message],
            entries=[],
            params=params,
            prefixes=AUDIT_PREFIXES,
            zone=zone.key,
        )
    rows = [{"entry": e, "lines": detail_lines(e.data)} for e in entries]
    filters = {k: v for k, v in params.items() if v and k != "cursor"}
    return render(
        request,
        "admin/audit.html",
        rows=rows,
        params=params,
        next_cursor=cursor,
        filters=filters,
        prefixes=AUDIT_PREFIXES,
        zone=zone.key,
    )


def detail_lines(data: object, limit: int = 4000) -> list[tuple[str, str]]:
    """An entry's details as `key: value` lines (the template escapes them); nested values as compact JSON.

    At most `limit` characters in all; what is cut off ends in "…".
    """
    if not isinstance(data, dict):
        data = {} if data in (None, "") else {"": data}
    lines: list[tuple[str, str]] = []
    left = limit
    for key in sorted(data, key=str):
        value = data[key]
        if isinstance(value, str):
            text = value
        elif value is None:
            text = "—"
        else:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        if len(text) > left:
            lines.append((str(key), text[: max(left, 0)] + "…"))
            break
        lines.append((str(key), text))
        left -= len(text)
    return lines


@router.get("/audit.csv", include_in_schema=False)
async def audit_csv(request: Request, _p: Principal = Depends(AUDIT)) -> StreamingResponse:
    otk = otklik_of(request)
    zone = otk.live.snapshot.hours.zone
    flt = parse_filter(_params(request), zone)  # InvalidInput -> 422 JSON by the app's error handler

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["time", "actor", "kind", "subject_type", "subject_id", "data"])
        async for e in audit_log.export(otk.db, flt):
            writer.writerow(
                [
                    e.ts.astimezone(zone).isoformat(),
                    formula_safe(e.actor),
                    formula_safe(e.kind),
                    formula_safe(e.subject_type),
                    formula_safe(e.subject_id),
                    formula_safe(json.dumps(e.data, ensure_ascii=False, sort_keys=True, default=str)),
                ]
            )
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="otklik-audit.csv"', "Cache-Control": "no-store"},
    )
