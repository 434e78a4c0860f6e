"""Flow actions of the cashback capability (the `care.cashback` flow loops over them):

- `cashback.step` {mode: enter|input, payload?}: one step of the buyer's journey (claims.Journey); sends its
  own replies (campaign texts, product buttons) and returns {wait: input|none, stage, claim, nudge: yes|no}.
- `cashback.nudge`: the 48 h reminder when a screenshot or payout details are still missing.

Actions may run again after a crash; a repeated step re-reads the claim, so at worst a reply is repeated.
"""

from __future__ import annotations

from typing import Any

from otklik.capabilities.cashback.claims import Journey
from otklik.conversations import repo
from otklik.conversations.timers import ActionContext
from otklik.platform.plugins import ActionSpec


async def _previous(ctx: ActionContext) -> dict[str, Any]:
    async with ctx.runtime.db.read() as session:
        conv = await repo.load_conversation(session, conversation_id=ctx.conversation_id, lock=False)
    previous = (conv.state.get("vars", {}) if conv else {}).get("cb")
    return previous if isinstance(previous, dict) else {}


async def step(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    mode = "enter" if str(args.get("mode") or "") == "enter" else "input"
    journey = Journey(ctx.runtime, ctx.conversation_id)
    result = await journey.step(mode=mode, payload=str(args.get("payload") or "")[:64], previous=await _previous(ctx))
    return result.as_dict()


async def nudge(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    journey = Journey(ctx.runtime, ctx.conversation_id)
    result = await journey.step(mode="nudge", previous=await _previous(ctx))
    return result.as_dict()


ACTIONS = (ActionSpec("cashback.step", step), ActionSpec("cashback.nudge", nudge))
