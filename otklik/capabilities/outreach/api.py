"""Broadcasts over the REST API (docs/api.md "Broadcasts"): create (`broadcasts.write`, idempotent), start,
read one with its progress counts, list (`broadcasts.read`). The use cases are service.py's — `create`,
`control`, `progress`, `list_broadcasts` — the same as the CLI's; this module only reads the body and
shapes the answers in the API's conventions (cursor paging, errors `{"error", "message"}`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.capabilities.outreach import service
from otklik.capabilities.outreach.models import broadcasts, segments
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.restapi import (
    ApiError,
    check_query,
    decode_cursor,
    error_responses,
    idempotent,
    page,
    page_limit,
    plain,
    read_json,
)
from otklik.platform.webkit.params import PathId

READ, WRITE = "broadcasts.read", "broadcasts.write"
FIELDS = ("name", "segment", "account", "text", "buttons", "template", "at", "timezone")
BROADCAST_EXAMPLE = {
    "id": 12, "name": "Winter sale", "status": "draft", "reason": "", "segment": "vip", "account": "shop-telegram",
    "message": {"text": "-20% until Sunday"}, "scheduled_at": None, "timezone": "Europe/Moscow",
    "created_at": "2026-12-05T10:00:00.000Z", "started_at": None, "finished_at": None, "total": 0,
}  # fmt: skip
PROGRESS_EXAMPLE = BROADCAST_EXAMPLE | {
    "status": "running", "total": 1200, "materialized": True, "done": 830, "eta_seconds": 41.5,
    "counts": {"pending": 370, "sent": 500, "delivered": 200, "read": 80, "failed": 20, "skipped": 30,
               "replied": 45, "opted_out": 3},
    "failed_by_reason": {"blocked by the user": 20}, "skipped_by_reason": {"no open window": 30},
}  # fmt: skip

router = APIRouter(prefix="/api/v1/broadcasts", tags=["broadcasts"])


def _ok(status: int, example: Any, what: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"description": what, "content": {"application/json": {"example": example}}}}


def _text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise ApiError(422, name, f"{name}: 1-{limit} printable characters")
    return value.strip()


async def _view(session: Any, row: Any) -> dict[str, Any]:
    segment = account = None
    if row.segment_id is not None:
        segment = await session.scalar(select(segments.c.name).where(segments.c.id == row.segment_id))
    if row.channel_account_id is not None:
        account = await session.scalar(select(ChannelAccount.name).where(ChannelAccount.id == row.channel_account_id))
    return {
        "id": int(row.id), "name": row.name, "status": row.status, "reason": row.reason, "segment": segment,
        "account": account, "message": row.message, "scheduled_at": row.scheduled_at, "timezone": row.timezone,
        "created_at": row.created_at, "started_at": row.started_at, "finished_at": row.finished_at,
        "total": int(row.total),
    }  # fmt: skip


async def _create(request: Request, data: dict[str, Any], caller: ApiCaller) -> JSONResponse:
    name = _text(data, "name", 120)
    if name is None:
        raise ApiError(422, "name", "name: required")
    segment = _text(data, "segment", 120)
    account = _text(data, "account", 120)
    at = _text(data, "at", 40)
    timezone = _text(data, "timezone", 64) or "UTC"
    message = {k: data[k] for k in ("text", "buttons", "template") if data.get(k) is not None}
    async with request.app.state.otklik.db.write() as session:
        account_id = None
        if account is not None:
            account_id = await session.scalar(select(ChannelAccount.id).where(ChannelAccount.name == account))
            if account_id is None:
                raise ApiError(422, "account", f"account: no channel account named {account!r}")
        try:
            broadcast_id = await service.create(session, name=name, message=message, segment=segment,
                                                account_id=account_id, at=at, timezone=timezone,
                                                actor=f"api:{caller.name}")  # fmt: skip
        except NotFound as exc:
            raise ApiError(422, "segment", f"segment: {exc.user_message}") from None
        except InvalidInput as exc:
            raise ApiError(422, "invalid", exc.user_message) from None
        view = await _view(session, await service.get(session, broadcast_id))
    return JSONResponse(plain(view), status_code=201)


@router.post(
    "",
    response_model=None,
    summary="Create a broadcast (a draft; start it with /start)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "example": {
                        "name": "Winter sale",
                        "segment": "vip",
                        "account": "shop-telegram",
                        "text": "-20% until Sunday",
                    }
                }
            },
        }
    },
    responses=_ok(201, BROADCAST_EXAMPLE, "the broadcast, a draft")
    | error_responses(401, 403, 409, 413, 415, 422, 429),
)
async def create_broadcast(request: Request, caller: ApiCaller = Depends(require_scope(WRITE))) -> JSONResponse:
    check_query(request, ())
    data = await read_json(request, FIELDS, required=("name",))
    return await idempotent(request, caller.token_id, lambda: _create(request, data, caller))


async def _start(request: Request, broadcast_id: int, caller: ApiCaller) -> JSONResponse:
    async with request.app.state.otklik.db.write() as session:
        try:
            await service.control(session, broadcast_id, "start", actor=f"api:{caller.name}")
        except NotFound:
            raise ApiError(404, "not_found", f"no broadcast {broadcast_id}") from None
        except Conflict as exc:
            raise ApiError(409, "conflict", exc.user_message) from None
        view = await _view(session, await service.get(session, broadcast_id))
    return JSONResponse(plain(view))


@router.post(
    "/{broadcast_id}/start",
    response_model=None,
    summary="Start a draft broadcast (running, or scheduled when it has a time)",
    responses=_ok(200, BROADCAST_EXAMPLE | {"status": "running"}, "the broadcast")
    | error_responses(401, 403, 404, 409, 422, 429),
)
async def start_broadcast(
    request: Request, broadcast_id: PathId, caller: ApiCaller = Depends(require_scope(WRITE))
) -> JSONResponse:
    check_query(request, ())
    return await idempotent(request, caller.token_id, lambda: _start(request, broadcast_id, caller))


@router.get(
    "",
    response_model=None,
    summary="List broadcasts, newest first",
    responses=_ok(200, {"data": [BROADCAST_EXAMPLE], "next_cursor": None}, "a page of broadcasts")
    | error_responses(401, 403, 422, 429),
)
async def list_all(
    request: Request,
    limit: int | None = Query(None, ge=1, le=200, description="1-200, default 50"),
    cursor: str | None = Query(None, max_length=64, description="next_cursor of the previous page"),
    _caller: ApiCaller = Depends(require_scope(READ)),
) -> JSONResponse:
    check_query(request, ("limit", "cursor"))
    size = page_limit(limit)
    after = decode_cursor("broadcasts", cursor)
    async with request.app.state.otklik.db.read() as session:
        if after is None:
            rows = await service.list_broadcasts(session, size + 1)
        else:
            query = select(broadcasts).where(broadcasts.c.id < after).order_by(broadcasts.c.id.desc()).limit(size + 1)
            rows = list((await session.execute(query)).all())
        items = [await _view(session, row) for row in rows[:size]]
    return JSONResponse(plain(page("broadcasts", items, size, len(rows) > size)))


@router.get(
    "/{broadcast_id}",
    response_model=None,
    summary="A broadcast with its progress counts",
    responses=_ok(200, PROGRESS_EXAMPLE, "the broadcast and its progress") | error_responses(401, 403, 404, 422, 429),
)
async def get_broadcast(
    request: Request, broadcast_id: PathId, _caller: ApiCaller = Depends(require_scope(READ))
) -> JSONResponse:
    check_query(request, ())
    async with request.app.state.otklik.db.read() as session:
        try:
            counted = await service.progress(session, broadcast_id)
        except NotFound:
            raise ApiError(404, "not_found", f"no broadcast {broadcast_id}") from None
        view = await _view(session, await service.get(session, broadcast_id))
    return JSONResponse(plain(view | counted.as_dict()))
