"""`financing.simulate`: read what the buyer asked, compute with the pack's (or the named, or the install's
default) rates table, answer with the simulator's figures and the suggested plans as buttons.

Args (all optional): `amount` (a template, e.g. "{{ cart_total }}"), `text` (default: the buyer's message of
this step), `table` (a table's name; default: the table chosen for the conversation's pack, else the
install's default table), `result_var` (where the flow saves the result, default "financing": the amount
asked before is remembered there, so "y en 10?" needs no amount).
The amount is, first found: one in the buyer's text, `amount`, the flow variables `cart_total`,
`product_price`, the previous result's amount.

Result: {ok, status, amount, installments, chosen, table, version, plan?} with `status` one of
`plans` (the suggested plans were shown), `plan` (one count computed), `chosen` (a plan button), `refused`,
`need_amount` (the buyer was asked for it), `no_rates` (no table yet), `other` (nothing about financing:
no reply, the flow decides). The reply goes out as the action's messages (`_messages`).

Quick (inside the step's transaction) while no LLM is configured. With an LLM it is slow (`quick_if`): the
same computation in a short read transaction, then the LLM may phrase the reply outside any transaction,
and its text is sent only if every number in it is one the simulator produced (`phrasing.py`); `phrasing`
in the result says which text went out (`{"source": "llm"}` or `{"source": "template", "reasons": [...]}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from otklik.capabilities.financing import chat, service
from otklik.capabilities.financing.rules import Plan, Refused, simulate, suggested_plans, to_decimal
from otklik.conversations.timers import ACTION_MESSAGES, ActionContext, QuickContext
from otklik.core.figures import Figures
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


@dataclass(frozen=True, slots=True)
class Step:
    """What the action reads of its conversation: the same whether it runs quick or slow."""

    language: str
    vars: Mapping[str, Any]
    last_inbound: Mapping[str, Any] | None
    pack: str


@dataclass(slots=True)
class Outcome:
    """The action's result, and for a reply that states the simulator's figures, those figures (what an
    LLM's phrasing of it may state) and more formatted figures the phrasing may mention."""

    result: dict[str, Any]
    figures: Figures | None = None
    facts: dict[str, str] = field(default_factory=dict)


async def financing_simulate(ctx: ActionContext | QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    if isinstance(ctx, QuickContext):  # no LLM configured: as it always was, inside the step
        step = Step(ctx.language or "es", ctx.vars, ctx.last_inbound, ctx.account.pack)
        return (await run(step, args, ctx.tx.fetch)).result
    from otklik.capabilities.financing.phrasing import simulate_and_phrase

    return await simulate_and_phrase(ctx, args)


async def run(step: Step, args: dict[str, Any], fetch: service.Fetch) -> Outcome:
    """The simulation and its templated reply; `fetch` reads the rates table."""
    result_var = str(args.get("result_var") or "financing")
    previous = step.vars.get(result_var)
    previous = previous if isinstance(previous, dict) else {}
    inbound = step.last_inbound or {}
    text = str(args["text"]) if args.get("text") else str(inbound.get("text") or "")
    raw = inbound.get("payload")  # the message row's payload: {"payload": "fin:6", ...}
    payload = str((raw.get("payload") if isinstance(raw, dict) else raw) or "")
    asked = chat.read(text, payload)
    language = step.language
    name = str(args.get("table") or "").strip() or None
    stored = await service.load(fetch, service.clean_name(name) if name else None, pack=step.pack)
    if stored is None:
        return Outcome({"ok": True, "status": "no_rates"})  # no reply: the flow answers another way (an article)
    table = stored.table
    amount = asked.amount
    for candidate in (args.get("amount"), *(step.vars.get(v) for v in AMOUNT_VARS), previous.get("amount")):
        if amount is None:
            amount = _amount(candidate)
    result: dict[str, Any] = {
        "ok": True, "table": stored.name, "version": stored.version,
        "amount": f"{amount:.2f}" if amount is not None else "", "installments": asked.installments,
        "chosen": previous.get("chosen"), "plan": previous.get("plan"),
    }  # fmt: skip

    def reply(
        status: str, message: str, buttons: list[dict[str, str]] | None = None, figures: Figures | None = None,
        facts: dict[str, str] | None = None,
    ) -> Outcome:  # fmt: skip
        result["status"] = status
        result[ACTION_MESSAGES] = [{"text": message, **({"buttons": buttons} if buttons else {})}]
        return Outcome(result, figures, facts or {})

    if amount is None:
        if asked.amount is None and (asked.installments or asked.on_topic or not previous):
            return reply("need_amount", chat.text("need_amount", language))
        return Outcome({**result, "status": "other"})
    count = asked.chosen or asked.installments
    if count is not None:
        try:
            plan = simulate(table, amount, count)
        except Refused as exc:
            message = chat.refused_text(exc, table, amount, count, language)
            return reply("refused", message, figures=chat.refused_figures(exc, table, amount, count))
        facts = chat.plan_facts(plan, language)
        if asked.chosen:
            result["chosen"] = plan.installments
            result["plan"] = _brief(plan)
            return reply("chosen", chat.chosen_text(plan, language), figures=chat.plan_figures(plan), facts=facts)
        result["plan"] = _brief(plan)
        buttons = [chat.choose_button(plan, language)]
        return reply("plan", chat.plan_text(plan, language), buttons, chat.plan_figures(plan), facts)
    if asked.amount is None and not asked.on_topic and previous:
        return Outcome({**result, "status": "other"})  # no figure, not about financing: the flow goes elsewhere
    try:
        offered = [p for p in suggested_plans(table, amount) if isinstance(p, Plan)]
    except Refused as exc:
        message = chat.refused_text(exc, table, amount, "", language)
        return reply("refused", message, figures=chat.refused_figures(exc, table, amount, ""))
    buttons = [chat.plan_button(p, language) for p in offered]
    figures = chat.plans_figures(table, amount, offered)
    return reply("plans", chat.plans_text(table, amount, offered, language), buttons, figures)


def _no_llm(runtime: Any) -> bool:
    return runtime.llm is None


ACTIONS = (ActionSpec("financing.simulate", financing_simulate, quick_if=_no_llm),)
