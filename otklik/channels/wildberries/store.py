"""The buyer chat's own rows: each chat's `replySign` and product / order card (`wb_chats`), and each
account's polling state (a `settings` row `wb_chat:<account id>`: the `next` cursor, the events held back
while a file is in moderation)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import Setting, WBChat
from otklik.clock import utcnow


@dataclass(frozen=True, slots=True)
class ChatRow:
    chat_id: str
    reply_sign: str
    good_card: dict[str, Any]


def state_key(account_id: int) -> str:
    return f"wb_chat:{account_id}"


async def load_state(db: Database, account_id: int) -> dict[str, Any]:
    async with db.read() as session:
        row = await session.get(Setting, state_key(account_id))
        return dict(row.value) if row is not None else {}


async def save_state(db: Database, account_id: int, value: Mapping[str, Any]) -> None:
    async with db.write() as session:
        row = await session.get(Setting, state_key(account_id))
        if row is None:
            session.add(Setting(key=state_key(account_id), value=dict(value), updated_at=utcnow()))
        else:
            row.value, row.updated_at = dict(value), utcnow()


async def chat_row(db: Database, account_id: int, chat_id: str) -> ChatRow | None:
    async with db.read() as session:
        row = (
            await session.execute(
                select(WBChat).where(WBChat.channel_account_id == account_id, WBChat.chat_id == chat_id)
            )
        ).scalar_one_or_none()
        return ChatRow(row.chat_id, row.reply_sign, dict(row.good_card or {})) if row is not None else None


async def save_chats(
    db: Database, account_id: int, chats: Iterable[tuple[str, str | None, Mapping[str, Any] | None]]
) -> None:
    """Insert or update (chat id, reply sign or None to keep, card or None to keep) in one transaction."""
    now = utcnow()
    async with db.write() as session:
        for chat_id, sign, card in chats:
            values: dict[str, Any] = {
                "channel_account_id": account_id,
                "chat_id": chat_id[:200],
                "reply_sign": (sign or "")[:255],
                "good_card": dict(card or {}),
                "updated_at": now,
            }
            changed: dict[str, Any] = {"updated_at": now}
            if sign:
                changed["reply_sign"] = values["reply_sign"]
            if card:
                changed["good_card"] = values["good_card"]
            insert = pg_insert(WBChat) if db.dialect == "postgresql" else sqlite_insert(WBChat)
            stmt = insert.values(**values).on_conflict_do_update(
                index_elements=["channel_account_id", "chat_id"], set_=changed
            )
            await session.execute(stmt)
