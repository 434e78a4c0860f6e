"""Helpers of the inbox tests: buyers writing through real ingest, a remote channel with a recording sender."""

from __future__ import annotations

import itertools
import re
from typing import Any

from sqlalchemy import func, select

from otklik.bootstrap import Otklik
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.channel_accounts import add_account, new_secret
from otklik.testing.recording import RecordingSender

ASK_OPERATOR = "позовите оператора"
_ids = itertools.count(1)


def webchat_id(app: Otklik) -> int:
    return next(a.id for a in app.ctx.accounts.values() if a.kind == "webchat")


async def say(
    app: Otklik, buyer: str, text: str, *, account: int | None = None, name: str | None = None, **kw: Any
) -> int:
    """The buyer `buyer` writes `text`; returns the conversation id."""
    event = InboundEvent(
        account or webchat_id(app), f"ev-{next(_ids)}", buyer, EventKind.TEXT, text=text, sender_name=name, **kw
    )
    result = await app.ingest(event)
    assert result.conversation_id is not None
    return result.conversation_id


async def press(app: Otklik, buyer: str, payload: str, *, account: int | None = None) -> int:
    event = InboundEvent(account or webchat_id(app), f"ev-{next(_ids)}", buyer, EventKind.BUTTON, payload=payload)
    result = await app.ingest(event)
    assert result.conversation_id is not None
    return result.conversation_id


async def waiting(app: Otklik, buyer: str, *, account: int | None = None, name: str | None = None) -> int:
    """A conversation that asked for a person (care-ru's operator words)."""
    return await say(app, buyer, ASK_OPERATOR, account=account, name=name)


async def remote_channel(app: Otklik, name: str = "crm") -> tuple[int, RecordingSender]:
    """An API webhook channel account whose sends are recorded instead of posted."""
    account = await add_account(
        app.db, app.vault, kind="webhook", name=name, pack="care-ru", secret=new_secret(), config={"url": "http://x"}
    )
    await app.reload()
    sender = RecordingSender()
    old = app.ctx.senders.get(account)
    if old is not None:
        await old.aclose()
    app.ctx.senders[account] = sender
    return account, sender


async def drain(app: Otklik, rounds: int = 50) -> None:
    for _ in range(rounds):
        if not await app.dispatcher.run_once():
            return


async def count(app: Otklik, model: type, *where: object) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def row_ids(html: str) -> list[int]:
    """Conversation ids of the list rows, in page order."""
    return [int(x) for x in re.findall(r'class="conv-row[^"]*" data-id="(\d+)"', html)]
