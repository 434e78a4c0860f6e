"""A salon on a started container (SQLite and PostgreSQL), a fixed clock, an endpoint subscribed to the
bookings' events so they are recorded, and helpers to read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount, Message, WebhookEvent
from otklik.bootstrap import Otklik
from otklik.capabilities.bookings.demo import Salon, salon
from otklik.conversations import repo
from otklik.platform.webhooks.service import add_endpoint

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=MSK)  # a Thursday; the salon's Saturday is the 12th


@dataclass
class Shop:
    app: Otklik
    salon: Salon


@pytest.fixture
async def shop(otklik: Otklik) -> Shop:
    await add_endpoint(otklik.db, otklik.vault, "http://127.0.0.1:9/crm", "lead.*,booking.*", secret="s" * 32,
                       actor="test")  # fmt: skip
    async with otklik.db.write() as session:
        found = await salon(session, now=NOW)
    return Shop(otklik, found)


async def events(app: Otklik, prefix: str = "") -> list[dict[str, Any]]:
    async with app.db.read() as session:
        rows = (await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))).scalars().all()
    return [dict(r.payload) | {"subject": r.subject} for r in rows if r.type.startswith(prefix)]


async def new_conversation(app: Otklik, sender: str = "buyer-1") -> int:
    async with app.db.write() as session:
        account = await session.scalar(select(ChannelAccount.id).where(ChannelAccount.kind == "webchat"))
        assert account is not None
        return await repo.create_conversation(
            session, account_id=int(account), sender_id=sender, name="Мария", language="ru", now=NOW
        )


async def bot_messages(app: Otklik, conversation_id: int) -> list[Message]:
    async with app.db.read() as session:
        query = select(Message).where(Message.conversation_id == conversation_id, Message.direction == "out")
        return list((await session.execute(query.order_by(Message.id))).scalars().all())
