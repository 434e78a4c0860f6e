"""The operator inbox, actions: reply, internal note, tags, assign, close, return to bot.

Every action needs `Perm.INBOX_REPLY` (analysts and moderators get 403 from the server) and is audited
by its use case in `otklik.capabilities.inbox.service`. A request that asks for JSON (the page's script) gets
JSON; a plain form post is redirected back to the conversation, or, when refused, the conversation is
shown again with the reason and the operator's text kept in the box.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from otklik.capabilities.inbox import service as inbox_ops
from otklik.capabilities.inbox.admin import parse_filter, render_conversation, wants_json
from otklik.conversations.guard import GuardRefused, segments
from otklik.core.conversation import Status
from otklik.core.errors import InvalidInput, OtklikError
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of
from otklik.platform.webkit.params import PathId, parse_id

router = APIRouter()
_BIG = 1_000_000  # form fields are checked by the use cases (clear 413/422); this only stops abuse


def _back(conversation_id: int, filters: str) -> str:
    """The conversation page with the list's filter kept (re-parsed, so nothing foreign is echoed)."""
    try:
        query = parse_filter(**{k: v for k, v in parse_qsl(filters[:2000]) if k in _FILTER_KEYS}).query()
    except (OtklikError, TypeError):
        query = {}
    query.pop("cursor", None)
    return f"/admin/inbox/c/{conversation_id}" + (f"?{urlencode(query)}" if query else "")


_FILTER_KEYS = frozenset({"view", "account", "tag", "status", "q"})


async def _done(
    request: Request, principal: Principal, conversation_id: int, filters: str, body: dict[str, Any]
) -> Response:
    if wants_json(request):
        return JSONResponse({"ok": True, **body})
    return RedirectResponse(_back(conversation_id, filters), status_code=303)


async def _refused(
    request: Request, principal: Principal, conversation_id: int, exc: OtklikError, filters: str, draft: str = ""
) -> Response:
    guarded = exc.details if isinstance(exc, GuardRefused) and isinstance(exc.details, dict) else None
    if wants_json(request):
        body: dict[str, Any] = {"detail": exc.user_message}
        if guarded is not None:  # the page's script highlights the spans and offers the rewording
            body["guard"] = {k: guarded[k] for k in ("reasons", "spans", "suggestion")}
        return JSONResponse(body, status_code=exc.status_code)
    raw = {k: v for k, v in parse_qsl(filters[:2000]) if k in _FILTER_KEYS}
    return await render_conversation(
        request,
        principal,
        conversation_id,
        raw,
        status_code=exc.status_code,
        error=exc.user_message,
        draft=draft[:_BIG],
        guard=None if guarded is None else _guard_view(guarded),
    )


def _guard_view(details: dict[str, Any]) -> dict[str, Any]:
    """The refused text cut into highlighted pieces, the reasons and the suggested rewording."""
    text = str(details.get("text", ""))
    return {
        "pieces": segments(text, list(details.get("spans", []))),
        "reasons": list(details.get("reasons", [])),
        "suggestion": str(details.get("suggestion", "")),
    }


@router.post("/inbox/c/{conversation_id}/reply", include_in_schema=False)
async def reply(
    request: Request,
    conversation_id: PathId,
    text: str = Form("", max_length=_BIG),
    client_id: str = Form("", max_length=200),
    filters: str = Form("", max_length=2000),
    principal: Principal = Depends(need(Perm.INBOX_REPLY)),
) -> Response:
    try:
        sent = await inbox_ops.reply(otklik_of(request).ctx, principal, conversation_id, text, client_id or None)
    except OtklikError as exc:
        return await _refused(request, principal, conversation_id, exc, filters, text)
    body = {"message_id": sent.message_id, "duplicate": sent.duplicate}
    return await _done(request, principal, conversation_id, filters, body)


@router.post("/inbox/c/{conversation_id}/note", include_in_schema=False)
async def note(
    request: Request,
    conversation_id: PathId,
    text: str = Form("", max_length=_BIG),
    filters: str = Form("", max_length=2000),
    principal: Principal = Depends(need(Perm.INBOX_REPLY)),
) -> Response:
    try:
        message_id = await inbox_ops.note(otklik_of(request).ctx, principal, conversation_id, text)
    except OtklikError as exc:
        return await _refused(request, principal, conversation_id, exc, filters, text)
    return await _done(request, principal, conversation_id, filters, {"message_id": message_id})


@router.post("/inbox/c/{conversation_id}/tags", include_in_schema=False)
async def tags(
    request: Request,
    conversation_id: PathId,
    tag: str = Form("", max_length=1000),
    action: str = Form("add", max_length=16),
    filters: str = Form("", max_length=2000),
    principal: Principal = Depends(need(Perm.INBOX_REPLY)),
) -> Response:
    try:
        if action not in ("add", "remove"):
            raise InvalidInput("action: add or remove")
        result = await inbox_ops.set_tag(otklik_of(request).ctx, principal, conversation_id, tag, add=action == "add")
    except OtklikError as exc:
        return await _refused(request, principal, conversation_id, exc, filters)
    return await _done(request, principal, conversation_id, filters, {"tags": result})


@router.post("/inbox/c/{conversation_id}/assign", include_in_schema=False)
async def assign(
    request: Request,
    conversation_id: PathId,
    user: str = Form("", max_length=20),
    filters: str = Form("", max_length=2000),
    principal: Principal = Depends(need(Perm.INBOX_REPLY)),
) -> Response:
    """`user`: "me", a user id, or empty to unassign."""
    try:
        if user == "me":
            target: int | None = principal.user_id
        elif user.strip().isdigit():
            target = parse_id(user, "user")
        elif not user.strip():
            target = None
        else:
            raise InvalidInput("user: me, a user id, or empty")
        await inbox_ops.assign(otklik_of(request).ctx, principal, conversation_id, target)
    except OtklikError as exc:
        return await _refused(request, principal, conversation_id, exc, filters)
    return await _done(request, principal, conversation_id, filters, {"assigned_to": target})


@router.post("/inbox/c/{conversation_id}/close", include_in_schema=False)
async def close(
    request: Request,
    conversation_id: PathId,
    filters: str = Form("", max_length=2000),
    principal: Principal = Depends(need(Perm.INBOX_REPLY)),
) -> Response:
    try:
        await inbox_ops.close(otklik_of(request).ctx, principal, conversation_id)
    except OtklikError as exc:
        return await _refused(request, principal, conversation_id, exc, filters)
    return await _done(request, principal, conversation_id, filters, {"status": Status.CLOSED})


@router.post("/inbox/c/{conversation_id}/bot", include_in_schema=False)
async def return_to_bot(
    request: Request,
    conversation_id: PathId,
    flow: str = Form("", max_length=200),
    node: str = Form("", max_length=200),
    filters: str = Form("", max_length=2000),
    principal: Principal = Depends(need(Perm.INBOX_REPLY)),
) -> Response:
    """Hand back to the bot: optionally start a flow now, or wait at one of its questions."""
    otk = otklik_of(request)
    try:
        sent = await inbox_ops.return_to_bot(otk.ctx, otk.ingest, principal, conversation_id, flow, node)
    except OtklikError as exc:
        return await _refused(request, principal, conversation_id, exc, filters)
    return await _done(request, principal, conversation_id, filters, {"status": Status.BOT, "bot_messages": sent})
