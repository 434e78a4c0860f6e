"""`financing.simulate` (quick): read what the buyer asked, compute with the default (or named) rates
table, answer with the simulator's figures and the suggested plans as buttons.

Args (all optional): `amount` (a template, e.g. "{{ cart_total }}"), `text` (default: the buyer's message of
this step), `table` (a table's name; default: the default table), `result_var` (where the flow saves the
result, default "financing": the amount asked before is remembered there, so "y en 10?" needs no amount).
The amount is, first found: one in the buyer's text, `amount`, the flow variables `cart_total`,
`product_price`, the previous result's amount.

Result: {ok, status, amount, installments, chosen, table, version, plan?} with `status` one of
`plans` (the suggested plans were shown), `plan` (one count computed), `chosen` (a plan button), `refused`,
`need_amount` (the buyer was asked for it), `no_rates` (no table yet), `other` (nothing about financing:
no reply, the flow decides). The reply goes out as the action's messages (`_messages`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from otklik.capabilities.financing import chat, service
from otklik.capabilities.financing.rules import Plan, Refused, simulate, suggested_plans, to_decimal
from otklik.conversations.timers import ACTION_MESSAGES, QuickContext
from otklik.platform.plugins import ActionSpec

AMOUNT_VARS = ("cart_total", "product_price")


def _amount(value: object) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = to_decimal(value if isinstance(value, int | Decimal) else str(value), "amount", "amount")
    except Refused:
        return None
    return amount if amount > 0 else None


def _brief(plan: Plan) -> dict[str, Any]:
    """What the flow keeps of a plan (no schedule: flow variables stay small)."""
    out = plan.to_json()
    return {k: out[k] for k in ("installments", "installment", "last_installment", "total", "interest", "cftea")}


async def financing_simulate(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    result_var = str(args.get("result_var") or "financing")
    previous = ctx.vars.get(result_var)
    previous = previous if isinstance(previous, dict) else {}
    inbound = ctx.last_inbound or {}
    text = str(args["text"]) if args.get("text") else str(inbound.get("text") or "")
    raw = inbound.get("payload")  # the message row's payload: {"payload": "fin:6", ...}
    payload = str((raw.get("payload") if isinstance(raw, dict) else raw) or "")
    asked = chat.read(text, payload)
    language = ctx.language or "es"
    name = str(args.get("table") or "").strip() or None
    stored = await service.load(ctx.tx.fetch, service.clean_name(name) if name else None)
    if stored is None:
        return {"ok": True, "status": "no_rates"}  # no reply: the flow answers another way (an article)
    table = stored.table
    amount = asked.amount
    for candidate in (args.get("amount"), *(ctx.vars.get(v) for v in AMOUNT_VARS), previous.get("amount")):
        if amount is None:
            amount = _amount(candidate)
    result: dict[str, Any] = {
        "ok": True, "table": stored.name, "version": stored.version,
        "amount": f"{amount:.2f}" if amount is not None else "", "installments": asked.installments,
        "chosen": previous.get("chosen"), "plan": previous.get("plan"),
    }  # fmt: skip

    def reply(status: str, message: str, buttons: list[dict[str, str]] | None = None) -> dict[str, Any]:
        result["status"] = status
        result[ACTION_MESSAGES] = [{"text": message, **({"buttons": buttons} if buttons else {})}]
        return result

    if amount is None:
        if asked.amount is None and (asked.installments or asked.on_topic or not previous):
            return reply("need_amount", chat.text("need_amount", language))
        return {**result, "status": "other"}
    count = asked.chosen or asked.installments
    if count is not None:
        try:
            plan = simulate(table, amount, count)
        except Refused as exc:
            return reply("refused", chat.refused_text(exc, table, amount, count, language))
        if asked.chosen:
            result["chosen"] = plan.installments
            result["plan"] = _brief(plan)
            return reply("chosen", chat.chosen_text(plan, language))
        result["plan"] = _brief(plan)
        return reply("plan", chat.plan_text(plan, language), [chat.choose_button(plan, language)])
    if asked.amount is None and not asked.on_topic and previous:
        return {**result, "status": "other"}  # no figure, not about financing: the flow goes elsewhere
    try:
        offered = [p for p in suggested_plans(table, amount) if isinstance(p, Plan)]
    except Refused as exc:
        return reply("refused", chat.refused_text(exc, table, amount, "", language))
    buttons = [chat.plan_button(p, language) for p in offered]
    return reply("plans", chat.plans_text(table, amount, offered, language), buttons)


ACTIONS = (ActionSpec("financing.simulate", financing_simulate, quick=True),)
