"""Cashback's demo rows (`Capability.demo`): a paused campaign and a claim in several states (one paid) on the
demo conversations, so the campaigns, claims and payouts pages show what they are for."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.capabilities.cashback.payouts import seal
from otklik.capabilities.cashback.rules import PayoutDetails, Stage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from otklik.platform.demo import DemoSeed


async def seed(session: AsyncSession, demo: DemoSeed) -> None:
    now = demo.now
    campaign = demo.add(
        "cashback_campaigns",
        CashbackCampaign(
            name="Демо: кешбэк 150 ₽ за отзыв",
            status="paused",  # never offered to a real buyer
            all_products=False,
            products={"items": [{"nm_id": 100_001, "name": "Платье демо"}]},
            reward_kopecks=15_000,
            condition="photo",
            budget_kopecks=1_500_000,
            max_claims=100,
            starts_at=now - timedelta(days=7),
            created_by="demo",
            created_at=now - timedelta(days=7),
            updated_at=now,
        ),
    )
    await session.flush()
    card = PayoutDetails("sbp", phone="+79990000000", bank="Демо-банк")
    states = (Stage.MODERATION, Stage.APPROVED, Stage.REJECTED, Stage.PAID)
    for n, (conversation, state) in enumerate(zip(demo.conversations, states, strict=False)):
        when = conversation.at
        decided = state in (Stage.APPROVED, Stage.REJECTED, Stage.PAID)
        rewarded = state in (Stage.APPROVED, Stage.PAID)
        demo.add(
            "cashback_claims",
            CashbackClaim(
                campaign_id=campaign.id,
                contact_id=conversation.contact_id,
                conversation_id=conversation.id,
                channel_account_id=demo.chat_account_id,
                state=str(state),
                nm_id=100_001,
                product_name="Платье демо",
                amount_kopecks=15_000,
                checks={
                    "items": [
                        {"name": "image", "result": "pass", "detail": "PNG 1080×2340 (demo)"},
                        {"name": "duplicate", "result": "pass", "detail": "no earlier screenshot is similar"},
                        {
                            "name": "wb_match",
                            "result": "pass" if rewarded else "warn",
                            "detail": "demo review" if rewarded else "no certain match (demo)",
                        },
                    ]
                },
                reasons={"items": ["needs_review"]} if state == Stage.MODERATION else {},
                wb_feedback_id=f"demo-{n + 1}" if rewarded else None,
                rewarded_feedback_id=f"demo-{n + 1}" if rewarded else None,
                reject_reason="condition" if state == Stage.REJECTED else None,
                reject_text="В отзыве нет фото (демо)." if state == Stage.REJECTED else "",
                payout_method="sbp" if rewarded else None,
                payout_secret=seal(demo.vault, card) if rewarded else None,
                payout_masked=card.masked() if rewarded else "",
                decided_by="demo" if decided else "",
                paid_by="demo" if state == Stage.PAID else "",
                consent_at=when,
                screenshot_at=when,
                moderation_at=when,
                decided_at=when if decided else None,
                paid_at=when if state == Stage.PAID else None,
                created_at=when,
                updated_at=when,
            ),
        )
