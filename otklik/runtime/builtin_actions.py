"""Actions every install has. Capability packages register more (e.g. `wb.check_barcode`)."""

from __future__ import annotations

from typing import Any

from otklik.runtime import tags
from otklik.runtime.timers import ActionRegistry, QuickContext


async def add_tag(ctx: QuickContext, args: dict[str, Any]) -> list[str]:
    """`contact.add_tag` {tag}: tags drive segments and the next message (idempotent). Quick: one read and
    at most three writes in the step's transaction."""
    tag = str(args.get("tag") or "").strip()[:64]
    if not tag:
        raise ValueError("tag is required")
    return await tags.add_tag(ctx.tx, ctx.contact_id, tag, ctx.now)


def register_builtin(registry: ActionRegistry) -> None:
    from otklik.care.actions import register as register_care
    from otklik.cashback.actions import register as register_cashback
    from otklik.runtime.knowledge import answer

    registry.register("contact.add_tag", add_tag, quick=True)
    registry.register("knowledge.answer", answer, quick_if=lambda runtime: runtime.llm is None)
    register_care(registry)
    register_cashback(registry)
