"""Flow actions of the care capability, registered in the runtime's ActionRegistry:

- `wb.check_barcode` — read the barcode from the buyer's last message (label photo or digits) and look it
  up in the seller's WB cards. Result: {status, barcode, codes, product?, attempt}. See barcode_check.py.
- `care.record_incident` — create/update the case's incident: {category, outcome, product, barcode, rating,
  needs_check, case, answered, confirm}. Idempotent per (conversation, case). `answered: true` after the bot's
  answer (the case stays unresolved until the buyer confirms); `confirm: true`, or `confirm_min: N` with a
  rating of at least N, makes an answered case "resolved by the bot" (see `IncidentInput`).

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
from otklik.capabilities.care.categories import CARE_CATEGORIES
from otklik.capabilities.care.incidents import IncidentInput, record_incident
from otklik.conversations import repo
from otklik.conversations.timers import ActionContext, QuickContext
from otklik.core.errors import InvalidInput
from otklik.platform.plugins import ActionSpec, Reaction


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
    """`wb.check_barcode` {result_var?: name of the previous result, to count attempts (default "check");
    ordered_nm?, ordered_size?: the product and size of the order the chat is about (the WB chat's card)}.

    With the order known, `order` says how the label compares with it: `same`, `other_product`,
    `other_size` (the card's size is WB's `wbSize`), or `unknown` (no card, or the barcode is not ours)."""
    runtime = ctx.runtime
    previous = (await _conversation(ctx))[1].get(str(args.get("result_var") or "check"))
    attempt = int(previous.get("attempt", 0)) + 1 if isinstance(previous, dict) else 1
    given = await _last_buyer_message(ctx)
    result = await check_barcode(runtime, given)
    out = result.as_dict()
    out["attempt"] = attempt if result.status not in ("ours", "not_ours") else 0
    out["order"] = _against_order(result.product, args)
    return out


def _against_order(product: Any, args: dict[str, Any]) -> str:
    ordered_nm = str(args.get("ordered_nm") or "").strip()
    if product is None or not ordered_nm.isdigit():
        return "unknown"
    if int(ordered_nm) != product.nm_id:
        return "other_product"
    ordered_size = str(args.get("ordered_size") or "").strip()
    sizes = {s for s in (product.wb_size, product.tech_size) if s}
    if ordered_size and ordered_size != "0" and sizes and ordered_size not in sizes:
        return "other_size"
    return "same"


def _flag(value: Any) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes")


def _rating(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 1 <= int(text) <= 5 else None


def _confirm_min(args: dict[str, Any]) -> int:
    """The lowest rating that confirms the answer helped; 6 (none does) unless the flow says `confirm_min`."""
    text = str(args.get("confirm_min") or "").strip()
    return int(text) if text.isdigit() and 1 <= int(text) <= 5 else 6


async def care_record_incident(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    """`care.record_incident` {case, category, outcome, product?, barcode?, rating?, needs_check?, phrase?,
    answered?, confirm?, confirm_min?}."""
    variables = ctx.vars
    case = str(args.get("case") or variables.get("case_id") or "").strip()[:64]
    if not case:
        raise InvalidInput("care.record_incident needs `case` (set case_id at the start of the flow)")
    details = {k: v for k, v in (("check", variables.get("check")), ("photos", variables.get("defect_photo"))) if v}
    rating = _rating(args.get("rating"))
    data = IncidentInput(
        conversation_id=ctx.conversation_id,
        channel_account_id=ctx.account.id,
        case_key=case,
        category=str(args.get("category") or variables.get("category") or "other"),
        outcome=str(args["outcome"]) if args.get("outcome") else None,
        product=str(args.get("product") or ""),
        barcode=str(args.get("barcode") or ""),
        rating=rating,
        phrase=str(args.get("phrase") or variables.get("problem_text") or ""),
        needs_check=_flag(args.get("needs_check")),
        details=details,
        answered=_flag(args.get("answered")),
        confirm=_flag(args.get("confirm")) or (rating is not None and rating >= _confirm_min(args)),
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


def _care_flow(flow: str) -> bool:
    return flow.startswith("care.") and flow != "care.cashback"  # care.cashback belongs to cashback


async def on_handoff(ctx: QuickContext, data: dict[str, Any]) -> None:
    """The kernel handed the conversation to a person. Inside a care case (a care flow with its `case_id`)
    the case becomes "handed_off"; a red flag outside any case (the very first message, another flow)
    opens an urgent side-effect case of its own, so the dashboard counts every urgent conversation."""
    reason = str(data.get("reason") or "")
    context = data.get("context")
    flow = str(context.get("flow") or "") if isinstance(context, dict) else ""
    red_flag = reason.removeprefix("red_flag:") if reason.startswith("red_flag:") else ""
    case = str(ctx.vars.get("case_id") or "").strip()[:64]
    details: dict[str, Any] = {"red_flag": red_flag, "urgent": True} if red_flag else {}
    phrase = str(ctx.vars.get("last_text") or "")
    if case and _care_flow(flow):
        category = str(ctx.vars.get("category") or "")
        incident = IncidentInput(
            conversation_id=ctx.conversation_id,
            channel_account_id=ctx.account.id,
            case_key=case,
            category=category if category in CARE_CATEGORIES else "other",
            outcome="handed_off",
            details=details,
        )
    elif red_flag:
        incident = IncidentInput(
            conversation_id=ctx.conversation_id,
            channel_account_id=ctx.account.id,
            case_key=f"urgent-{ctx.now:%Y%m%dT%H%M%S%f}",
            category="side_effect",
            outcome="handed_off",
            phrase=phrase,
            details=details,
        )
    else:
        return
    await record_incident(ctx.tx, incident, ctx.now)


REACTIONS = (Reaction("handoff", on_handoff),)
