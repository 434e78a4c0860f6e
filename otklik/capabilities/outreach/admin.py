"""`/admin/outreach` (permission `outreach.manage`: owner and admin): saved segments (the condition tree as
JSON, checked by `segments.parse`, with a live count and a sample from `service.preview`) and broadcasts (the
form calls `service.create`, the broadcast's page shows `service.progress` and the Start / Pause / Resume /
Cancel buttons call `service.control`). No logic lives here: a refused form or move shows the service's
reason, with a 4xx, and stores nothing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.capabilities.outreach import OUTREACH, service
from otklik.capabilities.outreach.models import segments
from otklik.capabilities.outreach.segments import parse as parse_conditions
from otklik.core.errors import InvalidInput, NotFound, OtklikError
from otklik.platform.users import Principal
from otklik.platform.webkit.deps import need, otklik_of, render, zone_of
from otklik.platform.webkit.params import PathId

router = APIRouter()
MAX_FIELD = 2000  # one-line fields
MAX_CONDITIONS = 20_000  # the condition tree's JSON
MAX_TEXT = service.MAX_TEXT
PAGE = 100
BROADCASTS_PAGE = 50  # each row's progress is a few grouped queries


async def _form(request: Request) -> dict[str, str]:
    """The form's text fields; an oversized one is refused (not cut), so nothing is saved half."""
    form = await request.form(max_fields=30, max_files=0)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    for key, value in fields.items():
        limit = MAX_CONDITIONS if key == "conditions" else MAX_TEXT + 64 if key in ("text", "buttons") else MAX_FIELD
        if len(value) > limit:
            raise InvalidInput(f"{key[:32]}: at most {limit} characters")
    return fields


def _conditions(raw: str) -> dict[str, Any]:
    """The textarea's JSON, checked by `segments.parse` (its message names the first problem)."""
    try:
        tree = json.loads(raw or "")
    except (ValueError, RecursionError):
        raise InvalidInput('conditions: not valid JSON (an object like {"tag": "vip"})') from None
    return parse_conditions(tree)


# --- segments ----------------------------------------------------------------------------------------------


async def _segments_page(request: Request, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        rows = (await session.execute(select(segments).order_by(segments.c.name).limit(PAGE))).all()
    extra.setdefault("form", {})
    return render(request, "admin/outreach_segments.html", status_code=status_code, rows=rows, **extra)


@router.get("/outreach/segments", response_class=HTMLResponse, include_in_schema=False)
async def segments_page(request: Request, _p: Principal = Depends(need(OUTREACH))) -> HTMLResponse:
    return await _segments_page(request)


@router.post("/outreach/segments", response_class=HTMLResponse, include_in_schema=False)
async def segment_post(request: Request, principal: Principal = Depends(need(OUTREACH))) -> Response:
    """`action=preview`: the live count and a sample, nothing stored; `action=save`: saved (same name: updated)."""
    fields: dict[str, str] = {}
    try:
        fields = await _form(request)
        tree = _conditions(fields.get("conditions", ""))
        if fields.get("action") == "preview":
            async with otklik_of(request).db.read() as session:
                count, sample = await service.preview(session, tree)
            return await _segments_page(request, form=fields, preview={"count": count, "sample": sample})
        async with otklik_of(request).db.write() as session:
            await service.save_segment(session, fields.get("name", ""), tree, actor=principal.login)
    except OtklikError as exc:
        return await _segments_page(request, status_code=422, errors=[exc.user_message], form=fields)
    return RedirectResponse("/admin/outreach/segments", status_code=303)


# --- broadcasts --------------------------------------------------------------------------------------------


async def _broadcasts_page(request: Request, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        rows = await service.list_broadcasts(session, BROADCASTS_PAGE)
        progress = {int(r.id): await service.progress(session, int(r.id)) for r in rows}
        names = (await session.execute(select(segments.c.id, segments.c.name).order_by(segments.c.name))).all()
        accounts = (await session.execute(select(ChannelAccount.id, ChannelAccount.name, ChannelAccount.kind)
                                          .order_by(ChannelAccount.name))).all()  # fmt: skip
    extra.setdefault("form", {})
    return render(
        request, "admin/outreach_broadcasts.html", status_code=status_code, rows=rows, progress=progress,
        segments={int(s.id): s.name for s in names}, accounts=accounts, zone=zone_of(request).key, **extra,
    )  # fmt: skip


def _message(fields: dict[str, str]) -> dict[str, Any]:
    """Text, buttons (one per line: `title` or `title | payload`) and/or a WhatsApp template name + language;
    `service.parse_message` checks the result."""
    message: dict[str, Any] = {"text": fields.get("text", "")}
    buttons = []
    for line in fields.get("buttons", "").splitlines():
        title, _, payload = line.partition("|")
        if title.strip() or payload.strip():
            buttons.append({"title": title.strip(), "payload": payload.strip() or title.strip()})
    if buttons:
        message["buttons"] = buttons
    if fields.get("template", "").strip():
        message["template"] = {"name": fields["template"], "language": fields.get("template_language", ""),
                               "params": []}  # fmt: skip
    return message


def _id(raw: str | None, what: str) -> int | None:
    text = (raw or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput(f"{what}: choose one from the list")
    return int(text)


@router.get("/outreach/broadcasts", response_class=HTMLResponse, include_in_schema=False)
async def broadcasts_page(request: Request, _p: Principal = Depends(need(OUTREACH))) -> HTMLResponse:
    return await _broadcasts_page(request)


@router.post("/outreach/broadcasts", response_class=HTMLResponse, include_in_schema=False)
async def broadcast_create(request: Request, principal: Principal = Depends(need(OUTREACH))) -> Response:
    """Name, segment (empty: every subscribed contact), account (empty: the contact's latest conversation),
    the message, an optional local date-time (the seller's zone). Created as a draft: Start on its page."""
    fields: dict[str, str] = {}
    try:
        fields = await _form(request)
        account_id = _id(fields.get("account_id"), "account")
        segment_id = _id(fields.get("segment_id"), "segment")
        async with otklik_of(request).db.write() as session:
            if account_id is not None and await session.get(ChannelAccount, account_id) is None:
                raise NotFound("no such channel account")
            segment = None
            if segment_id is not None:
                segment = await session.scalar(select(segments.c.name).where(segments.c.id == segment_id))
                if segment is None:
                    raise NotFound("no such segment")
            broadcast_id = await service.create(
                session, name=fields.get("name", ""), message=_message(fields), segment=segment,
                account_id=account_id, at=fields.get("at", "").strip() or None, timezone=zone_of(request).key,
                actor=principal.login,
            )  # fmt: skip
    except OtklikError as exc:
        return await _broadcasts_page(request, status_code=422, errors=[exc.user_message], form=fields)
    return RedirectResponse(f"/admin/outreach/broadcasts/{broadcast_id}", status_code=303)


async def _one(request: Request, broadcast_id: int, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        try:
            row = await service.get(session, broadcast_id)
            progress = await service.progress(session, broadcast_id)
        except NotFound:
            return render(request, "admin/outreach_broadcast.html", status_code=404, row=None, progress=None)
        segment = None
        if row.segment_id is not None:
            segment = await session.scalar(select(segments.c.name).where(segments.c.id == row.segment_id))
        account = None
        if row.channel_account_id is not None:
            account = await session.scalar(
                select(ChannelAccount.name).where(ChannelAccount.id == row.channel_account_id)
            )
    moves = service.moves(str(row.status))
    return render(
        request, "admin/outreach_broadcast.html", status_code=status_code, row=row, progress=progress,
        segment=segment, account=account, moves=moves, **extra,
    )  # fmt: skip


@router.get("/outreach/broadcasts/{broadcast_id}", response_class=HTMLResponse, include_in_schema=False)
async def broadcast_page(
    request: Request, broadcast_id: PathId, _p: Principal = Depends(need(OUTREACH))
) -> HTMLResponse:
    return await _one(request, broadcast_id)


@router.post("/outreach/broadcasts/{broadcast_id}/control", response_class=HTMLResponse, include_in_schema=False)
async def broadcast_control(
    request: Request, broadcast_id: PathId, principal: Principal = Depends(need(OUTREACH))
) -> Response:
    """Start / Pause / Resume / Cancel; a move that does not apply (pausing twice) is shown, not raised."""
    try:
        action = (await _form(request)).get("action", "")
        if action not in service.ACTIONS:
            raise InvalidInput("action: start, pause, resume or cancel")
        async with otklik_of(request).db.write() as session:
            await service.control(session, broadcast_id, action, actor=principal.login)
    except NotFound:
        return await _one(request, broadcast_id)
    except OtklikError as exc:
        return await _one(request, broadcast_id, status_code=409, errors=[exc.user_message])
    return RedirectResponse(f"/admin/outreach/broadcasts/{broadcast_id}", status_code=303)
