"""A contact's personal data: export everything we hold about one person, and erase it on request (the REST
API's `GET /api/v1/contacts/{id}/export` and `POST /api/v1/contacts/{id}/erase`, docs/api.md).

Erasing keeps what the numbers are made of — the rows of messages (direction, author, kind, status and
times), conversations (status, times) and the event log's kinds — and removes what says who the person is
or what they wrote:

- messages: text and payload emptied (`{"erased": true}`), attachments' files deleted from the media store
  when no other message uses them, provider message ids and errors cleared;
- the contact: name, fields and tags emptied, unsubscribed and unreachable; its tag rows deleted;
- identities: the channel's id of the person (chat id, phone, web-chat session) replaced by `erased:<id>`,
  so a new message from them starts a new contact;
- conversations: flow variables, the list preview and the flow position cleared, closed; outbox rows
  never sent are failed and every outbox row forgets the recipient; timers deleted;
- the event log of its conversations: each row's data reduced to non-personal keys (priority, reason,
  flow, node, case, …) — the kinds and times stay;
- webhook events about its conversations (they hold message texts) deleted with their deliveries;
- survey answers: the free text of an "other" answer emptied (the option chosen stays, for the counts).

What capabilities keep about the person (orders, claims, payout details) is theirs to erase; see
docs/api.md "Erase".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import (
    ABExposure,
    ChannelAccount,
    Contact,
    ContactIdentity,
    ContactTag,
    Conversation,
    EventLog,
    Message,
    OutboxRow,
    SurveyAnswer,
    Timer,
    WebhookEvent,
)
from otklik.adapters.media import MediaStore
from otklik.conversations import events
from otklik.conversations.sealed import SEALED
from otklik.conversations.statuses import OutboxStatus
from otklik.core.conversation import Status
from otklik.core.errors import NotFound
from otklik.platform.audit import audit

#: event-log data keys that say nothing about the person (kept by an erase, for the numbers)
KEEP_LOG_KEYS = frozenset(
    {"priority", "reason", "flow", "node", "case", "subscribed", "from", "version", "message_id", "intent", "by"}
)


def contact_view(row: Contact, identities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": int(row.id),
        "display_name": row.display_name,
        "language": row.language,
        "subscribed": bool(row.subscribed),
        "reachable": bool(row.reachable),
        "tags": list((row.tags or {}).get("list", [])),
        "fields": dict(row.fields or {}),
        "created_at": row.created_at,
        "last_seen_at": row.last_seen_at,
    }
    if identities is not None:
        out["identities"] = identities
    return out


def message_view(row: Message) -> dict[str, Any]:
    payload = {k: v for k, v in (row.payload or {}).items() if k != SEALED}
    return {
        "id": int(row.id),
        "conversation_id": int(row.conversation_id),
        "direction": row.direction,
        "author": row.author,
        "kind": row.kind,
        "text": row.text,
        "payload": payload,
        "status": row.status,
        "error": row.error,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
        "delivered_at": row.delivered_at,
        "read_at": row.read_at,
        "failed_at": row.failed_at,
    }


async def identities_of(session: AsyncSession, contact_id: int) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(ContactIdentity, ChannelAccount.kind)
            .join(ChannelAccount, ChannelAccount.id == ContactIdentity.channel_account_id)
            .where(ContactIdentity.contact_id == contact_id)
            .order_by(ContactIdentity.id)
        )
    ).all()
    return [
        {"channel": kind, "channel_account_id": int(i.channel_account_id), "external_id": i.external_id,
         "created_at": i.created_at}
        for i, kind in rows
    ]  # fmt: skip


async def export(session: AsyncSession, contact_id: int) -> dict[str, Any]:
    """Everything the kernel holds about a contact: the contact, identities, conversations with every
    message, and the event log of its conversations."""
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"no contact {contact_id}")
    conversations = (
        (
            await session.execute(
                select(Conversation).where(Conversation.contact_id == contact_id).order_by(Conversation.id)
            )
        )
        .scalars()
        .all()
    )
    ids = [int(c.id) for c in conversations]
    messages: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    log: list[dict[str, Any]] = []
    if ids:
        for row in (
            await session.execute(select(Message).where(Message.conversation_id.in_(ids)).order_by(Message.id))
        ).scalars():
            messages[int(row.conversation_id)].append(message_view(row))
        for entry in (
            await session.execute(
                select(EventLog)
                .where(EventLog.subject_type == "conversation", EventLog.subject_id.in_([str(i) for i in ids]))
                .order_by(EventLog.id)
            )
        ).scalars():
            log.append({"ts": entry.ts, "kind": entry.kind, "actor": entry.actor, "conversation_id": int(entry.subject_id or 0),
                        "data": entry.data})  # fmt: skip
    answers = (
        await session.execute(
            select(SurveyAnswer).where(SurveyAnswer.contact_id == contact_id).order_by(SurveyAnswer.id)
        )
    ).scalars()
    exposures = (
        await session.execute(select(ABExposure).where(ABExposure.contact_id == contact_id).order_by(ABExposure.id))
    ).scalars()
    return {
        "contact": contact_view(contact, await identities_of(session, contact_id)),
        "survey_answers": [
            {"survey": a.survey, "question": a.question, "option": a.option, "text": a.text, "source": a.source,
             "answered_at": a.answered_at}
            for a in answers
        ],
        "ab_tests": [{"test": e.test_key, "variant": e.variant, "exposed_at": e.exposed_at} for e in exposures],
        "conversations": [
            {"id": int(c.id), "channel_account_id": int(c.channel_account_id), "status": c.status,
             "created_at": c.created_at, "closed_at": c.closed_at, "messages": messages[int(c.id)]}
            for c in conversations
        ],
        "events": log,
    }  # fmt: skip


def _media_ids(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "media_id" and isinstance(item, str):
                found.add(item)
            else:
                found |= _media_ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= _media_ids(item)
    return found


async def erase(
    session: AsyncSession,
    contact_id: int,
    *,
    actor: str,
    now: datetime,
    erasers: Mapping[str, Callable[..., Awaitable[Mapping[str, int]]]] | None = None,
) -> tuple[dict[str, Any], set[str]]:
    """Erase a contact's personal data in the caller's transaction (see the module's text), and what each
    capability keeps about them (`erasers`: `ctx.erasers`, from `Capability.erase`; their counts under
    "capabilities"). Returns the counts and the media ids no one else uses, to delete from the media store
    after the commit (`delete_media`). Erasing twice is harmless."""
    contact = await session.get(Contact, contact_id, with_for_update=session.get_bind().dialect.name != "sqlite")
    if contact is None:
        raise NotFound(f"no contact {contact_id}")
    conversations = (
        await session.execute(select(Conversation.id, Conversation.status).where(Conversation.contact_id == contact_id))
    ).all()
    ids = [int(c.id) for c in conversations]
    media: set[str] = set()
    counts = {"conversations": len(ids), "messages": 0, "identities": 0, "media": 0, "webhook_events": 0}
    if ids:
        for (payload,) in (
            await session.execute(select(Message.payload).where(Message.conversation_id.in_(ids)))
        ).all():
            media |= _media_ids(payload)
        done = await session.execute(
            update(Message)
            .where(Message.conversation_id.in_(ids))
            .values(text="", payload={"erased": True}, external_id=None, error=None)
        )
        counts["messages"] = int(done.rowcount)  # type: ignore[attr-defined]
        await session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.conversation_id.in_(ids), OutboxRow.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))
            )
            .values(status=OutboxStatus.FAILED, lease_until=None, last_error="not sent: the contact's data was erased")
        )
        await session.execute(update(OutboxRow).where(OutboxRow.conversation_id.in_(ids)).values(recipient="erased"))
        await session.execute(delete(Timer).where(Timer.conversation_id.in_(ids)))
        for conversation_id, previous in conversations:
            values: dict[str, Any] = {"state": {}, "flow": None, "node": None, "last_text": "", "priority": False,
                                      "unread": 0, "waiting_since": None, "updated_at": now}  # fmt: skip
            if previous != Status.CLOSED:
                values |= {"status": str(Status.CLOSED), "closed_at": now}
            await session.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values))
        subjects = [str(i) for i in ids]
        for entry in (
            await session.execute(
                select(EventLog).where(EventLog.subject_type == "conversation", EventLog.subject_id.in_(subjects))
            )
        ).scalars():
            kept = {
                k: v for k, v in (entry.data or {}).items() if k in KEEP_LOG_KEYS and not isinstance(v, dict | list)
            }
            if kept != entry.data:
                entry.data = kept
        gone = await session.execute(
            delete(WebhookEvent).where(WebhookEvent.subject.in_([events.subject(i) for i in ids]))
        )
        counts["webhook_events"] = int(gone.rowcount)  # type: ignore[attr-defined]
    identities = (
        (await session.execute(select(ContactIdentity.id).where(ContactIdentity.contact_id == contact_id)))
        .scalars()
        .all()
    )
    for identity_id in identities:
        await session.execute(
            update(ContactIdentity).where(ContactIdentity.id == identity_id).values(external_id=f"erased:{identity_id}")
        )
    counts["identities"] = len(identities)
    contact.display_name = ""
    contact.fields = {}
    contact.tags = {}
    contact.subscribed = False
    contact.reachable = False
    await session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id))
    answered = await session.execute(
        update(SurveyAnswer)
        .where(SurveyAnswer.contact_id == contact_id, SurveyAnswer.text.is_not(None))
        .values(text=None)
    )
    counts["survey_texts"] = int(answered.rowcount)  # type: ignore[attr-defined]
    unused: set[str] = set()
    for media_id in sorted(media):  # content-addressed: a file another message still uses stays
        others = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(or_(Message.conversation_id.notin_(ids), Message.conversation_id.is_(None)))
            .where(cast(Message.payload, String).contains(media_id))
        )
        if not others:
            unused.add(media_id)
    counts["media"] = len(unused)
    theirs: dict[str, dict[str, int]] = {}
    for name, fn in sorted((erasers or {}).items()):
        theirs[name] = {str(k): int(v) for k, v in (await fn(session, contact_id, now=now)).items()}
    audit(session, actor, "contact.erase", "contact", contact_id, {**counts, **theirs}, now=now)
    if theirs:
        return {**counts, "capabilities": theirs}, unused
    return counts, unused


def delete_media(store: MediaStore, media_ids: set[str]) -> int:
    """Delete erased files from the disk; returns how many were there."""
    deleted = 0
    for media_id in media_ids:
        try:
            path = store.path(media_id)
        except KeyError:
            continue
        if path.exists():
            path.unlink()
            deleted += 1
    return deleted
