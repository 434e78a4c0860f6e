"""`example.note` {text}: store a note of the conversation; the flow gets the number of its notes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select

from otklik.clock import utcnow
from otklik.conversations.timers import ActionContext, QuickContext
from otklik.platform.plugins import ActionSpec, Reaction
from tests.capabilities.example.models import notes


async def note(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    text = str(args.get("text") or "").strip()[:200]
    if not text:
        raise ValueError("text is required")
    async with ctx.runtime.db.write() as session:
        await session.execute(
            insert(notes).values(conversation_id=ctx.conversation_id, text=text, digested=0, created_at=utcnow())
        )
        count = await session.scalar(
            select(func.count()).select_from(notes).where(notes.c.conversation_id == ctx.conversation_id)
        )
    return {"count": int(count or 0)}


ACTIONS = (ActionSpec("example.note", note),)


_NOTE = insert(notes)


async def on_handoff(ctx: QuickContext, data: dict[str, Any]) -> None:
    """A reaction: when the kernel hands the conversation over, note why, in the same transaction."""
    await ctx.tx.execute(
        _NOTE,
        {
            "conversation_id": ctx.conversation_id,
            "text": f"handoff: {data['reason']}",
            "digested": 0,
            "created_at": ctx.now,
        },
    )


REACTIONS = (Reaction("handoff", on_handoff),)
