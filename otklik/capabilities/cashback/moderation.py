"""A moderator's decisions on claims: approve (single or bulk), reject with a reason template, ask for a
better screenshot. Each is audited in the same transaction and the buyer is told."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import Conversation
from otklik.capabilities.cashback import campaigns as camp
from otklik.capabilities.cashback import texts
from otklik.capabilities.cashback.claims import _values
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.capabilities.cashback.notify import Outgoing
from otklik.capabilities.cashback.rules import RejectReason, Stage, rubles
from otklik.conversations.context import RuntimeContext
from otklik.core.conversation import ConversationState, Status, is_idle, park
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.core.messages import Button
from otklik.platform.audit import audit

FLOW = "care.cashback"
#: The flow's question that loops every buyer message back into `cashback.step` (packs/care-ru/flows/cashback.yaml).
WAIT_NODE = "wait"
MAX_BULK = 200
MAX_NOTE = 500


@dataclass(slots=True)
class Decisions:
    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # claim id -> why


async def _load(session: AsyncSession, claim_id: int) -> tuple[CashbackClaim, CashbackCampaign]:
    row = (
        await session.execute(
            select(CashbackClaim, CashbackCampaign)
            .join(CashbackCampaign, CashbackCampaign.id == CashbackClaim.campaign_id)
            .where(CashbackClaim.id == claim_id)
        )
    ).first()
    if row is None:
        raise NotFound("no such claim")
    return row[0], row[1]


async def approve(ctx: RuntimeContext, claim_ids: Sequence[int], *, actor: str, now: datetime) -> Decisions:
    """Claims in moderation -> approved. Refused: another state, the budget or count cap reached, or the
    matched WB review already rewarded by another claim."""
    ids = sorted({int(i) for i in claim_ids})
    if not ids or len(ids) > MAX_BULK:
        raise InvalidInput(f"choose 1 to {MAX_BULK} claims")
    result, outgoing = Decisions(), Outgoing(ctx)
    async with ctx.db.write() as session:
        for claim_id in ids:
            try:
                claim, campaign = await _load(session, claim_id)
            except NotFound:
                result.refused[claim_id] = "not_found"
                continue
            why = await _cannot_approve(session, claim, campaign)
            if why:
                result.refused[claim_id] = why
                continue
            claim.state, claim.decided_at, claim.decided_by, claim.updated_at = Stage.APPROVED, now, actor[:120], now
            claim.rewarded_feedback_id = claim.wb_feedback_id
            await session.flush()
            audit(session, actor, "claim.approve", "claim", claim.id, {"amount_kopecks": claim.amount_kopecks}, now=now)
            text = texts.text("notify_approved", campaign.texts, **_values(claim, campaign))
            await outgoing.send(session, claim.conversation_id, text, now=now)
            result.done.append(claim_id)
    outgoing.delivered()
    return result


async def _cannot_approve(session: AsyncSession, claim: CashbackClaim, campaign: CashbackCampaign) -> str | None:
    if claim.state != Stage.MODERATION:
        return f"state_{claim.state}"
    if (await camp.usage(session, campaign.id)).exhausted(campaign):
        return "budget_exhausted"
    if claim.wb_feedback_id:
        taken = await session.scalar(
            select(CashbackClaim.id).where(
                CashbackClaim.rewarded_feedback_id == claim.wb_feedback_id, CashbackClaim.id != claim.id
            )
        )
        if taken is not None:
            return "already_rewarded"
    return None


async def reject(ctx: RuntimeContext, claim_id: int, reason: str, note: str = "", *, actor: str, now: datetime) -> None:
    """Reject with a reason template (the buyer gets its text, or the moderator's note); payout details,
    no longer needed, are erased at once."""
    if reason not in set(RejectReason):
        raise InvalidInput("reason: choose a reason template")
    note = " ".join((note or "").split())[:MAX_NOTE]
    outgoing = Outgoing(ctx)
    async with ctx.db.write() as session:
        claim, campaign = await _load(session, claim_id)
        if claim.state not in (Stage.MODERATION, Stage.APPROVED, Stage.SCREENSHOT):
            raise Conflict(f"claim #{claim_id} is {claim.state}; it cannot be rejected now")
        reason_text = note or texts.text(f"reason_{reason}", campaign.texts)
        claim.state, claim.reject_reason, claim.reject_text = Stage.REJECTED, reason, reason_text
        claim.decided_at, claim.decided_by, claim.updated_at = now, actor[:120], now
        claim.rewarded_feedback_id = None
        if claim.payout_secret:
            claim.payout_secret, claim.payout_masked, claim.erased_at = None, "удалены", now
        audit(session, actor, "claim.reject", "claim", claim.id, {"reason": reason, "note": bool(note)}, now=now)
        text = texts.text("notify_rejected", campaign.texts, **{**_values(claim, campaign), "reason": reason_text})
        await outgoing.send(session, claim.conversation_id, text, now=now)
    outgoing.delivered()


async def ask_screenshot(ctx: RuntimeContext, claim_id: int, note: str = "", *, actor: str, now: datetime) -> None:
    """Back to the screenshot stage; the buyer is asked for a better one and can simply send it."""
    note = " ".join((note or "").split())[:MAX_NOTE]
    outgoing = Outgoing(ctx)
    async with ctx.db.write() as session:
        claim, campaign = await _load(session, claim_id)
        if claim.state != Stage.MODERATION:
            raise Conflict(f"claim #{claim_id} is {claim.state}; only claims in moderation can be sent back")
        claim.state, claim.updated_at = Stage.SCREENSHOT, now
        claim.nudges = {k: v for k, v in (claim.nudges or {}).items() if k != "screenshot"}
        audit(session, actor, "claim.ask_screenshot", "claim", claim.id, {"note": bool(note)}, now=now)
        text = texts.text("notify_better_screenshot", campaign.texts, **{**_values(claim, campaign), "note": note})
        button = Button(texts.BUTTONS["status"], f"flow:{FLOW}")
        await outgoing.send(session, claim.conversation_id, text, now=now, buttons=(button,))
        await _park(session, claim)
    outgoing.delivered()


async def _park(session: AsyncSession, claim: CashbackClaim) -> None:
    """If the conversation is idle with the bot, put it on the cashback flow's wait, so that the buyer's
    next photo goes straight to the claim (otherwise the button brings them back)."""
    conv = await session.get(Conversation, claim.conversation_id)
    if conv is None or conv.status != Status.BOT:
        return
    state = ConversationState.from_dict(conv.state)
    if not is_idle(state):
        return
    cb = {"wait": "input", "stage": "screenshot", "claim": claim.id, "nudge": "no"}  # what `cashback.step` returns
    parked = park(state, FLOW, WAIT_NODE, cb=cb)
    conv.state, conv.flow, conv.node = parked.to_dict(), parked.flow, parked.node


def money(kopecks: int | None) -> str:
    return rubles(kopecks)


def summary(claim: CashbackClaim) -> dict[str, Any]:
    """What the queue shows of a claim (never the payout details)."""
    return {
        "id": claim.id,
        "state": claim.state,
        "product": claim.product_name,
        "amount": rubles(claim.amount_kopecks),
        "fraud": claim.fraud_flag,
        "reasons": list((claim.reasons or {}).get("items", [])),
        "payout": claim.payout_masked,
    }
