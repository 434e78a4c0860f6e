"""Ingest: one inbound event -> one transaction that stores it, runs the flow and writes the effects.

Order per conversation: the conversation row is locked (PostgreSQL `FOR UPDATE`; SQLite writers are
serialised by `BEGIN IMMEDIATE`) before the event is stored, so events are handled in the order their
transactions take the lock. A redelivered event is recognised by its (channel account, external id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import Contact, Conversation, Message, Timer
from otklik.clock import utcnow
from otklik.core.conversation import (
    ContactView,
    ConversationState,
    Effect,
    Handoff,
    Record,
    RunAction,
    Send,
    SetSubscribed,
    StartTimer,
    Status,
)
from otklik.core.errors import NotFound
from otklik.core.messages import EventKind, InboundEvent, OutboundMessage
from otklik.core.understanding import Understanding
from otklik.runtime import repo
from otklik.runtime.context import RuntimeContext
from otklik.runtime.outbox import enqueue
from otklik.runtime.understanding import understand

log = logging.getLogger(__name__)

_AUTHOR_KIND = {
    EventKind.BUTTON: "button",
    EventKind.PHOTO: "photo",
    EventKind.FILE: "file",
    EventKind.CONTACT: "contact",
    EventKind.EDITED: "edited",
}


@dataclass(frozen=True, slots=True)
class IngestResult:
    duplicate: bool
    conversation_id: int | None
    message_id: int | None = None
    replies: int = 0


class Ingest:
    """The one use case every channel adapter calls."""

    def __init__(self, ctx: RuntimeContext) -> None:
        self.ctx = ctx

    async def __call__(self, event: InboundEvent) -> IngestResult:
        understanding = await understand(self.ctx, event)
        for attempt in range(3):
            try:
                result, actions = await self._once(event, understanding)
            except IntegrityError:
                if attempt == 2:
                    raise
                continue  # a concurrent first message created the contact: retry and find it
            if result.conversation_id is not None:
                self.after_commit(result.conversation_id, event.channel_account_id, result.replies, actions)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self, event: InboundEvent, understanding: Understanding | None = None
    ) -> tuple[IngestResult, list[tuple[int, RunAction]]]:
        now = utcnow()
        async with self.ctx.db.write() as session:
            account = self.ctx.accounts.get(event.channel_account_id)
            if account is None:
                raise NotFound("unknown channel account")
            conv = await repo.load_conversation(session, account_id=account.id, sender_id=event.sender_id, lock=True)
            if conv is None:
                await repo.create_conversation(
                    session,
                    account_id=account.id,
                    sender_id=event.sender_id,
                    name=event.sender_name,
                    language=event.language,
                    now=now,
                )
                conv = await repo.load_conversation(
                    session, account_id=account.id, sender_id=event.sender_id, lock=True
                )
                assert conv is not None
            if not await repo.record_inbound(
                session,
                account_id=account.id,
                external_id=event.external_id,
                conversation_id=conv.id,
                kind=str(event.kind),
                now=now,
            ):
                return IngestResult(duplicate=True, conversation_id=conv.id), []
            return await self._handle(session, conv, event, now, understanding)

    async def _handle(
        self,
        session: AsyncSession,
        conv: repo.ConversationRow,
        event: InboundEvent,
        now: datetime,
        understanding: Understanding | None = None,
    ) -> tuple[IngestResult, list[tuple[int, RunAction]]]:
        if event.kind == EventKind.STATUS:
            await self._status(session, conv.id, event, now)
            return IngestResult(False, conv.id), []
        if event.kind == EventKind.REACHABILITY:
            await session.execute(
                update(Contact).where(Contact.id == conv.contact_id).values(reachable=event.payload != "blocked")
            )
            return IngestResult(False, conv.id), []
        message_id = await repo.add_message(
            session,
            conversation_id=conv.id,
            direction="in",
            author="buyer",
            kind=_AUTHOR_KIND.get(event.kind, "text"),
            text=(event.text or "")[:8192],
            payload=_inbound_payload(event),
            external_id=event.external_id,
            status="received",
            created_at=now,
        )
        replies, actions = await self.step(session, conv, event, now, understanding)
        return IngestResult(False, conv.id, message_id, replies), actions

    async def step(
        self,
        session: AsyncSession,
        conv: repo.ConversationRow,
        event: InboundEvent,
        now: datetime,
        understanding: Understanding | None = None,
    ) -> tuple[int, list[tuple[int, RunAction]]]:
        """Run the engine on the event and write state and effects. Returns (replies, actions to run)."""
        engine = self.ctx.engine_for(conv.channel_account_id)
        state = ConversationState.from_dict(conv.state)
        state.status = conv.status
        contact = ContactView(
            first_name=conv.contact_name.split(" ")[0] if conv.contact_name else "",
            language=conv.contact_language,
            subscribed=conv.subscribed,
            tags=tuple(conv.tags.get("list", [])),
            fields=conv.fields,
        )
        result = engine.handle(state, event, contact, now, understanding)
        actions = await self.apply(session, conv, result.effects, now)
        replies = sum(isinstance(e, Send) for e in result.effects)
        new = result.state
        values: dict[str, Any] = {
            "state": new.to_dict(),
            "flow": new.flow,
            "node": new.node,
            "status": str(new.status),
            "updated_at": now,
            "last_message_at": now,
        }
        if new.status == Status.WAITING_OPERATOR and conv.status != Status.WAITING_OPERATOR:
            values["waiting_since"] = now
            after_hours = self.ctx.after_hours_text(conv.channel_account_id, now) if self.ctx.after_hours_text else None
            if after_hours:
                await enqueue(
                    session,
                    conv.id,
                    conv.channel_account_id,
                    conv.recipient,
                    OutboundMessage(text=after_hours),
                    author="bot",
                    now=now,
                    local=self.ctx.is_local(conv.channel_account_id),
                )
                replies += 1
        if event.kind in _BUYER_MESSAGE_KINDS:
            values["last_text"] = _preview(event)
            if new.status in (Status.WAITING_OPERATOR, Status.OPERATOR):
                values["unread"] = Conversation.unread + 1
        if new.priority:
            values["priority"] = True
        await repo.set_conversation(session, conv.id, **values)
        return replies, actions

    async def apply(
        self, session: AsyncSession, conv: repo.ConversationRow, effects: tuple[Effect, ...], now: datetime
    ) -> list[tuple[int, RunAction]]:
        """Write every effect in the caller's transaction."""
        logs: list[dict[str, Any]] = []
        actions: list[tuple[int, RunAction]] = []
        for effect in effects:
            if isinstance(effect, Send):
                await enqueue(
                    session,
                    conv.id,
                    conv.channel_account_id,
                    conv.recipient,
                    effect.message,
                    author="bot",
                    now=now,
                    local=self.ctx.is_local(conv.channel_account_id),
                )
            elif isinstance(effect, StartTimer):
                await self._timer(
                    session, conv.id, effect.purpose, effect.token, {}, now + timedelta(seconds=effect.seconds), now
                )
            elif isinstance(effect, RunAction):
                payload = {"name": effect.name, "args": effect.args, "timeout": effect.timeout}
                deadline = now + timedelta(seconds=effect.timeout + self.ctx.settings.action_grace_seconds)
                timer_id = await self._timer(session, conv.id, "action", effect.token, payload, deadline, now)
                actions.append((timer_id, effect))
            elif isinstance(effect, SetSubscribed):
                await session.execute(
                    update(Contact).where(Contact.id == conv.contact_id).values(subscribed=effect.subscribed)
                )
                logs.append(_log(now, "subscription", conv.id, {"subscribed": effect.subscribed}))
            elif isinstance(effect, Handoff):
                logs.append(_log(now, "handoff", conv.id, {"priority": effect.priority, "reason": effect.reason}))
            elif isinstance(effect, Record):
                logs.append(_log(now, effect.kind, conv.id, effect.data))
        await repo.log_events(session, logs)
        return actions

    async def _timer(
        self,
        session: AsyncSession,
        conversation_id: int,
        kind: str,
        token: str,
        payload: dict[str, Any],
        due: datetime,
        now: datetime,
    ) -> int:
        return await repo.insert_id(
            session,
            Timer,
            conversation_id=conversation_id,
            kind=kind,
            token=token,
            payload=payload,
            status="pending",
            due_at=due,
            attempts=0,
            created_at=now,
        )

    async def _status(self, session: AsyncSession, conversation_id: int, event: InboundEvent, now: datetime) -> None:
        column = {"delivered": "delivered_at", "read": "read_at", "failed": "failed_at"}.get(event.payload or "")
        target = event.data.get("message_external_id")
        if column is None or not target:
            return
        values: dict[str, Any] = {column: now}
        if event.payload in ("delivered", "read"):
            values["status"] = event.payload
        await session.execute(
            update(Message)
            .where(Message.conversation_id == conversation_id, Message.external_id == str(target))
            .values(**values)
        )

    def after_commit(
        self, conversation_id: int, account_id: int, replies: int, actions: list[tuple[int, RunAction]]
    ) -> None:
        """Wake whoever waits: long-polls for local replies, the dispatcher for the others; start actions."""
        if replies:
            if self.ctx.is_local(account_id):
                self.ctx.notifier.delivered(conversation_id)
            else:
                self.ctx.notifier.outbox_changed()
        for timer_id, _action in actions:
            self.ctx.start_action(timer_id)


_BUYER_MESSAGE_KINDS = frozenset({EventKind.TEXT, EventKind.BUTTON, EventKind.PHOTO, EventKind.FILE, EventKind.CONTACT})
_PREVIEW_MARKS = {EventKind.PHOTO: "[photo]", EventKind.FILE: "[file]", EventKind.CONTACT: "[contact]"}


def _preview(event: InboundEvent) -> str:
    text = " ".join((event.text or "").split())
    mark = _PREVIEW_MARKS.get(event.kind)
    if mark:
        text = f"{mark} {text}".strip()
    return text[:200]


def _inbound_payload(event: InboundEvent) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if event.payload:
        payload["payload"] = event.payload
    if event.attachments:
        payload["attachments"] = [a.to_dict() for a in event.attachments]
    if event.phone:
        payload["phone_shared"] = True  # the number itself lives only in flow variables when asked for
    if event.data.get("upload_error"):
        payload["upload_error"] = event.data["upload_error"]
    return payload


def _log(now: datetime, kind: str, conversation_id: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "ts": now,
        "actor": "bot",
        "kind": kind,
        "subject_type": "conversation",
        "subject_id": str(conversation_id),
        "data": data,
    }
