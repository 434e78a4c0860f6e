"""Actions every install has. Capability packages register more (e.g. `wb.check_barcode`)."""

from __future__ import annotations

from typing import Any

from otklik.clock import utcnow
from otklik.conversations import tags
from otklik.conversations.timers import ActionContext, ActionRegistry


async def add_tag(ctx: ActionContext, args: dict[str, Any]) -> list[str]:
    """`contact.add_tag` {tag}: tags drive segments and the next message (idempotent)."""
    tag = str(args.get("tag") or "").strip()[:64]
    if not tag:
        raise ValueError("tag is required")
    async with ctx.runtime.db.write() as session:
        return await tags.add_tag(session, ctx.contact_id, tag, utcnow())


def register_builtin(registry: ActionRegistry) -> None:
    from otklik.capabilities.care.actions import register as register_care
    from otklik.capabilities.cashback.actions import register as register_cashback
    from otklik.conversations.knowledge.action import answer

    registry.register("contact.add_tag", add_tag)
    registry.register("knowledge.answer", answer)
    register_care(registry)
    register_cashback(registry)
