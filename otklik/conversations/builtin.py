"""What the kernel itself adds to every install, declared like a capability: the actions `contact.add_tag`
and `knowledge.answer`. Capabilities declare more in their own folders (e.g. `wb.check_barcode`)."""

from __future__ import annotations

from typing import Any

from otklik.clock import utcnow
from otklik.conversations import tags
from otklik.conversations.knowledge.action import answer
from otklik.conversations.timers import ActionContext
from otklik.platform.plugins import ActionSpec


async def add_tag(ctx: ActionContext, args: dict[str, Any]) -> list[str]:
    """`contact.add_tag` {tag}: tags drive segments and the next message (idempotent)."""
    tag = str(args.get("tag") or "").strip()[:64]
    if not tag:
        raise ValueError("tag is required")
    async with ctx.runtime.db.write() as session:
        return await tags.add_tag(session, ctx.contact_id, tag, utcnow())


ACTIONS = (ActionSpec("contact.add_tag", add_tag), ActionSpec("knowledge.answer", answer))
