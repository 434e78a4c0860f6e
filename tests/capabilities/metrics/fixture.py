"""A hand-built install whose numbers are known (docs/metrics.md's definitions applied by hand).

Two channel accounts: `tg` (telegram) and `hook` (webhook), both on the pack `care-ru`. Days are March 2026 (UTC):
day 1 = 03-02. The conversations:

1. tg, source `insta`, flow `greeting`, bot only: replies after 2 s and 15 s; its last reply is read and
   never answered (seen but unanswered, day 1).
2. tg: hand-off asked (flow `sales`), olga answers after 5 min, closes; the buyer comes back on day 2
   (reopened): red flag, olga answers after 20 min. Bot replies after 1 s and 3 s.
3. hook: bot replies after 4 s and 30 s, hand-off on exhausted retries, one more buyer message while
   waiting (not the bot's), no operator answer, no read receipts at all.
4. hook: replies after 0.5 s (read, answered within the window) and 1 s; an order on day 3.
5. tg: a reply after 1 s read on day 3, the buyer answers 30 h later (seen but unanswered, and a new
   session: reopened by idleness); then a reply after 2 s.
7. tg: day 1, a reply after 1 s; its read receipt arrives only on day 3 (after the first run), never
   answered: seen but unanswered, counted on day 3, the day of the read.

Expected: 8 conversations, 2 reopened, 8 could hand off, 5 handled by the bot, 3 hand-offs (asked, red flag,
retries), bot replies [2, 15, 1, 3, 4, 30, 0.5, 1, 1, 2, 1] s (2 over 10 s), operator first responses
[5, 20] min, 3 seen but unanswered, 12 messages in, 13 out, 1 order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from otklik.adapters.db.models import (
    ChannelAccount,
    Contact,
    ContactIdentity,
    Conversation,
    EventLog,
    InboundEventRow,
    Message,
)
from otklik.bootstrap import Otklik
from otklik.platform.plugins import Counter

DAY1 = datetime(2026, 3, 2, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PHASE_ONE_NOW = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)  # after conversations 1-3, before 4-5


def at(day: int, hh: int, mm: int = 0, ss: float = 0) -> datetime:
    return DAY1 + timedelta(days=day - 1, hours=hh, minutes=mm, seconds=ss)


EXPECTED = {
    "conversations": 8,
    "reopened": 2,
    "could_handoff": 8,
    "bot_handled": 5,
    "handoffs": 3,
    "handoffs_by_reason": {"asked": 1, "red_flag": 1, "retries": 1, "flow": 0, "error": 0},
    "bot_ms": [2000, 15000, 1000, 3000, 4000, 30000, 500, 1000, 1000, 2000, 1000],
    "operator_ms": [300_000, 1_200_000],
    "seen_unanswered": 3,
    "messages_in": 12,
    "messages_out": 13,
    "orders": 1,
}

ORDERS: list[tuple[datetime, int | None]] = []


async def orders(_session: Any, since: datetime, until: datetime) -> list[tuple[datetime, int | None]]:
    return [(t, c) for t, c in ORDERS if since <= t < until]


COUNTERS = (Counter("orders", orders),)


class Builder:
    def __init__(self, app: Otklik) -> None:
        self.app = app
        self.accounts: dict[str, int] = {}
        self.conversations: dict[int, int] = {}
        self.unread = 0

    async def account(self, name: str, kind: str, pack: str = "care-ru") -> int:
        async with self.app.db.write() as session:
            row = ChannelAccount(
                kind=kind, name=name, pack=pack, config={}, enabled=False, created_at=DAY1
            )  # no token: never started
            session.add(row)
            await session.flush()
            self.accounts[name] = int(row.id)
        return self.accounts[name]

    async def conversation(self, number: int, account: str) -> int:
        async with self.app.db.write() as session:
            contact = Contact(display_name=f"buyer {number}", created_at=DAY1)
            session.add(contact)
            await session.flush()
            identity = ContactIdentity(
                contact_id=contact.id, channel_account_id=self.accounts[account], external_id=f"b{number}",
                created_at=DAY1,
            )  # fmt: skip
            session.add(identity)
            await session.flush()
            conv = Conversation(
                contact_id=contact.id, identity_id=identity.id, channel_account_id=self.accounts[account],
                status="bot", state={}, created_at=DAY1, updated_at=DAY1,
            )  # fmt: skip
            session.add(conv)
            await session.flush()
            self.conversations[number] = int(conv.id)
        return self.conversations[number]

    async def buyer(self, number: int, when: datetime) -> int:
        return await self._message(number, "in", "buyer", when, None, None, "received")

    async def bot(self, number: int, when: datetime, *, after: float, read: datetime | None = None) -> int:
        return await self._message(number, "out", "bot", when, when + timedelta(seconds=after), read, "sent")

    async def read(self, number: int, message_id: int, when: datetime) -> None:
        """A read receipt arriving at `when` (as ingest records one: the message marked, an inbound event)."""
        conv = self.conversations[number]
        async with self.app.db.write() as session:
            await session.execute(Message.__table__.update().where(Message.id == message_id).values(read_at=when))
            account = await session.scalar(
                Conversation.__table__.select().with_only_columns(Conversation.channel_account_id).where(
                    Conversation.id == conv)
            )  # fmt: skip
            session.add(InboundEventRow(channel_account_id=account, external_id=f"r{message_id}",
                                        conversation_id=conv, kind="status", received_at=when))  # fmt: skip

    async def operator(self, number: int, when: datetime, login: str) -> int:
        message_id = await self._message(number, "out", "operator", when, when, None, "sent")
        await self.event(number, when, "conversation.reply", {"message_id": message_id}, actor=f"user:{login}")
        return message_id

    async def _message(
        self, number: int, direction: str, author: str, when: datetime, sent: datetime | None,
        read: datetime | None, status: str,
    ) -> int:  # fmt: skip
        conv = self.conversations[number]
        async with self.app.db.write() as session:
            row = Message(
                conversation_id=conv, direction=direction, author=author, kind="text", text="x", payload={},
                status=status, created_at=when, sent_at=sent, read_at=read,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            await session.execute(
                Conversation.__table__.update().where(Conversation.id == conv).values(last_message_at=when)
            )
            return int(row.id)

    async def event(
        self, number: int, when: datetime, kind: str, data: dict[str, Any] | None = None, *, actor: str = "bot"
    ) -> None:
        async with self.app.db.write() as session:
            await session.execute(
                insert(EventLog).values(
                    ts=when, actor=actor, kind=kind, subject_type="conversation",
                    subject_id=str(self.conversations[number]), data=data or {},
                )
            )  # fmt: skip


async def phase_one(b: Builder) -> None:
    ORDERS.clear()
    await b.account("tg", "telegram")
    await b.account("hook", "webhook")
    for number, account in ((1, "tg"), (2, "tg"), (3, "hook"), (4, "hook"), (5, "tg"), (7, "tg")):
        await b.conversation(number, account)
    # 1: bot only, source insta
    await b.buyer(1, at(1, 9))
    await b.bot(1, at(1, 9), after=2)
    await b.event(1, at(1, 9), "start", {"payload": "insta", "flow": "greeting"})
    await b.buyer(1, at(1, 9, 1))
    await b.bot(1, at(1, 9, 1), after=15, read=at(1, 9, 2))
    await b.event(1, at(1, 9, 1), "flow_end", {"flow": "greeting", "node": "bye"})
    # 2: asked for a human, answered, closed; reopened the next day with a red flag
    await b.buyer(2, at(1, 10))
    await b.bot(2, at(1, 10), after=1)
    await b.event(2, at(1, 10), "handoff", {"reason": "buyer_request", "context": {"flow": "sales", "node": "q"}})
    await b.operator(2, at(1, 10, 5), "olga")
    await b.event(2, at(1, 10, 10), "conversation.close", {"from": "operator"}, actor="user:olga")
    await b.buyer(2, at(2, 8))
    await b.bot(2, at(2, 8), after=3)
    await b.event(2, at(2, 8), "handoff", {"reason": "red_flag:threat", "context": {"flow": None}})
    await b.operator(2, at(2, 8, 20), "olga")
    # 3: retries exhausted, nobody answers, no read receipts
    await b.buyer(3, at(2, 12))
    await b.bot(3, at(2, 12), after=4)
    await b.buyer(3, at(2, 12, 1))
    await b.bot(3, at(2, 12, 1), after=30)
    await b.event(3, at(2, 12, 1), "handoff", {"reason": "retries_exhausted", "context": {"flow": "sales"}})
    await b.buyer(3, at(2, 12, 30))
    await b.event(3, at(2, 12, 30), "message_for_operator")
    # 7: read only later (phase two)
    await b.buyer(7, at(1, 15))
    b.unread = await b.bot(7, at(1, 15), after=1)


async def phase_two(b: Builder) -> None:
    # 7: the read receipt of day 1's reply arrives on day 3
    await b.read(7, b.unread, at(3, 10))
    # 4: read and answered within the window; an order
    await b.buyer(4, at(3, 15))
    await b.bot(4, at(3, 15), after=0.5, read=at(3, 15, 1))
    await b.buyer(4, at(3, 15, 30))
    await b.bot(4, at(3, 15, 30), after=1)
    ORDERS.append((at(3, 15, 31), b.conversations[4]))
    # 5: read, answered 30 h later
    await b.buyer(5, at(3, 9))
    await b.bot(5, at(3, 9), after=1, read=at(3, 9, 5))
    await b.buyer(5, at(4, 15, 5))
    await b.bot(5, at(4, 15, 5), after=2)
