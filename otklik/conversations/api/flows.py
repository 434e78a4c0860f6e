"""`/api/v1/flows`: list, get, publish a new version (docs/api.md "Flows"), through the flow store — the same
validation, versions, audit and live reload as the admin's flow editor. Scopes: `flows.read`, `flows.write`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from otklik.conversations.api.common import actor_of, answer, ctx_of
from otklik.core.errors import FlowInvalid, NotFound
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.restapi import ApiError, check_query, error_responses, idempotent, read_json
from otklik.platform.webkit.params import INT_MAX

router = APIRouter(prefix="/api/v1/flows", tags=["flows"])
FLOW_KEY = r"^[A-Za-z0-9_.-]{1,80}$"
MAX_SOURCE = 256 * 1024
PACK = re.compile(r"[A-Za-z0-9_.-]{1,64}")

FLOW_EXAMPLE = {
    "id": "order_status",
    "name": "Where is my order",
    "pack": "sales-es",
    "active_version": 3,
    "latest_version": 4,
    "has_draft": True,
    "updated_by": "api:crm",
    "updated_at": "2026-12-05T09:12:40.120Z",
}


def _json(example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


@router.get(
    "",
    summary="List flows (one page: every flow)",
    responses={200: _json({"data": [FLOW_EXAMPLE], "next_cursor": None}, "every flow")}
    | error_responses(401, 403, 429),
)
async def list_flows(request: Request, _caller: ApiCaller = Depends(require_scope("flows.read"))) -> JSONResponse:
    check_query(request, ())
    summaries = await request.app.state.otklik.flows.overview()
    items = [
        {"id": s.flow_key, "name": s.name, "pack": s.pack, "active_version": s.active_version,
         "latest_version": s.latest_version, "has_draft": s.has_draft, "updated_by": s.updated_by,
         "updated_at": s.updated_at}
        for s in summaries
    ]  # fmt: skip
    return answer({"data": items, "next_cursor": None})


@router.get(
    "/{flow_id}",
    summary="A flow: its source (the live version, or `?version=`) and its versions",
    responses={
        200: _json(
            {
                "id": "order_status",
                "version": 3,
                "active": True,
                "source": "id: order_status\n…",
                "versions": [
                    {"version": 4, "active": False, "created_by": "api:crm", "created_at": "2026-12-05T09:12:40.120Z"}
                ],
            },
            "the flow",
        )
    }
    | error_responses(401, 403, 404, 422, 429),
)
async def get_flow(
    request: Request,
    flow_id: str = Path(pattern=FLOW_KEY),
    version: int | None = Query(None, ge=1, le=INT_MAX),
    _caller: ApiCaller = Depends(require_scope("flows.read")),
) -> JSONResponse:
    check_query(request, ("version",))
    store = request.app.state.otklik.flows
    try:
        found = await store.get(flow_id, version)
    except NotFound:
        raise ApiError(404, "not_found", f"no flow {flow_id!r}" + (f" version {version}" if version else "")) from None
    versions = list(reversed(await store.versions(flow_id, limit=100)))  # the newest 100, newest first
    return answer({
        "id": flow_id, "version": found.info.version, "active": found.info.active, "pack": found.info.pack,
        "source": found.source,
        "versions": [{"version": v.version, "active": v.active, "created_by": v.created_by, "created_at": v.created_at}
                     for v in versions],
    })  # fmt: skip


@router.post(
    "/{flow_id}/versions",
    summary="Save a new version of a flow, published by default",
    description=(
        "The YAML source is validated like in the admin's editor; an invalid flow is a 422 `source` with every "
        "problem in `issues`, and nothing is saved. `publish: false` stores a draft. A new flow needs `pack`. "
        "Every process runs the published version within seconds."
    ),
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "example": {"source": "id: order_status\nname: Where is my order\n…", "publish": True}
                }
            },
        }
    },
    responses={
        201: _json({"id": "order_status", "version": 4, "active": True, "pack": "sales-es"}, "saved"),
        422: _json(
            {
                "error": "source",
                "message": "flow is invalid: 1 error(s)",
                "issues": [{"flow": "order_status", "node": "ask", "field": "next", "message": "unknown node 'nope'"}],
            },
            "refused: `issues` lists every problem",
        ),
    }
    | error_responses(401, 403, 413, 429),
)
async def save_version(
    request: Request,
    flow_id: str = Path(pattern=FLOW_KEY),
    caller: ApiCaller = Depends(require_scope("flows.write")),
) -> JSONResponse:
    check_query(request, ())
    data = await read_json(request, ("source", "publish", "pack"), required=("source",))
    source, publish, pack = data["source"], data.get("publish", True), data.get("pack")
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_SOURCE:
        raise ApiError(422, "source", f"source: the flow's YAML, at most {MAX_SOURCE // 1024} KiB")
    if not isinstance(publish, bool):
        raise ApiError(422, "publish", "publish: true or false")
    if pack is not None and (not isinstance(pack, str) or not PACK.fullmatch(pack)):
        raise ApiError(422, "pack", "pack: a pack id like sales-es")
    otklik = request.app.state.otklik
    store = otklik.flows

    async def run() -> JSONResponse:
        exists = flow_id in await store.keys()
        if not exists and pack is None:
            raise ApiError(422, "pack", f"pack: required for a new flow ({flow_id!r} does not exist yet)")
        if not exists and pack not in ctx_of(request).engines:
            raise ApiError(422, "pack", f"pack: no pack {pack!r} is loaded")
        try:
            info = await store.save(
                source, pack=pack or "", author=actor_of(caller), activate=publish, expect_key=flow_id, new=not exists
            )
        except FlowInvalid as exc:
            issues = [{"flow": i.flow, "node": i.node, "field": i.field, "message": i.message} for i in exc.errors]
            return JSONResponse({"error": "source", "message": exc.user_message, "issues": issues}, status_code=422)
        return answer({"id": info.flow_key, "version": info.version, "active": info.active, "pack": info.pack}, 201)

    return await idempotent(request, caller.token_id, run)
