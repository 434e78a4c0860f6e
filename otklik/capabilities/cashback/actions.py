"""Flow actions of the cashback capability (the `care.cashback` flow loops over them):

- `cashback.step` {mode: enter|input, payload?}: one step of the buyer's journey (claims.Journey); sends its
  own replies (campaign texts, product buttons) and returns {wait: input|none, stage, claim, nudge: yes|no}.
- `cashback.nudge`: the 48 h reminder when a screenshot or payout details are still missing.

Actions may run again after a crash; a repeated step re-reads the claim, so at worst a reply is repeated.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, or_, update

from otklik.capabilities.cashback.claims import Journey
from otklik.capabilities.cashback.models import CashbackClaim
from otklik.capabilities.cashback.moderation import FLOW as CASHBACK_FLOW
from otklik.capabilities.cashback.rules import OPEN_STAGES, Stage
from otklik.conversations import repo
from otklik.conversations.timers import ActionContext, QuickContext
from otklik.platform.plugins import ActionSpec, Reaction


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


_CLOSE_DRAFTS = update(CashbackClaim).where(
    CashbackClaim.conversation_id == bindparam("conversation"),
    or_(*(CashbackClaim.state == bindparam(f"open_{stage}") for stage in sorted(OPEN_STAGES))),
)


async def on_drafts_closed(ctx: QuickContext, data: dict[str, Any]) -> None:
    """The buyer cancelled the cashback flow ("отмена", "передумал"): the claim it left before the screenshot
    was checked (terms, product or screenshot stage) is cancelled, so nothing stays half-done and the buyer
    may start again. A claim already in moderation, approved or paid is not a draft and stays as it is."""
    if str(data.get("flow") or "") != CASHBACK_FLOW:
        return
    await ctx.tx.execute(
        _CLOSE_DRAFTS,
        {
            "conversation": ctx.conversation_id,
            **{f"open_{stage}": str(stage) for stage in OPEN_STAGES},
            "state": str(Stage.CANCELLED),
            "updated_at": ctx.now,
        },
    )


REACTIONS = (Reaction("drafts_closed", on_drafts_closed),)
