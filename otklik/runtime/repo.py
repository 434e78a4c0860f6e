"""Queries of the conversation runtime, shared by ingest, dispatcher and scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import (
    ChannelAccount,
    Contact,
    ContactIdentity,
    Conversation,
    EventLog,
    InboundEventRow,
    Message,
)


@dataclass(slots=True)
class ConversationRow:
    """The fields of a conversation and its contact that one step needs."""

    id: int
    contact_id: int
    channel_account_id: int
    recipient: str
    status: str
    state: dict[str, Any]
    contact_name: str
    contact_language: str | None
    subscribed: bool
    tags: dict[str, Any]
    fields: dict[str, Any]


_CONVERSATION_COLUMNS = (
    Conversation.id,
    Conversation.contact_id,
    Conversation.channel_account_id,
    ContactIdentity.external_id,
    Conversation.status,
    Conversation.state,
    Contact.display_name,
    Contact.language,
    Contact.subscribed,
    Contact.tags,
    Contact.fields,
)


async def load_conversation(
    session: AsyncSession,
    *,
    conversation_id: int | None = None,
    account_id: int | None = None,
    sender_id: str | None = None,
    lock: bool,
) -> ConversationRow | None:
    """Load (and on PostgreSQL lock) a conversation by id or by channel identity."""
    query = (
        select(*_CONVERSATION_COLUMNS)
        .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
        .join(Contact, Contact.id == Conversation.contact_id)
    )
    if conversation_id is not None:
        query = query.where(Conversation.id == conversation_id)
    else:
        query = query.where(ContactIdentity.channel_account_id == account_id, ContactIdentity.external_id == sender_id)
    if lock and session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(of=Conversation)
    row = (await session.execute(query)).first()
    return ConversationRow(*row) if row else None


async def create_conversation(
    session: AsyncSession,
    *,
    account_id: int,
    sender_id: str,
    name: str | None,
    language: str | None,
    now: datetime,
) -> int:
    """Contact + identity + conversation for a new buyer; returns the conversation id.

    On PostgreSQL two first messages may race: the unique identity constraint makes one of them fail
    and the caller retries (then finds the row).
    """
    contact_id = await insert_id(
        session,
        Contact,
        display_name=(name or "")[:200],
        language=language,
        subscribed=True,
        reachable=True,
        tags={},
        fields={},
        created_at=now,
        last_seen_at=now,
    )
    identity_id = await insert_id(
        session,
        ContactIdentity,
        contact_id=contact_id,
        channel_account_id=account_id,
        external_id=sender_id,
        created_at=now,
    )
    return await insert_id(
        session,
        Conversation,
        contact_id=contact_id,
        identity_id=identity_id,
        channel_account_id=account_id,
        status="bot",
        priority=False,
        state={},
        created_at=now,
        updated_at=now,
        last_message_at=now,
    )


async def record_inbound(
    session: AsyncSession, *, account_id: int, external_id: str, conversation_id: int, kind: str, now: datetime
) -> bool:
    """Store the event key; False when it was seen before (a redelivery)."""
    exists = await session.scalar(
        select(InboundEventRow.id).where(
            InboundEventRow.channel_account_id == account_id, InboundEventRow.external_id == external_id
        )
    )
    if exists is not None:
        return False
    await session.execute(
        insert(InboundEventRow).values(
            channel_account_id=account_id,
            external_id=external_id,
            conversation_id=conversation_id,
            kind=kind,
            received_at=now,
        )
    )
    return True


async def insert_id(session: AsyncSession, model: Any, **values: Any) -> int:
    """INSERT one row and return its id (RETURNING works on SQLite ≥ 3.35 and PostgreSQL)."""
    return int((await session.execute(insert(model).values(**values).returning(model.id))).scalar_one())


async def add_message(session: AsyncSession, **values: Any) -> int:
    return await insert_id(session, Message, **values)


async def log_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(EventLog), rows)


async def account_by_id(session: AsyncSession, account_id: int) -> ChannelAccount | None:
    return await session.get(ChannelAccount, account_id)


async def set_conversation(session: AsyncSession, conversation_id: int, **values: Any) -> None:
    await session.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values))
