"""Flow actions of the care capability, registered in the runtime's ActionRegistry:

- `wb.check_barcode` — read the barcode from the buyer's last message (label photo or digits) and look it
  up in the seller's WB cards. Result: {status, barcode, codes, product?, attempt}. See barcode_check.py.
- `care.record_incident` — create/update the case's incident: {category, outcome, product, barcode, rating,
  needs_check, case}. Idempotent per (conversation, case).

`care.record_incident` and `care.find_product` are *quick*: short statements in the step's transaction
(`QuickContext.tx`), applied exactly once. `wb.check_barcode` is slow (photo decoding, a live WB lookup) and
idempotent, as slow actions must be (a crash re-runs them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from otklik.adapters.db.models import Message
from otklik.capabilities.care.barcode_check import BuyerInput, check_barcode
from otklik.capabilities.care.catalog import product_in_text
from otklik.capabilities.care.incidents import IncidentInput, record_incident
from otklik.conversations import repo
from otklik.conversations.timers import ActionContext, QuickContext
from otklik.core.errors import InvalidInput
from otklik.platform.plugins import ActionSpec


async def _last_buyer_message(ctx: ActionContext) -> BuyerInput:
    async with ctx.runtime.db.read() as session:
        row = (
            await session.execute(
                select(Message.text, Message.payload)
                .where(Message.conversation_id == ctx.conversation_id, Message.direction == "in")
                .order_by(Message.id.desc())
                .limit(1)
            )
        ).first()
    if row is None:
        return BuyerInput()
    attachments = [a for a in (row.payload or {}).get("attachments", []) if a.get("media_id")]
    photos = tuple(str(a["media_id"]) for a in attachments if a.get("kind") == "photo")
    files = tuple(str(a["media_id"]) for a in attachments if a.get("kind") != "photo")
    return BuyerInput(text=(row.text or "")[:2000], photos=photos, files=files)


async def _conversation(ctx: ActionContext) -> tuple[int, dict[str, Any]]:
    """(channel account id, flow variables) of the action's conversation."""
    async with ctx.runtime.db.read() as session:
        conv = await repo.load_conversation(session, conversation_id=ctx.conversation_id, lock=False)
    if conv is None:
        raise InvalidInput("the conversation is gone")
    return conv.channel_account_id, dict(conv.state.get("vars", {}))


async def wb_check_barcode(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    """`wb.check_barcode` {result_var?: name of the previous result, to count attempts (default "check")}."""
    runtime = ctx.runtime
    previous = (await _conversation(ctx))[1].get(str(args.get("result_var") or "check"))
    attempt = int(previous.get("attempt", 0)) + 1 if isinstance(previous, dict) else 1
    given = await _last_buyer_message(ctx)
    result = await check_barcode(runtime, given)
    out = result.as_dict()
    out["attempt"] = attempt if result.status not in ("ours", "not_ours") else 0
    return out


def _rating(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 1 <= int(text) <= 5 else None


async def care_record_incident(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    """`care.record_incident` {case, category, outcome, product?, barcode?, rating?, needs_check?, phrase?}."""
    variables = ctx.vars
    case = str(args.get("case") or variables.get("case_id") or "").strip()[:64]
    if not case:
        raise InvalidInput("care.record_incident needs `case` (set case_id at the start of the flow)")
    details = {k: v for k, v in (("check", variables.get("check")), ("photos", variables.get("defect_photo"))) if v}
    data = IncidentInput(
        conversation_id=ctx.conversation_id,
        channel_account_id=ctx.account.id,
        case_key=case,
        category=str(args.get("category") or variables.get("category") or "other"),
        outcome=str(args["outcome"]) if args.get("outcome") else None,
        product=str(args.get("product") or ""),
        barcode=str(args.get("barcode") or ""),
        rating=_rating(args.get("rating")),
        phrase=str(args.get("phrase") or variables.get("problem_text") or ""),
        needs_check=str(args.get("needs_check") or "").lower() in ("1", "true", "yes"),
        details=details,
    )
    return {"id": await record_incident(ctx.tx, data, ctx.now)}


async def care_find_product(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    """`care.find_product` {text}: the seller's product the buyer names, by the cached WB card titles.
    Returns {found, nm_id, title}; the flow passes nm_id as `product` to `knowledge.answer`."""
    found = await product_in_text(ctx.tx, str(args.get("text") or ""))
    if found is None:
        return {"found": False}
    return {"found": True, "nm_id": found.nm_id, "title": found.title}


ACTIONS = (
    ActionSpec("wb.check_barcode", wb_check_barcode),
    ActionSpec("care.find_product", care_find_product, quick=True),
    ActionSpec("care.record_incident", care_record_incident, quick=True),
)
