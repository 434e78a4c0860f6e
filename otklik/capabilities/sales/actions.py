"""Flow actions of the sales capability.

`sales.turn` (quick: reads and short writes in our own tables, inside the step's transaction, exactly
once): the buyer's message or `sales:` button → the answer (a product list, a product, the cart, the
summary, the order, the order's status), sent as the action's messages. Args (optional): `command`
(`summary`, `cart`: do that instead of reading the message), `result_var` (default "sale": where the flow
keeps the result; "ver más" reads the previous query from it). Result: see `chat.py`.
"""

from __future__ import annotations

from typing import Any

from otklik.capabilities.sales import chat, customer
from otklik.conversations.timers import QuickContext
from otklik.platform.plugins import ActionSpec


async def sales_turn(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    inbound = ctx.last_inbound or {}
    raw = inbound.get("payload")  # the message row's payload: {"payload": "sales:add:3:1", ...}
    payload = str((raw.get("payload") if isinstance(raw, dict) else raw) or "")
    return await chat.turn(
        ctx.tx,
        ctx.state,
        conversation_id=ctx.conversation_id,
        contact_id=ctx.contact_id,
        text=str(inbound.get("text") or ""),
        payload=payload,
        variables=ctx.vars,
        now=ctx.now,
        result_var=str(args.get("result_var") or "sale"),
        command=str(args.get("command") or ""),
    )


async def sales_customer(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    """`sales.customer` {name, cuit, iva, delivery (delivery|pickup), address}: validate (CUIT check digit)
    and keep on the contact. Result {ok, errors: [field…], bad_cuit, customer?}; nothing kept on an error."""
    result = await customer.save(ctx.tx, ctx.contact_id, {k: args.get(k) for k in ("name", "cuit", "iva", "delivery",
                                                                                   "address")})  # fmt: skip
    return {**result, "bad_cuit": "cuit" in result["errors"]}


ACTIONS = (
    ActionSpec("sales.turn", sales_turn, quick=True),
    ActionSpec("sales.customer", sales_customer, quick=True),
)
