"""`GET /api/v1/metrics` (API token with the `metrics` scope): the numbers `otklik metrics --json` prints, for
the query's filters (`from`, `to`, `channel`, `account`, `pack`, `source`, `flow`, `operator`). A refused
filter — unknown, reversed or too long a range, malformed — is 422 `{"error": "invalid", "message": …}`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from otklik.capabilities.metrics.definitions import FILTER_KEYS, parse_filters
from otklik.capabilities.metrics.query import report
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.restapi import error_responses

SCOPE = "metrics"
router = APIRouter(prefix="/api/v1", tags=["metrics"])

EXAMPLE = {
    "from": "2026-03-01", "to": "2026-03-31", "filters": {"channel": "telegram"}, "conversations": 1200,
    "reopened": 80, "handoffs": 240, "handoff_rate": 0.2, "handled_by_bot_share": 0.71,
    "bot_response_ms": {"p50": 1000, "p90": 3000, "p99": 12000, "count": 5400, "over_10s": 60,
                        "over_10s_share": 0.0111},
    "operator_first_response_ms": {"p50": 120000, "p90": 600000, "p99": 1800000, "count": 230},
    "seen_unanswered": 35, "seen_unanswered_lower_bound": True, "leads": 0, "bookings": 0, "orders": 96,
    "claims": 0,
}  # fmt: skip


@router.get(
    "/metrics",
    summary="The seller's numbers for a date range",
    responses={
        200: {"description": "docs/metrics.md defines every number", "content": {"application/json": {"example": EXAMPLE}}},
        422: {"description": "a refused filter", "content": {"application/json": {
            "example": {"error": "invalid", "message": "from (2026-03-31) is after to (2026-03-01): the range is reversed"}}}},
    } | error_responses(401, 403, 429),
)  # fmt: skip
async def metrics(
    request: Request,
    date_from: str | None = Query(None, alias="from", description="first UTC day, YYYY-MM-DD (default: 30 days back)"),
    date_to: str | None = Query(None, alias="to", description="last UTC day, YYYY-MM-DD (default: today)"),
    channel: str | None = Query(None, description="a channel kind"),
    account: str | None = Query(None, description="a channel account id"),
    pack: str | None = None,
    source: str | None = Query(None, description="a deep-link payload; '-' for none"),
    flow: str | None = Query(None, description="'-' for none"),
    operator: str | None = Query(None, description="an operator's login"),
    _caller: ApiCaller = Depends(require_scope(SCOPE)),
) -> Any:
    raw = {k: v for k, v in request.query_params.items()}
    try:
        if len(request.query_params.multi_items()) != len(raw):
            raise InvalidInput("each filter once")
        unknown = sorted(k for k in raw if k not in FILTER_KEYS)
        if unknown:
            raise InvalidInput(f"unknown filter {unknown[0][:40]!r}; known: {', '.join(FILTER_KEYS)}")
        filters = parse_filters(raw, today=utcnow().date())
        otklik = request.app.state.otklik
        data = (await report(otklik.db, filters, kinds=list(otklik.channel_kinds))).json()
    except InvalidInput as exc:
        return JSONResponse({"error": "invalid", "message": exc.user_message}, status_code=422)
    return data
