"""Contacts with a Telegram conversation each, written in batches (thousands in one go)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from otklik.adapters.db.models import Contact, ContactIdentity, ContactTag, Conversation, Message
from otklik.clock import utcnow


async def seed_contacts(db: Any, account_id: int, n: int, *, start_chat: int = 1000, **per: Any) -> list[int]:
    """`n` contacts, chat ids `start_chat + i`; `per` maps a field to a function of i (language, subscribed,
    reachable, fields, created_at). Returns the chat ids."""
    now = utcnow()
    chats = [start_chat + i for i in range(n)]
    for first in range(0, n, 1000):
        part = range(first, min(n, first + 1000))
        async with db.write() as session:
            ids = []
            for i in part:
                values = {
                    "display_name": f"buyer {i}", "language": "ru", "subscribed": True, "reachable": True,
                    "tags": {}, "fields": {}, "created_at": now - timedelta(days=400),
                }  # fmt: skip
                values.update({k: f(i) for k, f in per.items()})
                ids.append((await session.execute(insert(Contact).values(**values).returning(Contact.id))).scalar_one())
            for i, contact_id in zip(part, ids, strict=True):
                identity = (
                    await session.execute(
                        insert(ContactIdentity)
                        .values(contact_id=contact_id, channel_account_id=account_id,
                                external_id=str(chats[i]), created_at=now)
                        .returning(ContactIdentity.id)
                    )
                ).scalar_one()  # fmt: skip
                await session.execute(
                    insert(Conversation).values(
                        contact_id=contact_id, identity_id=identity, channel_account_id=account_id, status="bot",
                        state={}, created_at=now, updated_at=now,
                    )
                )  # fmt: skip
    return chats


async def tag(db: Any, chat: int, name: str) -> None:
    async with db.write() as session:
        contact = await session.scalar(
            select(ContactIdentity.contact_id).where(ContactIdentity.external_id == str(chat))
        )
        session.add(ContactTag(contact_id=contact, tag=name, created_at=utcnow()))


async def message(db: Any, chat: int, direction: str, when: datetime) -> None:
    async with db.write() as session:
        conversation = await session.scalar(
            select(Conversation.id)
            .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
            .where(ContactIdentity.external_id == str(chat))
        )
        session.add(Message(conversation_id=conversation, direction=direction, author="buyer" if direction == "in"
                            else "bot", kind="text", text="x", payload={}, status="received", created_at=when))  # fmt: skip
