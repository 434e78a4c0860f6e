"""What the kernel itself adds to every install, declared like a capability: the actions `contact.add_tag`,
`survey.answer` (docs/outreach.md) and `knowledge.answer`. Capabilities declare more in their own folders (e.g. `wb.check_barcode`)."""

from __future__ import annotations

from typing import Any

from otklik.conversations import surveys, tags
from otklik.conversations.knowledge.action import answer
from otklik.conversations.timers import QuickContext
from otklik.platform.plugins import ActionSpec


async def add_tag(ctx: QuickContext, args: dict[str, Any]) -> list[str]:
    """`contact.add_tag` {tag}: tags drive segments and the next message (idempotent). Quick: one read and
    at most three writes in the step's transaction."""
    tag = str(args.get("tag") or "").strip()[:64]
    if not tag:
        raise ValueError("tag is required")
    return await tags.add_tag(ctx.tx, ctx.contact_id, tag, ctx.now)


ACTIONS = (
    ActionSpec("contact.add_tag", add_tag, quick=True),
    ActionSpec("survey.answer", surveys.answer, quick=True),
    ActionSpec("knowledge.answer", answer, quick_if=lambda runtime: runtime.llm is None),
)
