"""Cashback's tables, on the shared `Base` (their migration is the shared history: 0006_cashback)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.adapters.db.models import Base, BigId


class CashbackCampaign(Base):
    """A cashback-for-review campaign (otklik.capabilities.cashback.campaigns). Money is kept in kopecks."""

    __tablename__ = "cashback_campaigns"
    __table_args__ = (Index("ix_cashback_campaigns_window", "status", "starts_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | active | paused | ended
    all_products: Mapped[bool] = mapped_column(Boolean, default=False)
    products: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"items": [{"nm_id": 1, "name": "…"}]}
    reward_kopecks: Mapped[int] = mapped_column(BigInteger)
    condition: Mapped[str] = mapped_column(String(16), default="any")  # any | photo | rating
    min_rating: Mapped[int] = mapped_column(Integer, default=1)
    one_per_buyer: Mapped[bool] = mapped_column(Boolean, default=True)  # one reward per buyer per product
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=True)  # only when the WB match is certain
    budget_kopecks: Mapped[int | None] = mapped_column(BigInteger)
    max_claims: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    erase_after_days: Mapped[int] = mapped_column(Integer, default=30)
    texts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # stage -> text overriding the default
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CashbackClaim(Base):
    """One buyer's claim in a campaign: its stage, every check with its result, the decision and the payout.

    Payout details are Fernet-encrypted (`payout_secret`); `payout_masked` is what people see. A WB review
    can be rewarded once only: `rewarded_feedback_id` is unique and set only when the claim is approved."""

    __tablename__ = "cashback_claims"
    __table_args__ = (
        UniqueConstraint("rewarded_feedback_id"),
        Index("ix_cashback_claims_state", "state", "updated_at"),
        Index("ix_cashback_claims_campaign", "campaign_id", "state"),
        Index("ix_cashback_claims_contact", "contact_id", "campaign_id"),
        Index("ix_cashback_claims_conversation", "conversation_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("cashback_campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    # terms | product | screenshot | moderation | approved | rejected | paid | cancelled
    state: Mapped[str] = mapped_column(String(16))
    nm_id: Mapped[int | None] = mapped_column(BigInteger)
    product_name: Mapped[str] = mapped_column(String(300), default="")
    amount_kopecks: Mapped[int] = mapped_column(BigInteger, default=0)
    screenshot_media_id: Mapped[str | None] = mapped_column(String(64))
    screenshot_hash: Mapped[str | None] = mapped_column(String(64))  # perceptual hash, hex
    checks: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"items": [{name, result, detail}], ...}
    reasons: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"items": [why it went to moderation]}
    matched: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the matched WB review (no buyer data)
    wb_feedback_id: Mapped[str | None] = mapped_column(String(64))
    rewarded_feedback_id: Mapped[str | None] = mapped_column(String(64))
    fraud_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    reject_text: Mapped[str] = mapped_column(Text, default="")
    payout_method: Mapped[str | None] = mapped_column(String(8))  # sbp | card
    payout_secret: Mapped[str | None] = mapped_column(Text)  # Fernet-encrypted JSON
    payout_masked: Mapped[str] = mapped_column(String(120), default="")
    nudges: Mapped[dict[str, Any]] = mapped_column(default=dict)  # stage -> ISO time of the nudge
    decided_by: Mapped[str] = mapped_column(String(120), default="")
    paid_by: Mapped[str] = mapped_column(String(120), default="")
    consent_at: Mapped[datetime | None]
    screenshot_at: Mapped[datetime | None]
    moderation_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
