"""Campaign funnel: entered, screenshot sent, auto-approved, moderated, rejected by reason, paid, total
paid, median time from screenshot to payout."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from sqlalchemy import select

from otklik.adapters.db.engine import Database
from otklik.capabilities.cashback.models import CashbackClaim
from otklik.capabilities.cashback.rules import Stage


@dataclass(frozen=True, slots=True)
class Funnel:
    entered: int = 0
    consented: int = 0
    screenshot_sent: int = 0
    auto_approved: int = 0
    moderated: int = 0
    approved: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    paid: int = 0
    paid_kopecks: int = 0
    median_hours_to_payout: float | None = None
    fraud_flags: int = 0


async def funnel(db: Database, campaign_id: int) -> Funnel:
    async with db.read() as session:
        rows = (
            await session.execute(
                select(
                    CashbackClaim.state,
                    CashbackClaim.consent_at,
                    CashbackClaim.screenshot_at,
                    CashbackClaim.moderation_at,
                    CashbackClaim.decided_by,
                    CashbackClaim.reject_reason,
                    CashbackClaim.paid_at,
                    CashbackClaim.amount_kopecks,
                    CashbackClaim.fraud_flag,
                ).where(CashbackClaim.campaign_id == campaign_id)
            )
        ).all()
    reasons: dict[str, int] = {}
    hours = []
    for r in rows:
        if r.state == Stage.REJECTED:
            reasons[r.reject_reason or "other"] = reasons.get(r.reject_reason or "other", 0) + 1
        if r.paid_at and r.screenshot_at:
            hours.append((r.paid_at - r.screenshot_at).total_seconds() / 3600)
    decided = [r for r in rows if r.state in (Stage.APPROVED, Stage.PAID)]
    paid = [r for r in rows if r.state == Stage.PAID]
    return Funnel(
        entered=len(rows),
        consented=sum(1 for r in rows if r.consent_at),
        screenshot_sent=sum(1 for r in rows if r.screenshot_at),
        auto_approved=sum(1 for r in decided if r.decided_by == "bot"),
        moderated=sum(1 for r in rows if r.moderation_at),
        approved=len(decided),
        rejected=sum(reasons.values()),
        rejected_by_reason=dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        paid=len(paid),
        paid_kopecks=sum(int(r.amount_kopecks) for r in paid),
        median_hours_to_payout=round(median(hours), 1) if hours else None,
        fraud_flags=sum(1 for r in rows if r.fraud_flag),
    )
