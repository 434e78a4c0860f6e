"""Actions every install has. Capability packages register more (e.g. `wb.check_barcode`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from otklik.adapters.db.models import Contact
from otklik.runtime.timers import ActionContext, ActionRegistry


async def add_tag(ctx: ActionContext, args: dict[str, Any]) -> list[str]:
    """`contact.add_tag` {tag}: tags drive segments and the next message (idempotent)."""
    tag = str(args.get("tag") or "").strip()[:64]
    if not tag:
        raise ValueError("tag is required")
    async with ctx.runtime.db.write() as session:
        contact = (await session.execute(select(Contact).where(Contact.id == ctx.contact_id))).scalar_one()
        tags = list((contact.tags or {}).get("list", []))
        if tag not in tags:
            tags.append(tag)
        contact.tags = {"list": tags}
    return tags


def register_builtin(registry: ActionRegistry) -> None:
    from otklik.runtime.knowledge import answer

    registry.register("contact.add_tag", add_tag)
    registry.register("knowledge.answer", answer)
