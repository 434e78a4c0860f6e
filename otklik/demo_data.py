"""Demo data for a newcomer: on the server's first start on an empty demo install, a demo Wildberries account
and a few demo buyers with a closed conversation each; then each capability's demo seeder (`Capability.demo`:
care's reviews and incidents, cashback's campaign and claims …) adds its rows on them, so each admin page
shows what it is for before a WB key is connected.

Every demo row's id is recorded in the `demo_data` setting; `remove_demo_data` (owner only, one click
in the admin) deletes exactly those rows (and what hangs off them, e.g. messages of a demo conversation)
and nothing else: the capabilities' `demo_tables` (children first) before the platform's. The setting stays
(`removed_at`), so demo data is never seeded again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import column, delete, func, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount, Contact, ContactIdentity, Conversation, Message, Setting
from otklik.clock import utcnow
from otklik.conversations.statuses import MessageStatus
from otklik.core.conversation import Status
from otklik.core.errors import NotFound
from otklik.platform.audit import audit
from otklik.platform.demo import DemoConversation, DemoSeed
from otklik.platform.plugins import Capability, resolve

DEMO_KEY = "demo_data"
DEMO_ACCOUNT = "demo-wildberries"
#: The platform's demo tables, children before parents; removed after the capabilities' `demo_tables`.
TABLES: tuple[str, ...] = ("messages", "conversations", "contact_identities", "contacts", "channel_accounts")

_BUYERS: tuple[tuple[str, str], ...] = (
    # name, the buyer's first words
    ("Демо: Анна", "мне прислали не тот товар"),
    ("Демо: Игорь", "у куртки сломана молния"),
    ("Демо: Мария", "как вернуть деньги за заказ"),
    ("Демо: Олег", "заказ не пришёл, хотя срок прошёл"),
)


def removal_order(capabilities: Sequence[Capability]) -> tuple[str, ...]:
    """Every demo table, in deletion order: the capabilities' own (the last plugged in first, each
    children first), then the platform's."""
    return (*(t for c in reversed(capabilities) for t in c.demo_tables), *TABLES)


async def demo_state(db: Database) -> dict[str, Any] | None:
    async with db.read() as session:
        row = await session.get(Setting, DEMO_KEY)
        return dict(row.value) if row else None


async def has_demo_data(db: Database) -> bool:
    state = await demo_state(db)
    return bool(state and not state.get("removed_at") and any(state.get("rows", {}).values()))


async def _has_real_data(session: AsyncSession, capabilities: Sequence[Capability]) -> bool:
    """Rows in any capability's demo tables mean the install is in use."""
    for name in (t for c in capabilities for t in c.demo_tables):
        if await session.scalar(select(func.count()).select_from(table(name))):
            return True
    return False


async def seed_demo_data(
    db: Database, vault: Vault, *, pack: str, chat_account_id: int, capabilities: Sequence[Capability]
) -> dict[str, list[int]] | None:
    """Seed once per install (first start, empty install); the ids go to the `demo_data` setting.

    Returns the ids per table, or None when nothing was seeded (seeded before, or real data exists)."""
    now = utcnow()
    async with db.write() as session:
        if await session.get(Setting, DEMO_KEY, with_for_update=True) is not None:
            return None
        if await _has_real_data(session, capabilities):  # an install in use: never mix demo rows into real ones
            session.add(Setting(key=DEMO_KEY, value={"skipped": "the install has data"}, updated_at=now))
            return None
        order = removal_order(capabilities)
        rows: dict[str, list[Any]] = {name: [] for name in order}

        def record(name: str, row: Any) -> None:
            if name not in rows:
                raise ValueError(f"demo rows of {name!r}: not a declared demo table")
            rows[name].append(row)

        def add(name: str, row: Any) -> Any:
            session.add(row)
            record(name, row)
            return row

        wb = add(
            "channel_accounts",
            ChannelAccount(
                kind="wildberries", name=DEMO_ACCOUNT, pack=pack, config={"demo": True}, enabled=True, created_at=now
            ),
        )
        conversations: list[DemoConversation] = []
        for n, (buyer, phrase) in enumerate(_BUYERS):
            when = now - timedelta(days=n + 1)
            contact = add("contacts", Contact(display_name=buyer, language="ru", created_at=when, last_seen_at=when))
            await session.flush()
            identity = add(
                "contact_identities",
                ContactIdentity(
                    contact_id=contact.id,
                    channel_account_id=chat_account_id,
                    external_id=f"demo-{uuid.uuid4().hex}",
                    created_at=when,
                ),
            )
            await session.flush()
            conversation = add(
                "conversations",
                Conversation(
                    contact_id=contact.id,
                    identity_id=identity.id,
                    channel_account_id=chat_account_id,
                    status=Status.CLOSED,
                    last_message_at=when,
                    last_text=phrase[:200],
                    closed_at=when,
                    created_at=when,
                    updated_at=when,
                ),
            )
            await session.flush()
            conversations.append(DemoConversation(int(conversation.id), int(contact.id), phrase, when))
            for direction, author, text in (
                ("in", "buyer", phrase),
                ("out", "bot", "Это демо-диалог: так выглядит переписка покупателя с ботом."),
            ):
                add(
                    "messages",
                    Message(
                        conversation_id=conversation.id,
                        direction=direction,
                        author=author,
                        kind="text",
                        text=text,
                        status=MessageStatus.RECEIVED if direction == "in" else MessageStatus.DELIVERED,
                        created_at=when,
                    ),
                )
        await session.flush()
        demo = DemoSeed(session, now, vault, int(wb.id), chat_account_id, tuple(conversations), record)
        for capability in capabilities:
            if capability.demo:
                await resolve(capability.demo)(session, demo)
        await session.flush()
        ids = {name: [int(row.id) for row in items] for name, items in rows.items()}
        session.add(Setting(key=DEMO_KEY, value={"seeded_at": now.isoformat(), "rows": ids}, updated_at=now))
        audit(session, "demo", "demo.seed", "setting", DEMO_KEY, {t: len(v) for t, v in ids.items()})
        return ids


async def remove_demo_data(db: Database, actor: str, capabilities: Sequence[Capability]) -> dict[str, int]:
    """Delete exactly the recorded demo rows (children first); audited. Returns rows deleted per table."""
    now = utcnow()
    async with db.write() as session:
        row = await session.get(Setting, DEMO_KEY, with_for_update=True)
        if row is None or row.value.get("removed_at") or not any((row.value.get("rows") or {}).values()):
            raise NotFound("there is no demo data to remove")
        recorded: dict[str, list[int]] = dict(row.value.get("rows") or {})
        deleted: dict[str, int] = {}
        for name in removal_order(capabilities):
            ids = [int(i) for i in recorded.get(name, [])]
            if ids:
                rows = table(name, column("id"))
                result = await session.execute(delete(rows).where(rows.c.id.in_(ids)))
                deleted[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        row.value = {**row.value, "rows": {}, "removed_at": now.isoformat(), "removed_by": actor[:120]}
        row.updated_at = now
        audit(session, actor, "demo.remove", "setting", DEMO_KEY, {"deleted": deleted})
        return deleted
