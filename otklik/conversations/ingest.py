"""Ingest: one inbound event -> one transaction that stores it, runs the flow and writes the effects.

Order per conversation: the conversation row is locked (PostgreSQL `FOR UPDATE`; SQLite writers are
serialised by `BEGIN IMMEDIATE`) before the event is stored, so events are handled in the order their
transactions take the lock. A redelivered event is recognised by its (channel account, external id).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import raw_write
from otklik.adapters.db.models import Contact, Message
from otklik.clock import utcnow
from otklik.conversations import abtests, events, repo, window
from otklik.conversations.context import RuntimeContext
from otklik.conversations.guard import is_marketplace, language_of, mask_inbound, screen
from otklik.conversations.outbox import outbound_row, outbox_row
from otklik.conversations.sealed import SEALED, seal_text
from otklik.conversations.statuses import MessageStatus
from otklik.conversations.understanding import understand
from otklik.core.conversation import (
    CloseDrafts,
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
    StepResult,
)
from otklik.core.errors import NotFound
from otklik.core.flows.engine import Engine
from otklik.core.messages import EventKind, InboundEvent, OutboundMessage, clean_inbound
from otklik.core.redact import mask_cards, mask_sensitive
from otklik.core.understanding import Understanding
from otklik.platform.prometheus import INBOUND

if TYPE_CHECKING:
    from otklik.conversations.timers import ActionRegistry

log = logging.getLogger(__name__)
Writer = repo.SessionWriter | repo.RawWriter
#: quick actions (`otklik.conversations.timers`) one step runs one after the other at most; the next one goes
#: through its timer row (this also ends a flow that loops `action -> ... -> same action` within one step)
MAX_QUICK_CHAIN = 8

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

    def __init__(self, ctx: RuntimeContext, actions: ActionRegistry | None = None) -> None:
        self.ctx = ctx
        self.actions = actions  # quick actions run inside the step; None: every action goes through a timer

    async def __call__(self, event: InboundEvent) -> IngestResult:
        event = clean_inbound(event)  # NUL and other controls: never stored, whatever the channel
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
        account = self.ctx.accounts.get(event.channel_account_id)
        if account is None:
            raise NotFound("unknown channel account")
        async with self._transaction() as writer:
            conv = await writer.load_conversation(account_id=account.id, sender_id=event.sender_id, lock=True)
            created = conv is None
            if conv is None:
                await writer.create_conversation(
                    account_id=account.id,
                    sender_id=event.sender_id,
                    name=event.sender_name,
                    language=event.language,
                    now=now,
                )
                conv = await writer.load_conversation(account_id=account.id, sender_id=event.sender_id, lock=True)
                assert conv is not None
            if not await writer.record_inbound(
                account_id=account.id,
                external_id=event.external_id,
                conversation_id=conv.id,
                kind=str(event.kind),
                now=now,
            ):
                INBOUND.labels(account.kind, "duplicate").inc()
                return IngestResult(duplicate=True, conversation_id=conv.id), []
            INBOUND.labels(account.kind, "new").inc()
            return await self._handle(writer, conv, event, now, understanding, created)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Writer]:
        """The hot path's plain-SQL transaction (every `Database` has one: in-memory SQLite is refused)."""
        async with raw_write(self.ctx.db) as tx:
            yield repo.RawWriter(tx)

    async def _handle(
        self,
        writer: Writer,
        conv: repo.ConversationRow,
        event: InboundEvent,
        now: datetime,
        understanding: Understanding | None = None,
        created: bool = False,
    ) -> tuple[IngestResult, list[tuple[int, RunAction]]]:
        if event.kind == EventKind.STATUS:
            await self._status(writer, conv.id, event, now)
            return IngestResult(False, conv.id), []
        if event.kind == EventKind.REACHABILITY:
            await writer.update_contact(conv.contact_id, reachable=event.payload != "blocked")
            return IngestResult(False, conv.id), []
        if event.kind == EventKind.NOTICE:
            return await self._notice(writer, conv, event, now), []
        if event.text and is_marketplace(self.ctx, conv.channel_account_id):
            # the marketplace's rules forbid keeping buyers' personal data: the text is masked before the
            # engine, the message row and the preview see it (its understanding was read in memory)
            event = replace(event, text=mask_inbound(event.text))
        inbound = {
            "conversation_id": conv.id,
            "direction": "in",
            "author": "buyer",
            "kind": _AUTHOR_KIND.get(event.kind, "text"),
            "text": (event.text or "")[:8192],
            "payload": _inbound_payload(event),
            "external_id": event.external_id,
            "status": "received",
            "created_at": now,
            "sent_at": None,
        }
        released = await self._channel_facts(writer, conv, event, now)
        replies, actions, message_id = await self._step(writer, conv, event, now, understanding, inbound, created)
        return IngestResult(False, conv.id, message_id, replies + released), actions

    async def _channel_facts(
        self, writer: Writer, conv: repo.ConversationRow, event: InboundEvent, now: datetime
    ) -> int:
        """What a channel tells besides the message: the provider's send time of a buyer's message (channels
        with a 24-hour window set `data["provider_ts"]`: the window reopens and held replies are released) and
        an ad referral (kept once as the contact's `lead_source`). Returns the outbox rows released."""
        released = 0
        ts = event.data.get("provider_ts")
        if event.kind in _BUYER_MESSAGE_KINDS and isinstance(ts, int | float) and not isinstance(ts, bool):
            at = min(_from_epoch(ts) or now, now)
            released = await window.note_inbound(
                writer, account_id=conv.channel_account_id, recipient=conv.recipient, conversation_id=conv.id, at=at
            )
        referral = event.data.get("referral")
        if isinstance(referral, dict) and referral and "lead_source" not in conv.fields:
            fields = {**conv.fields, "lead_source": {k: str(v)[:500] for k, v in list(referral.items())[:12]}}
            await writer.execute(update(Contact).where(Contact.id == conv.contact_id).values(fields=fields))
            await writer.log_events([_log(now, "lead_source", conv.id, fields["lead_source"])])
        return released

    async def _notice(
        self, writer: Writer, conv: repo.ConversationRow, event: InboundEvent, now: datetime
    ) -> IngestResult:
        """A message the marketplace (or the seller outside otklik) wrote in the chat: stored for the inbox
        (masked like a buyer's), the conversation's state and flow untouched, nothing answered."""
        seller = event.data.get("from") == "seller"
        text = mask_cards((event.text or "")[:8192])
        row = {
            "conversation_id": conv.id,
            "direction": "out" if seller else "in",
            "author": "operator" if seller else "marketplace",
            "kind": "text",
            "text": text,
            "payload": {**_inbound_payload(event), "notice": "seller" if seller else "marketplace"},
            "external_id": event.external_id,
            "status": "sent" if seller else "received",
            "created_at": now,
            "sent_at": now if seller else None,
        }
        (message_id,) = await writer.add_messages([row])
        preview = " ".join(text.split())[:200]
        values: dict[str, Any] = {"updated_at": now, "last_message_at": now}
        if preview:
            values["last_text"] = preview
        await writer.set_conversation(conv.id, values, unread=not seller)
        await writer.log_events([_log(now, "notice", conv.id, {"from": "seller" if seller else "marketplace"})])
        return IngestResult(False, conv.id, message_id, 0)

    async def step(
        self,
        session: AsyncSession | Writer,
        conv: repo.ConversationRow,
        event: InboundEvent,
        now: datetime,
        understanding: Understanding | None = None,
    ) -> tuple[int, list[tuple[int, RunAction]]]:
        """Run the engine on the event and write state and effects. Returns (replies, actions to run)."""
        writer = repo.SessionWriter(session) if isinstance(session, AsyncSession) else session
        replies, actions, _ = await self._step(writer, conv, event, now, understanding, None)
        return replies, actions

    async def _step(
        self,
        writer: Writer,
        conv: repo.ConversationRow,
        event: InboundEvent,
        now: datetime,
        understanding: Understanding | None,
        inbound: dict[str, Any] | None,
        created: bool = False,
    ) -> tuple[int, list[tuple[int, RunAction]], int | None]:
        """The engine step; `inbound` (the buyer's message row) is written first, in the same statement as
        the replies. Returns (replies, actions to run, the inbound message id).

        Nothing the buyer typed is written unmasked: at a `sensitive` question only the masked form is
        stored (the raw text travels encrypted in the row's payload to the action that needs it, see
        `otklik.conversations.sealed`), and card numbers are hidden in any text."""
        engine = self.ctx.engine_for(conv.channel_account_id)
        state = ConversationState.from_dict(conv.state)
        state.status = conv.status
        sensitive = engine.sensitive_input(state)
        if inbound is not None:
            self._protect(inbound, event, sensitive)
        contact = _contact_view(conv, self._marketplace(conv.channel_account_id))
        result = engine.handle(state, event, contact, now, understanding)
        if self.actions is not None:
            result = await self._quick_actions(writer, conv, engine, event, result, contact, now, inbound)
        new = result.state
        sends = [e.message for e in result.effects if isinstance(e, Send)]
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
                sends.append(OutboundMessage(text=after_hours))
        unread = False
        if event.kind in _BUYER_MESSAGE_KINDS:
            values["last_text"] = _preview(event, sensitive)
            unread = new.status in (Status.WAITING_OPERATOR, Status.OPERATOR)
        if new.priority:
            values["priority"] = True
        local = self.ctx.is_local(conv.channel_account_id)
        message_id, reply_ids = await self._send(writer, conv, sends, now, local, inbound)
        actions = await self.apply(writer, conv, result.effects, now, new.vars, inbound=inbound)
        await writer.set_conversation(conv.id, values, unread=unread)
        await self._events(writer, conv, result, now, inbound, message_id, created, local, sends, reply_ids)
        return len(sends), actions, message_id

    async def _events(
        self,
        writer: Writer,
        conv: repo.ConversationRow,
        result: StepResult,
        now: datetime,
        inbound: dict[str, Any] | None,
        message_id: int | None,
        created: bool,
        local: bool,
        sends: list[OutboundMessage],
        reply_ids: list[int],
    ) -> None:
        """The step's event webhooks (`conversations.events`), in its transaction."""
        channel = self.ctx.kind_of(conv.channel_account_id)
        found: list[events.Event] = []
        if inbound is not None and message_id is not None:
            if created or conv.status == Status.CLOSED:
                found.append(
                    events.started(conv.id, conv.contact_id, channel, conv.channel_account_id, reopened=not created)
                )
            found.append(
                events.received(conv.id, conv.contact_id, channel, conv.channel_account_id, message_id, inbound)
            )
        if result.state.status == Status.WAITING_OPERATOR and conv.status != Status.WAITING_OPERATOR:
            given = next((e for e in result.effects if isinstance(e, Handoff)), None)
            reason = given.reason if given is not None else "flow"
            found.append(events.handoff(conv.id, conv.contact_id, channel, str(reason), bool(result.state.priority)))
        if local:
            found += [events.sent(conv.id, channel, i, m.text, now) for i, m in zip(reply_ids, sends, strict=False)]
        await events.emit_events(writer, conv.id, found, now)

    async def _quick_actions(
        self,
        writer: Writer,
        conv: repo.ConversationRow,
        engine: Engine,
        event: InboundEvent,
        result: StepResult,
        contact: ContactView,
        now: datetime,
        inbound: dict[str, Any] | None,
    ) -> StepResult:
        """While the step ends at a quick action, run it here and feed its result back to the engine, in this
        transaction. Effects stay in order: what the flow did before the action, the action's own messages
        (`_messages`, as `Timers.fire` sends them), then what the flow did with the result. Past
        `MAX_QUICK_CHAIN` actions, or at a slow one, the `RunAction` is left for `apply` (a timer row)."""
        assert self.actions is not None
        last_inbound = None
        if inbound is not None:
            last_inbound = MappingProxyType({k: inbound[k] for k in ("kind", "text", "payload")})
        for link in range(1, MAX_QUICK_CHAIN + 1):
            run = next((e for e in result.effects if isinstance(e, RunAction)), None)
            if run is None or not self.actions.is_quick(run.name, self.ctx):
                break
            data, contact_changed = await self._run_quick(writer, conv, run, now, result.state.vars, last_inbound)
            messages = [Send(m) for m in self.actions.pop_messages(data)]
            if contact_changed:  # e.g. contact.add_tag: the flow goes on with the contact as the action left it
                fresh = await writer.load_conversation(
                    account_id=conv.channel_account_id, sender_id=conv.recipient, lock=False
                )
                contact = _contact_view(fresh, contact.marketplace) if fresh is not None else contact
            back = InboundEvent(
                conv.channel_account_id,
                f"{event.external_id}~q{link}",  # the engine derives the next tokens from it: unique, short
                conv.recipient,
                EventKind.ACTION_RESULT,
                payload=run.token,
                data=data,
            )
            after = engine.handle(result.state, back, contact, now)
            before = tuple(e for e in result.effects if e is not run)
            result = StepResult(after.state, before + tuple(messages) + after.effects)
        return result

    async def run_quick(
        self, writer: Writer, conv: repo.ConversationRow, run: RunAction, now: datetime
    ) -> dict[str, Any]:
        """A quick action with a timer row (`Timers.fire(run_here=True)`), in the caller's transaction."""
        data, _ = await self._run_quick(writer, conv, run, now, conv.state.get("vars", {}), None)
        return data

    async def _run_quick(
        self,
        writer: Writer,
        conv: repo.ConversationRow,
        run: RunAction,
        now: datetime,
        variables: Mapping[str, Any],
        last_inbound: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], bool]:
        assert self.actions is not None
        account = self.ctx.accounts.get(conv.channel_account_id)
        if account is None:
            return {"ok": False, "error": "the channel account is not loaded"}, False
        language = conv.contact_language or self.ctx.engine_for(account.id).pack.language
        return await self.actions.run_quick(
            run,
            writer,
            conversation_id=conv.id,
            contact_id=conv.contact_id,
            account=account,
            language=language,
            variables=MappingProxyType(variables),
            last_inbound=last_inbound,
            now=now,
            settings=self.ctx.settings,
            marketplace_kinds=self.ctx.marketplace_kinds,
            state=self.ctx.state,
        )

    def _marketplace(self, account_id: int) -> bool:
        account = self.ctx.accounts.get(account_id)
        return account is not None and account.kind in self.ctx.marketplace_kinds

    def _protect(self, inbound: dict[str, Any], event: InboundEvent, sensitive: bool) -> None:
        """Mask the buyer's text in its message row. What masking hid travels on only encrypted (for the
        action that reads it: the payout step; also for a card typed where no sensitive question asks, e.g.
        a flow version stored before its payout question was marked sensitive)."""
        raw = inbound["text"]
        if not raw:
            return
        masked = mask_sensitive(raw) if sensitive else mask_cards(raw)
        inbound["text"] = masked
        if masked != raw and event.kind == EventKind.TEXT and not raw.startswith("/"):
            inbound["payload"] = {**inbound["payload"], SEALED: seal_text(self.ctx.vault, raw)}

    async def _send(
        self,
        writer: Writer,
        conv: repo.ConversationRow,
        messages: list[OutboundMessage],
        now: datetime,
        local: bool,
        inbound: dict[str, Any] | None,
    ) -> tuple[int | None, list[int]]:
        """Messages (the buyer's first, then the replies, in order) and the replies' outbox rows.

        `local`: the channel is our own database (the web chat): the reply is delivered by this very
        transaction, so it is written as sent (exactly once by construction) and no dispatcher round is
        needed."""
        if messages and is_marketplace(self.ctx, conv.channel_account_id):
            language = language_of(self.ctx, conv.channel_account_id, conv.contact_language)
            messages, blocked = screen(self.ctx, conv.channel_account_id, conv.id, messages, language=language, now=now)
            await writer.log_events(blocked)
        rows = [inbound] if inbound is not None else []
        rows += [outbound_row(conv.id, m, author="bot", now=now, local=local) for m in messages]
        ids = await writer.add_messages(rows)
        if inbound is not None:
            inbound_id, ids = ids[0], ids[1:]
        else:
            inbound_id = None
        await writer.add_outbox(
            [
                outbox_row(conv.id, message_id, conv.channel_account_id, conv.recipient, now=now, local=local)
                for message_id in ids
            ]
        )
        return inbound_id, ids

    async def apply(
        self,
        writer: Writer,
        conv: repo.ConversationRow,
        effects: tuple[Effect, ...],
        now: datetime,
        variables: Mapping[str, Any] | None = None,
        *,
        inbound: Mapping[str, Any] | None = None,
    ) -> list[tuple[int, RunAction]]:
        """Write every effect but `Send` (see `_send`) in the caller's transaction; the capabilities'
        reactions to a hand-off or a cancelled flow run here too (`variables`: the flow's after the step).
        `inbound`: the buyer's message row of the step; a slow action's timer keeps its kind, masked text and
        payload (not what `SEALED` holds) for `ActionContext.last_inbound`."""
        logs: list[dict[str, Any]] = []
        actions: list[tuple[int, RunAction]] = []
        reactions: list[tuple[str, dict[str, Any]]] = []
        for effect in effects:
            if isinstance(effect, StartTimer):
                await self._timer(
                    writer, conv.id, effect.purpose, effect.token, {}, now + timedelta(seconds=effect.seconds), now
                )
            elif isinstance(effect, RunAction):
                payload = {"name": effect.name, "args": effect.args, "timeout": effect.timeout}
                if inbound is not None:
                    payload["inbound"] = _action_inbound(inbound)
                deadline = now + timedelta(seconds=effect.timeout + self.ctx.settings.action_grace_seconds)
                timer_id = await self._timer(writer, conv.id, "action", effect.token, payload, deadline, now)
                actions.append((timer_id, effect))
            elif isinstance(effect, SetSubscribed):
                await writer.update_contact(conv.contact_id, subscribed=effect.subscribed)
                logs.append(_log(now, "subscription", conv.id, {"subscribed": effect.subscribed}))
            elif isinstance(effect, Handoff):
                data = {"priority": effect.priority, "reason": effect.reason}
                if effect.context:
                    data["context"] = effect.context
                logs.append(_log(now, "handoff", conv.id, data))
                reactions.append(("handoff", data))
            elif isinstance(effect, CloseDrafts):
                closed = {"flow": effect.flow, "reason": effect.reason, "case": effect.case}
                logs.append(_log(now, "drafts_closed", conv.id, closed))
                reactions.append(("drafts_closed", closed))
            elif isinstance(effect, Record):
                logs.append(_log(now, effect.kind, conv.id, effect.data))
                if effect.kind in _AB_RECORDS:
                    await abtests.apply_record(writer, effect.kind, effect.data, conv.contact_id, conv.id, now)
        await writer.log_events(logs)
        for on, data in reactions:
            await self._react(
                writer, conv, on, data, now, conv.state.get("vars", {}) if variables is None else variables
            )
        return actions

    async def _react(
        self,
        writer: Writer,
        conv: repo.ConversationRow,
        on: str,
        data: Mapping[str, Any],
        now: datetime,
        variables: Mapping[str, Any],
    ) -> None:
        if self.actions is None or not self.actions.reacts_to(on):
            return
        account = self.ctx.accounts.get(conv.channel_account_id)
        if account is None:
            return
        await self.actions.react(
            on,
            data,
            writer,
            conversation_id=conv.id,
            contact_id=conv.contact_id,
            account=account,
            language=conv.contact_language or self.ctx.engine_for(account.id).pack.language,
            variables=MappingProxyType(dict(variables)),
            now=now,
            settings=self.ctx.settings,
            marketplace_kinds=self.ctx.marketplace_kinds,
            state=self.ctx.state,
        )

    async def _timer(
        self,
        writer: Writer,
        conversation_id: int,
        kind: str,
        token: str,
        payload: dict[str, Any],
        due: datetime,
        now: datetime,
    ) -> int:
        return await writer.add_timer(
            conversation_id=conversation_id,
            kind=kind,
            token=token,
            payload=payload,
            status="pending",
            due_at=due,
            attempts=0,
            created_at=now,
        )

    async def _status(self, writer: Writer, conversation_id: int, event: InboundEvent, now: datetime) -> None:
        """A delivery receipt, applied monotonically whatever order receipts arrive in: a message goes
        queued → sent → delivered → read and never back (a late "delivered" after "read" only fills
        `delivered_at`); "read" without "delivered" fills both; "failed" counts only before delivery. Times
        are the provider's (`data["provider_ts"]`, never later than our clock), else ours."""
        status = event.payload or ""
        target = event.data.get("message_external_id")
        if status not in _RECEIPTS or not target:
            return
        ts = event.data.get("provider_ts")
        at = min(_from_epoch(ts) or now, now) if isinstance(ts, int | float) and not isinstance(ts, bool) else now
        error = str(event.data.get("error") or "")[:500] or None
        params: dict[str, Any] = {"c": conversation_id, "x": str(target), "at": at}
        if status == "failed":
            params["e"] = error
        await writer.execute(_RECEIPTS[status], params)
        found = await writer.fetch(
            select(Message.id).where(Message.conversation_id == conversation_id, Message.external_id == str(target))
        )
        if found:
            channel = self.ctx.kind_of(event.channel_account_id)
            change = events.status(conversation_id, channel, int(found[0][0]), str(target), str(event.payload))
            await events.emit_events(writer, conversation_id, [change], now)

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


def _from_epoch(ts: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _receipt(status: str, ahead: tuple[str, ...], stamps: tuple[str, ...]) -> Any:
    """UPDATE of one message for a receipt: each `stamps` column keeps the earliest time any receipt gave it
    (a late "delivered" still corrects the time a "read" filled in), and the status moves forward only from
    the `ahead` states."""
    m = Message.__table__.c
    at = bindparam("at", type_=Message.__table__.c.delivered_at.type)
    values: dict[str, Any] = {c: case((or_(m[c].is_(None), m[c] > at), at), else_=m[c]) for c in stamps}
    behind = or_(*(m.status == literal_column(f"'{s}'") for s in ahead))  # literals: no expanding IN
    values["status"] = case((behind, literal_column(f"'{status}'")), else_=m.status)
    if status == MessageStatus.FAILED:
        values["error"] = case((behind, bindparam("e", type_=m.error.type)), else_=m.error)
    return (
        update(Message)
        .where(Message.conversation_id == bindparam("c"), Message.external_id == bindparam("x"))
        .values(**values)
    )


_BEFORE_DELIVERY = (MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.HELD)
_RECEIPTS = {
    "sent": _receipt(MessageStatus.SENT, (MessageStatus.QUEUED, MessageStatus.HELD), ()),
    "delivered": _receipt(MessageStatus.DELIVERED, _BEFORE_DELIVERY, ("delivered_at",)),
    "read": _receipt(MessageStatus.READ, (*_BEFORE_DELIVERY, MessageStatus.DELIVERED), ("delivered_at", "read_at")),
    "failed": _receipt(MessageStatus.FAILED, _BEFORE_DELIVERY, ("failed_at",)),
}


def _contact_view(conv: repo.ConversationRow, marketplace: bool = False) -> ContactView:
    return ContactView(
        first_name=conv.contact_name.split(" ")[0] if conv.contact_name else "",
        language=conv.contact_language,
        subscribed=conv.subscribed,
        tags=tuple(conv.tags.get("list", [])),
        fields=conv.fields,
        marketplace=marketplace,
        id=conv.contact_id,
    )


_AB_RECORDS = frozenset({"ab_exposure", "ab_conversion"})
_BUYER_MESSAGE_KINDS = frozenset({EventKind.TEXT, EventKind.BUTTON, EventKind.PHOTO, EventKind.FILE, EventKind.CONTACT})
_PREVIEW_MARKS = {EventKind.PHOTO: "[photo]", EventKind.FILE: "[file]", EventKind.CONTACT: "[contact]"}


def _preview(event: InboundEvent, sensitive: bool) -> str:
    raw = event.text or ""
    text = " ".join((mask_sensitive(raw) if sensitive else mask_cards(raw)).split())
    mark = _PREVIEW_MARKS.get(event.kind)
    if mark:
        text = f"{mark} {text}".strip()
    return text[:200]


def _action_inbound(inbound: Mapping[str, Any]) -> dict[str, Any]:
    """What a slow action may know of the buyer's message of its step (as a quick action's `last_inbound`)."""
    raw = inbound.get("payload")
    payload = {k: v for k, v in raw.items() if k != SEALED} if isinstance(raw, dict) else {}
    return {"kind": inbound.get("kind"), "text": inbound.get("text"), "payload": payload}


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
