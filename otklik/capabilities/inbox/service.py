"""The operator inbox, write side: reply, internal note, tags, assign, close, return to bot, canned responses.

Each use case is one write transaction that locks the conversation (`repo.load_conversation(lock=True)`),
changes it and writes its audit entry; wake-ups (web chat long-polls, the dispatcher) happen after the
commit. Operator replies leave through the outbox like the bot's, so the dispatcher's guarantees hold.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import CannedResponse, Conversation, FlowVersion, Message, User
from otklik.clock import utcnow
from otklik.conversations import repo
from otklik.conversations.context import RuntimeContext
from otklik.conversations.guard import REFUSED, is_marketplace, log_row, refusal
from otklik.conversations.ingest import Ingest
from otklik.conversations.outbox import enqueue
from otklik.conversations.statuses import MessageStatus
from otklik.conversations.tags import add_tag, clean_tag, remove_tag
from otklik.core.conversation import ConversationState, RunAction, Status, hand_back, park
from otklik.core.conversation import close as close_state
from otklik.core.errors import InvalidInput, NotFound, TooLarge
from otklik.core.flows.model import Flow, IntentRouterNode, QuestionNode
from otklik.core.messages import EventKind, InboundEvent, OutboundMessage
from otklik.core.templates import render, template_errors
from otklik.platform.audit import audit
from otklik.platform.users import ROLE_PERMS, Perm, Principal

MAX_NOTE = 8192
MAX_CANNED_TITLE = 120
MAX_CANNED_TEXT = 4000
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: int | None
    duplicate: bool = False


def clean_text(raw: str | None, limit: int, what: str) -> str:
    """Trimmed text without NUL characters (PostgreSQL refuses them); empty or oversized is refused."""
    text = (raw or "").replace("\x00", "").strip()
    if not text:
        raise InvalidInput(f"the {what} is empty")
    if len(text) > limit:
        raise TooLarge(f"the {what} is longer than {limit} characters")
    return text


async def _locked(session: AsyncSession, conversation_id: int) -> repo.ConversationRow:
    conv = await repo.load_conversation(session, conversation_id=conversation_id, lock=True)
    if conv is None:
        raise NotFound("no such conversation")
    return conv


def _wake(ctx: RuntimeContext, conversation_id: int, account_id: int) -> None:
    if ctx.is_local(account_id):
        ctx.notifier.delivered(conversation_id)
    else:
        ctx.notifier.outbox_changed()


async def reply(
    ctx: RuntimeContext, principal: Principal, conversation_id: int, raw: str | None, client_id: str | None = None
) -> Sent:
    """Send the operator's text to the buyer through the conversation's channel (via the outbox).

    The conversation becomes `operator` and is assigned to the replier. `client_id` (the reply form's
    one-time id) makes a resubmitted form harmless: the second request sends nothing.
    """
    text = clean_text(raw, ctx.settings.max_text_chars, "reply")
    if client_id is not None and not _CLIENT_ID.match(client_id):
        raise InvalidInput("client_id: 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    now = utcnow()
    await _guard_reply(ctx, principal, conversation_id, text, now)
    async with ctx.db.write() as session:
        conv = await _locked(session, conversation_id)
        if client_id is not None and not await repo.record_inbound(
            session,
            account_id=conv.channel_account_id,
            external_id=f"operator-reply:{client_id}",
            conversation_id=conv.id,
            kind="operator_reply",
            now=now,
        ):
            return Sent(None, duplicate=True)
        local = ctx.is_local(conv.channel_account_id)
        message_id = await enqueue(
            session,
            conv.id,
            conv.channel_account_id,
            conv.recipient,
            OutboundMessage(text=text),
            author="operator",
            now=now,
            local=local,
        )
        payload = {**OutboundMessage(text=text).to_dict(), "by": principal.user_id, "by_name": principal.name}
        await session.execute(update(Message).where(Message.id == message_id).values(payload=payload))
        state = {**conv.state, "status": str(Status.OPERATOR)}
        await repo.set_conversation(
            session,
            conv.id,
            status=str(Status.OPERATOR),
            state=state,
            assigned_to=principal.user_id,
            unread=0,
            closed_at=None,
            last_message_at=now,
            updated_at=now,
        )
        audit(session, principal.actor, "conversation.reply", "conversation", conv.id, {"message_id": message_id})
    _wake(ctx, conv.id, conv.channel_account_id)
    return Sent(message_id)


async def _guard_reply(
    ctx: RuntimeContext, principal: Principal, conversation_id: int, text: str, now: datetime
) -> None:
    """On a marketplace channel the operator's text must pass the marketplace guard: a refusal is audited
    (`guard.refused`, in its own transaction) and raised with the reasons, spans and a suggested rewording."""
    async with ctx.db.read() as session:
        conv = await repo.load_conversation(session, conversation_id=conversation_id, lock=False)
    if conv is None:
        raise NotFound("no such conversation")
    if not is_marketplace(ctx, conv.channel_account_id):
        return
    refused = refusal(text, principal.language)
    if refused is None:
        return
    error, verdict = refused
    async with ctx.db.write() as session:
        await repo.log_events(
            session, [log_row(REFUSED, conv.id, verdict, text, author="operator", actor=principal.actor, now=now)]
        )
    raise error


async def note(ctx: RuntimeContext, principal: Principal, conversation_id: int, raw: str | None) -> int:
    """An internal note: a message of kind `note` with no outbox row, so it is never sent."""
    text = clean_text(raw, MAX_NOTE, "note")
    now = utcnow()
    async with ctx.db.write() as session:
        conv = await _locked(session, conversation_id)
        message_id = await repo.add_message(
            session,
            conversation_id=conv.id,
            direction="out",
            author="operator",
            kind="note",
            text=text,
            payload={"by": principal.user_id, "by_name": principal.name},
            external_id=None,
            status=MessageStatus.NOTE,
            created_at=now,
            sent_at=None,
        )
        await repo.set_conversation(session, conv.id, updated_at=now)
        audit(session, principal.actor, "conversation.note", "conversation", conv.id, {"message_id": message_id})
    return message_id


async def set_tag(
    ctx: RuntimeContext, principal: Principal, conversation_id: int, raw: str | None, *, add: bool
) -> list[str]:
    """Add or remove a tag of the conversation's contact; returns the contact's tags."""
    tag = clean_tag(raw or "")
    now = utcnow()
    async with ctx.db.write() as session:
        conv = await _locked(session, conversation_id)
        if add:
            tags = await add_tag(session, conv.contact_id, tag, now)
        else:
            tags = await remove_tag(session, conv.contact_id, tag)
        await repo.set_conversation(session, conv.id, updated_at=now)
        kind = "conversation.tag_add" if add else "conversation.tag_remove"
        audit(session, principal.actor, kind, "conversation", conv.id, {"tag": tag, "contact_id": conv.contact_id})
    return tags


async def assign(ctx: RuntimeContext, principal: Principal, conversation_id: int, user_id: int | None) -> None:
    """Assign to a user who may reply (None: unassign). The status does not change."""
    now = utcnow()
    async with ctx.db.write() as session:
        if user_id is not None:
            user = await session.get(User, user_id)
            allowed = {r.value for r, perms in ROLE_PERMS.items() if Perm.INBOX_REPLY in perms}
            if user is None or not user.active or user.role not in allowed:
                raise InvalidInput("this user cannot take conversations")
        conv = await _locked(session, conversation_id)
        await repo.set_conversation(session, conv.id, assigned_to=user_id, updated_at=now)
        kind = "conversation.assign" if user_id is not None else "conversation.unassign"
        audit(session, principal.actor, kind, "conversation", conv.id, {"user_id": user_id})


async def close(ctx: RuntimeContext, principal: Principal, conversation_id: int) -> None:
    """Close: out of every open view; the buyer's next message starts afresh with the bot."""
    now = utcnow()
    async with ctx.db.write() as session:
        conv = await _locked(session, conversation_id)
        state = close_state(ConversationState.from_dict(conv.state))
        await repo.set_conversation(
            session,
            conv.id,
            status=str(Status.CLOSED),
            state=state.to_dict(),
            priority=False,
            unread=0,
            closed_at=now,
            updated_at=now,
        )
        audit(session, principal.actor, "conversation.close", "conversation", conv.id, {"from": conv.status})


# --- return to bot ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where the bot can take over: a flow, and the nodes that wait for the buyer's input."""

    flow: str
    name: str
    nodes: tuple[str, ...]


async def resume_points(ctx: RuntimeContext, session: AsyncSession, account_id: int) -> list[ResumePoint]:
    """The active flows of the conversation's pack, each with its question and intent-router nodes."""
    flows = await _pack_flows(ctx, session, account_id)
    return [
        ResumePoint(flow.id, flow.name or flow.id, tuple(k for k, n in flow.nodes.items() if _waits(n)))
        for flow in sorted(flows.values(), key=lambda f: f.id)
    ]


def _waits(node: object) -> bool:
    return isinstance(node, QuestionNode | IntentRouterNode)


async def _pack_flows(ctx: RuntimeContext, session: AsyncSession, account_id: int) -> dict[str, Flow]:
    account = ctx.accounts.get(account_id)
    if account is None:
        return {}
    engine = ctx.engine_for(account_id)
    keys = (
        await session.execute(
            select(FlowVersion.flow_key).where(FlowVersion.active.is_(True), FlowVersion.pack == account.pack)
        )
    ).scalars()
    return {key: engine.flows[key] for key in keys if key in engine.flows}


async def return_to_bot(
    ctx: RuntimeContext,
    ingest: Ingest,
    principal: Principal,
    conversation_id: int,
    flow_id: str | None = None,
    node_id: str | None = None,
) -> int:
    """Hand the conversation back to the bot; returns how many bot messages were sent right away.

    - no flow: the bot answers the buyer's next message as a new request (the pack's default flow);
    - a flow: the bot starts it now (its first messages are sent at once);
    - a flow and a node (a question or an intent router): the bot waits there, and the buyer's next
      message is the answer to that node.
    """
    now = utcnow()
    flow_id, node_id = (flow_id or "").strip() or None, (node_id or "").strip() or None
    if node_id and not flow_id:
        raise InvalidInput("choose the flow of the node")
    async with ctx.db.write() as session:
        conv = await _locked(session, conversation_id)
        if flow_id is not None:
            flows = await _pack_flows(ctx, session, conv.channel_account_id)
            flow = flows.get(flow_id)
            if flow is None:
                raise InvalidInput(f"no active flow {flow_id!r} for this channel")
            if node_id is not None and not _waits(flow.nodes.get(node_id)):
                raise InvalidInput(f"node {node_id!r} of {flow_id} is not a question or an intent router")
        state = hand_back(ConversationState.from_dict(conv.state))
        if flow_id is not None and node_id is not None:
            state = park(state, flow_id, node_id)
        values: dict[str, Any] = {
            "status": str(Status.BOT),
            "state": state.to_dict(),
            "flow": state.flow,
            "node": state.node,
            "priority": False,
            "assigned_to": None,
            "waiting_since": None,
            "unread": 0,
            "closed_at": None,
            "updated_at": now,
        }
        await repo.set_conversation(session, conv.id, **values)
        replies: int = 0
        actions: list[tuple[int, RunAction]] = []
        if flow_id is not None and node_id is None:
            replies, actions = await _start_flow(ingest, session, conv, state, flow_id, now)
        audit(
            session,
            principal.actor,
            "conversation.return_to_bot",
            "conversation",
            conv.id,
            {"flow": flow_id, "node": node_id, "bot_messages": replies},
        )
    ingest.after_commit(conv.id, conv.channel_account_id, replies, actions)
    return replies


async def _start_flow(
    ingest: Ingest,
    session: AsyncSession,
    conv: repo.ConversationRow,
    state: ConversationState,
    flow_id: str,
    now: datetime,
) -> tuple[int, list[tuple[int, RunAction]]]:
    """Run one engine step as if the buyer pressed a `flow:<id>` button (no buyer message is stored)."""
    preview = await session.scalar(select(Conversation.last_text).where(Conversation.id == conv.id))
    conv.status, conv.state = str(Status.BOT), state.to_dict()
    event = InboundEvent(
        conv.channel_account_id,
        f"operator:{uuid.uuid4().hex}",
        conv.recipient,
        EventKind.BUTTON,
        payload=f"flow:{flow_id}",
    )
    replies, actions = await ingest.step(session, conv, event, now)
    await repo.set_conversation(session, conv.id, last_text=preview or "")  # the list keeps the buyer's words
    return replies, actions


# --- canned responses ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Canned:
    id: int
    title: str
    text: str
    language: str | None


async def canned_list(session: AsyncSession, limit: int = 300) -> list[Canned]:
    rows = await session.execute(
        select(CannedResponse.id, CannedResponse.title, CannedResponse.text, CannedResponse.language)
        .order_by(CannedResponse.title, CannedResponse.id)
        .limit(limit)
    )
    return [Canned(int(i), t, x, lang) for i, t, x, lang in rows.all()]


def canned_scope(
    contact_name: str, contact_fields: dict[str, Any], variables: dict[str, Any], operator: str
) -> dict[str, Any]:
    """What a canned response may read: `{{ contact.first_name }}`, `{{ operator.name }}`, flow variables."""
    contact = {
        "name": contact_name,
        "first_name": contact_name.split(" ")[0] if contact_name else "",
        **contact_fields,
    }
    return {"vars": variables, "contact": contact, "operator": {"name": operator}}


def render_canned(text: str, scope: dict[str, Any]) -> str:
    return render(text, scope)


def _canned_values(title: str | None, text: str | None, language: str | None) -> dict[str, Any]:
    clean_title = clean_text(title, MAX_CANNED_TITLE, "title")
    clean_body = clean_text(text, MAX_CANNED_TEXT, "text")
    problems = template_errors(clean_body)
    if problems:
        raise InvalidInput("; ".join(problems[:3]) + " (use {{ contact.first_name }}-style variables)")
    lang = (language or "").strip().lower() or None
    if lang is not None and lang not in ("ru", "en", "es"):
        raise InvalidInput("language: ru, en, es or empty")
    return {"title": clean_title, "text": clean_body, "language": lang}


async def save_canned(
    ctx: RuntimeContext,
    principal: Principal,
    canned_id: int | None,
    title: str | None,
    text: str | None,
    language: str | None,
) -> int:
    values = _canned_values(title, text, language)
    async with ctx.db.write() as session:
        if canned_id is None:
            row = CannedResponse(**values, created_by=principal.actor, created_at=utcnow())
            session.add(row)
            await session.flush()
            canned_id = int(row.id)
            kind = "canned.create"
        else:
            result = await session.execute(
                update(CannedResponse).where(CannedResponse.id == canned_id).values(**values)
            )
            if not getattr(result, "rowcount", 0):
                raise NotFound("no such canned response")
            kind = "canned.update"
        audit(session, principal.actor, kind, "canned", canned_id, {"title": values["title"]})
    return canned_id


async def delete_canned(ctx: RuntimeContext, principal: Principal, canned_id: int) -> None:
    async with ctx.db.write() as session:
        result = await session.execute(delete(CannedResponse).where(CannedResponse.id == canned_id))
        if not getattr(result, "rowcount", 0):
            raise NotFound("no such canned response")
        audit(session, principal.actor, "canned.delete", "canned", canned_id, {})
