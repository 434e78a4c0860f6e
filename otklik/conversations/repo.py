"""Queries of the conversation runtime, shared by ingest, dispatcher and scheduler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable, Insert, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from otklik.adapters.db.models import (
    ChannelAccount,
    Contact,
    ContactIdentity,
    Conversation,
    EventLog,
    InboundEventRow,
    Message,
    OutboxRow,
    Timer,
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


if TYPE_CHECKING:
    from otklik.conversations.timers import QuickTx


def as_tx(tx: QuickTx | AsyncSession) -> QuickTx:
    """A caller's ORM session as the statement interface quick actions use (`QuickTx`)."""
    return SessionWriter(tx) if isinstance(tx, AsyncSession) else tx


# --- writers: the statements of one ingest step, through the ORM session or on the raw driver ------------
#
# `Ingest` decides what to write; a writer writes it. `SessionWriter` runs in a caller's SQLAlchemy
# session (the timer scheduler fires timers that way); `RawWriter` runs the same writes as a few plain
# statements on the driver connection (`otklik.adapters.db.engine.raw_write`), which is the hot path of
# every inbound message. Both write the same rows with the same values.
#
# Both also run SQLAlchemy Core statements in their transaction (`fetch`, `execute`, `insert_id`: the
# `otklik.conversations.timers.QuickTx` protocol that quick flow actions get) and open savepoints around a quick
# action (`savepoint`, `release`, `rollback_to`), so that a failed action undoes its own writes only.

_SAVEPOINT = "quick_action"


class SessionWriter:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._nested: AsyncSessionTransaction | None = None

    @property
    def is_sqlite(self) -> bool:
        return bool(self.session.get_bind().dialect.name == "sqlite")

    async def fetch(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        conn = await self.session.connection()  # Core execution: no ORM bulk semantics, same transaction
        return list((await conn.execute(stmt, dict(params) if params else None)).all())

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> int:
        conn = await self.session.connection()
        return int((await conn.execute(stmt, dict(params) if params else None)).rowcount)

    async def insert_id(self, stmt: Insert, params: Mapping[str, Any] | None = None) -> int:
        if not list(stmt.exported_columns):
            stmt = stmt.returning(stmt.table.c.id)
        return int((await self.fetch(stmt, params))[0][0])

    async def savepoint(self) -> None:
        self._nested = await self.session.begin_nested()  # flushes pending ORM changes first

    async def release(self) -> None:
        assert self._nested is not None
        nested, self._nested = self._nested, None
        await nested.commit()

    async def rollback_to(self) -> None:
        assert self._nested is not None
        nested, self._nested = self._nested, None
        await nested.rollback()

    async def load_conversation(self, *, account_id: int, sender_id: str, lock: bool) -> ConversationRow | None:
        return await load_conversation(self.session, account_id=account_id, sender_id=sender_id, lock=lock)

    async def create_conversation(
        self, *, account_id: int, sender_id: str, name: str | None, language: str | None, now: datetime
    ) -> int:
        return await create_conversation(
            self.session, account_id=account_id, sender_id=sender_id, name=name, language=language, now=now
        )

    async def record_inbound(
        self, *, account_id: int, external_id: str, conversation_id: int, kind: str, now: datetime
    ) -> bool:
        return await record_inbound(
            self.session,
            account_id=account_id,
            external_id=external_id,
            conversation_id=conversation_id,
            kind=kind,
            now=now,
        )

    async def add_messages(self, rows: list[dict[str, Any]]) -> list[int]:
        return [await insert_id(self.session, Message, **row) for row in rows]

    async def add_outbox(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(OutboxRow), rows)

    async def add_timer(self, **values: Any) -> int:
        return await insert_id(self.session, Timer, **values)

    async def update_contact(self, contact_id: int, **values: Any) -> None:
        await self.session.execute(update(Contact).where(Contact.id == contact_id).values(**values))

    async def log_events(self, rows: list[dict[str, Any]]) -> None:
        await log_events(self.session, rows)

    async def set_conversation(self, conversation_id: int, values: dict[str, Any], *, unread: bool) -> None:
        if unread:
            values = {**values, "unread": Conversation.unread + 1}
        await set_conversation(self.session, conversation_id, **values)

    async def mark_message(self, conversation_id: int, external_id: str, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(Message)
            .where(Message.conversation_id == conversation_id, Message.external_id == external_id)
            .values(**values)
        )


_RAW_LOAD = (
    "SELECT c.id, c.contact_id, c.channel_account_id, i.external_id, c.status, c.state, k.display_name,"
    " k.language, k.subscribed, k.tags, k.fields FROM conversations c"
    " JOIN contact_identities i ON i.id = c.identity_id JOIN contacts k ON k.id = c.contact_id"
    " WHERE i.channel_account_id = ? AND i.external_id = ?"
)
_RAW_INBOUND = (
    "INSERT INTO inbound_events (channel_account_id, external_id, conversation_id, kind, received_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id"
)
_MESSAGE_COLUMNS = (
    "conversation_id",
    "direction",
    "author",
    "kind",
    "text",
    "payload",
    "external_id",
    "status",
    "created_at",
    "sent_at",
)
_OUTBOX_COLUMNS = (
    "conversation_id",
    "message_id",
    "channel_account_id",
    "recipient",
    "status",
    "attempts",
    "send_count",
    "due_at",
    "created_at",
    "sent_at",
)
_EVENT_LOG_COLUMNS = ("ts", "actor", "kind", "subject_type", "subject_id", "data")
_DATETIMES = frozenset(
    {
        "created_at",
        "sent_at",
        "due_at",
        "ts",
        "received_at",
        "updated_at",
        "last_message_at",
        "waiting_since",
        "last_seen_at",
        "delivered_at",
        "read_at",
        "failed_at",
    }
)
_JSONS = frozenset({"payload", "data", "state", "tags", "fields"})
_CONVERSATION_SET = frozenset(
    {"state", "flow", "node", "status", "updated_at", "last_message_at", "waiting_since", "last_text", "priority"}
)
_CONTACT_SET = frozenset({"subscribed", "reachable"})
_MESSAGE_SET = frozenset({"status", "delivered_at", "read_at", "failed_at"})


def _multi_insert(table: str, columns: tuple[str, ...], rows: int, returning: bool) -> str:
    one = "(" + ", ".join("?" * len(columns)) + ")"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}"
    return sql + " RETURNING id" if returning else sql


class RawWriter:
    """The writes of one ingest step as plain SQL on the driver connection (see `raw_write`)."""

    def __init__(self, tx: Any) -> None:
        self.tx = tx

    @property
    def is_sqlite(self) -> bool:
        return bool(self.tx.is_sqlite)

    async def fetch(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        return await self.tx.core_fetch(stmt, params)  # type: ignore[no-any-return]

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> int:
        return await self.tx.core_execute(stmt, params)  # type: ignore[no-any-return]

    async def insert_id(self, stmt: Insert, params: Mapping[str, Any] | None = None) -> int:
        return int((await self.tx.core_fetch(stmt, params, returning_id=True))[0][0])

    async def savepoint(self) -> None:
        await self.tx.execute(f"SAVEPOINT {_SAVEPOINT}")

    async def release(self) -> None:
        await self.tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    async def rollback_to(self) -> None:
        await self.tx.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        await self.tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    def _value(self, column: str, value: Any) -> Any:
        if column in _DATETIMES:
            return self.tx.dt(value)
        if column in _JSONS:
            return self.tx.js(value)
        return value

    def _row(self, columns: tuple[str, ...], row: dict[str, Any]) -> list[Any]:
        return [self._value(c, row.get(c)) for c in columns]

    async def load_conversation(self, *, account_id: int, sender_id: str, lock: bool) -> ConversationRow | None:
        sql = _RAW_LOAD if self.tx.is_sqlite or not lock else _RAW_LOAD + " FOR UPDATE OF c"
        row = await self.tx.fetchrow(sql, (account_id, sender_id))
        if row is None:
            return None
        loads = self.tx.loads
        return ConversationRow(
            int(row[0]),
            int(row[1]),
            int(row[2]),
            row[3],
            row[4],
            loads(row[5]),
            row[6],
            row[7],
            bool(row[8]),
            loads(row[9]),
            loads(row[10]),
        )

    async def create_conversation(
        self, *, account_id: int, sender_id: str, name: str | None, language: str | None, now: datetime
    ) -> int:
        dt, js = self.tx.dt, self.tx.js
        contact = await self.tx.fetchrow(
            "INSERT INTO contacts (display_name, language, subscribed, reachable, tags, fields, created_at,"
            " last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            ((name or "")[:200], language, True, True, js({}), js({}), dt(now), dt(now)),
        )
        identity = await self.tx.fetchrow(
            "INSERT INTO contact_identities (contact_id, channel_account_id, external_id, created_at)"
            " VALUES (?, ?, ?, ?) RETURNING id",
            (contact[0], account_id, sender_id, dt(now)),
        )
        conversation = await self.tx.fetchrow(
            "INSERT INTO conversations (contact_id, identity_id, channel_account_id, status, priority, state,"
            " unread, last_text, created_at, updated_at, last_message_at)"
            " VALUES (?, ?, ?, 'bot', ?, ?, 0, '', ?, ?, ?) RETURNING id",
            (contact[0], identity[0], account_id, False, js({}), dt(now), dt(now), dt(now)),
        )
        return int(conversation[0])

    async def record_inbound(
        self, *, account_id: int, external_id: str, conversation_id: int, kind: str, now: datetime
    ) -> bool:
        row = await self.tx.fetchrow(_RAW_INBOUND, (account_id, external_id, conversation_id, kind, self.tx.dt(now)))
        return row is not None

    async def add_messages(self, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        args = [v for row in rows for v in self._row(_MESSAGE_COLUMNS, row)]
        ids = await self.tx.fetch(_multi_insert("messages", _MESSAGE_COLUMNS, len(rows), True), args)
        # one statement assigns increasing ids in VALUES order; RETURNING's own order is not promised
        return sorted(int(r[0]) for r in ids)

    async def add_outbox(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            args = [v for row in rows for v in self._row(_OUTBOX_COLUMNS, row)]
            await self.tx.execute(_multi_insert("outbox", _OUTBOX_COLUMNS, len(rows), False), args)

    async def add_timer(self, **values: Any) -> int:
        columns = ("conversation_id", "kind", "token", "payload", "status", "due_at", "attempts", "created_at")
        row = await self.tx.fetchrow(_multi_insert("timers", columns, 1, True), self._row(columns, values))
        return int(row[0])

    async def update_contact(self, contact_id: int, **values: Any) -> None:
        assert set(values) <= _CONTACT_SET
        sets = ", ".join(f"{k} = ?" for k in values)
        await self.tx.execute(f"UPDATE contacts SET {sets} WHERE id = ?", [*values.values(), contact_id])

    async def log_events(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            args = [v for row in rows for v in self._row(_EVENT_LOG_COLUMNS, row)]
            await self.tx.execute(_multi_insert("event_log", _EVENT_LOG_COLUMNS, len(rows), False), args)

    async def set_conversation(self, conversation_id: int, values: dict[str, Any], *, unread: bool) -> None:
        assert set(values) <= _CONVERSATION_SET
        sets = ", ".join(f"{k} = ?" for k in values)
        if unread:
            sets += ", unread = unread + 1"
        args = [self._value(k, v) for k, v in values.items()]
        await self.tx.execute(f"UPDATE conversations SET {sets} WHERE id = ?", [*args, conversation_id])

    async def mark_message(self, conversation_id: int, external_id: str, values: dict[str, Any]) -> None:
        assert set(values) <= _MESSAGE_SET
        sets = ", ".join(f"{k} = ?" for k in values)
        args = [self._value(k, v) for k, v in values.items()]
        await self.tx.execute(
            f"UPDATE messages SET {sets} WHERE conversation_id = ? AND external_id = ?",
            [*args, conversation_id, external_id],
        )
