"""`/api/v1/conversations`: list, get, messages, send a message (through the outbox), hand off, close
(docs/api.md "Conversations"). Scopes: `conversations.read`, `conversations.write`.

Every change locks the conversation like ingest does (`repo.load_conversation(lock=True)`), writes its audit
entry and its event webhooks in the same transaction; wake-ups happen after the commit.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import ChannelAccount, Conversation, Message
from otklik.clock import utcnow
from otklik.conversations import events, people, repo
from otklik.conversations.api.common import actor_of, answer, ctx_of
from otklik.conversations.outbox import enqueue
from otklik.core.conversation import ConversationState, Handoff, Status
from otklik.core.conversation import close as close_state
from otklik.core.messages import OutboundMessage
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.audit import audit
from otklik.platform.restapi import (
    ApiError,
    check_query,
    decode_cursor,
    error_responses,
    idempotent,
    page,
    page_limit,
    read_json,
)
from otklik.platform.webkit.params import PathId

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])
STATUSES = tuple(str(s) for s in Status)
MAX_REASON = 200

CONVERSATION_EXAMPLE = {
    "id": 40,
    "contact_id": 17,
    "channel": "telegram",
    "channel_account_id": 2,
    "status": "waiting_operator",
    "priority": False,
    "flow": "order",
    "node": "ask_size",
    "assigned_to": None,
    "unread": 1,
    "last_text": "¿Tienen en talle M?",
    "created_at": "2026-12-05T09:10:02.000Z",
    "last_message_at": "2026-12-05T09:12:40.120Z",
    "closed_at": None,
}
MESSAGE_EXAMPLE = {
    "id": 311,
    "conversation_id": 40,
    "direction": "in",
    "author": "buyer",
    "kind": "text",
    "text": "¿Tienen en talle M?",
    "payload": {},
    "status": "received",
    "error": None,
    "created_at": "2026-12-05T09:12:40.120Z",
    "sent_at": None,
    "delivered_at": None,
    "read_at": None,
    "failed_at": None,
}


def _json(example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


def _view(row: Conversation, channel: str) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "contact_id": int(row.contact_id),
        "channel": channel,
        "channel_account_id": int(row.channel_account_id),
        "status": row.status,
        "priority": bool(row.priority),
        "flow": row.flow,
        "node": row.node,
        "assigned_to": row.assigned_to,
        "unread": int(row.unread or 0),
        "last_text": row.last_text,
        "created_at": row.created_at,
        "last_message_at": row.last_message_at,
        "closed_at": row.closed_at,
    }


_WITH_KIND = select(Conversation, ChannelAccount.kind).join(
    ChannelAccount, ChannelAccount.id == Conversation.channel_account_id
)


async def _one(session: AsyncSession, conversation_id: int) -> dict[str, Any]:
    row = (await session.execute(_WITH_KIND.where(Conversation.id == conversation_id))).first()
    if row is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    return _view(row[0], row[1])


@router.get(
    "",
    summary="List conversations, most recently created first",
    responses={200: _json({"data": [CONVERSATION_EXAMPLE], "next_cursor": None}, "a page of conversations")}
    | error_responses(401, 403, 422, 429),
)
async def list_conversations(
    request: Request,
    limit: int | None = Query(None, ge=1, le=200, description="1-200, default 50"),
    cursor: str | None = Query(None, max_length=64, description="next_cursor of the previous page"),
    status: str | None = Query(None, max_length=40, description="bot | waiting_operator | operator | closed"),
    contact_id: int | None = Query(None, ge=1, le=2**63 - 1, description="only this contact's"),
    _caller: ApiCaller = Depends(require_scope("conversations.read")),
) -> JSONResponse:
    check_query(request, ("limit", "cursor", "status", "contact_id"))
    size = page_limit(limit)
    after = decode_cursor("conversations", cursor)
    query = _WITH_KIND.order_by(Conversation.id.desc()).limit(size + 1)
    if after is not None:
        query = query.where(Conversation.id < after)
    if status is not None:
        if status not in STATUSES:
            raise ApiError(422, "status", f"status: one of {', '.join(STATUSES)}")
        query = query.where(Conversation.status == status)
    if contact_id is not None:
        query = query.where(Conversation.contact_id == contact_id)
    async with ctx_of(request).db.read() as session:
        rows = (await session.execute(query)).all()
    items = [_view(r[0], r[1]) for r in rows[:size]]
    return answer(page("conversations", items, size, len(rows) > size))


@router.get(
    "/{conversation_id}",
    summary="A conversation",
    responses={200: _json(CONVERSATION_EXAMPLE, "the conversation")} | error_responses(401, 403, 404, 429),
)
async def get_conversation(
    request: Request, conversation_id: PathId, _caller: ApiCaller = Depends(require_scope("conversations.read"))
) -> JSONResponse:
    check_query(request, ())
    async with ctx_of(request).db.read() as session:
        return answer(await _one(session, conversation_id))


@router.get(
    "/{conversation_id}/messages",
    summary="A conversation's messages, oldest first",
    responses={200: _json({"data": [MESSAGE_EXAMPLE], "next_cursor": "bWVzc2FnZXM6MzEx"}, "a page of messages")}
    | error_responses(401, 403, 404, 422, 429),
)
async def list_messages(
    request: Request,
    conversation_id: PathId,
    limit: int | None = Query(None, ge=1, le=200, description="1-200, default 50"),
    cursor: str | None = Query(None, max_length=64, description="next_cursor of the previous page"),
    _caller: ApiCaller = Depends(require_scope("conversations.read")),
) -> JSONResponse:
    check_query(request, ("limit", "cursor"))
    size = page_limit(limit)
    after = decode_cursor("messages", cursor)
    query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id).limit(size + 1)
    if after is not None:
        query = query.where(Message.id > after)
    async with ctx_of(request).db.read() as session:
        await _one(session, conversation_id)
        rows = list((await session.execute(query)).scalars().all())
    items = [people.message_view(r) for r in rows[:size]]
    return answer(page("messages", items, size, len(rows) > size))


async def _locked(session: AsyncSession, conversation_id: int) -> repo.ConversationRow:
    conv = await repo.load_conversation(session, conversation_id=conversation_id, lock=True)
    if conv is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id}")
    return conv


@router.post(
    "/{conversation_id}/messages",
    summary="Send a message to the buyer (through the outbox)",
    description=(
        "The text goes out on the conversation's channel like an operator's reply: in order with the bot's, "
        "retried, paced. `take_over: true` also stops the bot (the conversation becomes `operator`). "
        "Send an `Idempotency-Key` so a retried request sends one message."
    ),
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"example": {"text": "Su pedido A-0017 salió hoy.", "take_over": False}}},
        }
    },
    responses={
        201: _json(
            {
                "message": MESSAGE_EXAMPLE
                | {"direction": "out", "author": "operator", "status": "queued", "text": "Su pedido A-0017 salió hoy."},
                "conversation": CONVERSATION_EXAMPLE,
            },
            "queued",
        )
    }
    | error_responses(401, 403, 404, 409, 413, 422, 429),
)
async def send_message(
    request: Request, conversation_id: PathId, caller: ApiCaller = Depends(require_scope("conversations.write"))
) -> JSONResponse:
    check_query(request, ())
    data = await read_json(request, ("text", "take_over"), required=("text",))
    ctx = ctx_of(request)
    text = data["text"]
    if not isinstance(text, str) or not text.strip():
        raise ApiError(422, "text", "text: the message, 1 or more characters")
    text = text.replace("\x00", "").strip()
    if len(text) > ctx.settings.max_text_chars:
        raise ApiError(422, "text", f"text: at most {ctx.settings.max_text_chars} characters")
    take_over = data.get("take_over", False)
    if not isinstance(take_over, bool):
        raise ApiError(422, "take_over", "take_over: true or false")

    async def run() -> JSONResponse:
        now = utcnow()
        async with ctx.db.write() as session:
            conv = await _locked(session, conversation_id)
            local = ctx.is_local(conv.channel_account_id)
            if ctx.accounts.get(conv.channel_account_id) is None:
                raise ApiError(409, "conflict", "the conversation's channel account is disabled or unknown")
            message = OutboundMessage(text=text)
            message_id = await enqueue(
                session, conv.id, conv.channel_account_id, conv.recipient, message, author="operator", now=now,
                local=local, channel=ctx.kind_of(conv.channel_account_id),
            )  # fmt: skip
            payload = {**message.to_dict(), "by": None, "by_name": actor_of(caller)}
            await session.execute(update(Message).where(Message.id == message_id).values(payload=payload))
            values: dict[str, Any] = {"last_message_at": now, "updated_at": now}
            if take_over:
                values |= {"status": str(Status.OPERATOR), "state": {**conv.state, "status": str(Status.OPERATOR)},
                           "closed_at": None}  # fmt: skip
            await repo.set_conversation(session, conv.id, **values)
            audit(session, actor_of(caller), "conversation.reply", "conversation", conv.id,
                  {"message_id": message_id, "take_over": take_over}, now=now)  # fmt: skip
            row = await session.get(Message, message_id)
            assert row is not None
            body = {"message": people.message_view(row), "conversation": await _one(session, conv.id)}
        if local:
            ctx.notifier.delivered(conv.id)
        else:
            ctx.notifier.outbox_changed()
        return answer(body, 201)

    return await idempotent(request, caller.token_id, run)


@router.post(
    "/{conversation_id}/handoff",
    summary="Hand the conversation to people",
    description=(
        "The bot stops; the conversation waits for an operator in the inbox (`waiting_operator`), like a "
        "hand-off by a flow: the capabilities' hand-off reactions run, `conversation.handoff` is emitted. "
        "Already waiting or with an operator: nothing changes (`changed: false`)."
    ),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"example": {"reason": "crm: refund over the limit", "priority": True}}},
        }
    },
    responses={200: _json({"changed": True, "conversation": CONVERSATION_EXAMPLE}, "handed off")}
    | error_responses(401, 403, 404, 409, 413, 422, 429),
)
async def hand_off(
    request: Request, conversation_id: PathId, caller: ApiCaller = Depends(require_scope("conversations.write"))
) -> JSONResponse:
    check_query(request, ())
    data = await read_json(request, ("reason", "priority"))
    reason = data.get("reason", "api")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON or not reason.isprintable():
        raise ApiError(422, "reason", f"reason: 1-{MAX_REASON} printable characters")
    priority = data.get("priority", False)
    if not isinstance(priority, bool):
        raise ApiError(422, "priority", "priority: true or false")
    otklik = request.app.state.otklik

    async def run() -> JSONResponse:
        ctx = ctx_of(request)
        now = utcnow()
        actions: list[Any] = []
        async with ctx.db.write() as session:
            conv = await _locked(session, conversation_id)
            changed = conv.status not in (Status.WAITING_OPERATOR, Status.OPERATOR)
            if changed:
                state = ConversationState.from_dict(conv.state)
                state.status = Status.WAITING_OPERATOR
                state.priority = state.priority or priority
                await repo.set_conversation(
                    session, conv.id, status=str(Status.WAITING_OPERATOR), state=state.to_dict(),
                    priority=state.priority, waiting_since=now, closed_at=None, updated_at=now,
                )  # fmt: skip
                effect = Handoff(priority=priority, reason=reason.strip(), context={"by": actor_of(caller)})
                actions = await otklik.ingest.apply(repo.SessionWriter(session), conv, (effect,), now)
                channel = ctx.kind_of(conv.channel_account_id)
                change = events.handoff(conv.id, conv.contact_id, channel, reason.strip(), priority, actor_of(caller))
                await events.emit_events(session, conv.id, [change], now)
                audit(session, actor_of(caller), "conversation.handoff", "conversation", conv.id,
                      {"reason": reason.strip(), "priority": priority}, now=now)  # fmt: skip
            body = {"changed": changed, "conversation": await _one(session, conv.id)}
        for timer_id, _action in actions:
            ctx.start_action(timer_id)
        return answer(body)

    return await idempotent(request, caller.token_id, run)


@router.post(
    "/{conversation_id}/close",
    summary="Close the conversation",
    description=(
        "Out of every open view; the buyer's next message starts afresh with the bot. Already closed: nothing "
        "changes (`changed: false`)."
    ),
    responses={200: _json({"changed": True, "conversation": CONVERSATION_EXAMPLE | {"status": "closed"}}, "closed")}
    | error_responses(401, 403, 404, 413, 422, 429),
)
async def close_conversation(
    request: Request, conversation_id: PathId, caller: ApiCaller = Depends(require_scope("conversations.write"))
) -> JSONResponse:
    check_query(request, ())
    await read_json(request, ())

    async def run() -> JSONResponse:
        ctx = ctx_of(request)
        now = utcnow()
        async with ctx.db.write() as session:
            conv = await _locked(session, conversation_id)
            changed = conv.status != Status.CLOSED
            if changed:
                state = close_state(ConversationState.from_dict(conv.state))
                await repo.set_conversation(
                    session, conv.id, status=str(Status.CLOSED), state=state.to_dict(), priority=False, unread=0,
                    closed_at=now, updated_at=now,
                )  # fmt: skip
                audit(session, actor_of(caller), "conversation.close", "conversation", conv.id,
                      {"from": conv.status}, now=now)  # fmt: skip
                gone = events.closed(conv.id, conv.contact_id, ctx.kind_of(conv.channel_account_id), actor_of(caller))
                await events.emit_events(session, conv.id, [gone], now)
            body = {"changed": changed, "conversation": await _one(session, conv.id)}
        return answer(body)

    return await idempotent(request, caller.token_id, run)
