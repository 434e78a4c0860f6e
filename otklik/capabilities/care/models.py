"""Care's tables, on the shared `Base` (their migrations are the shared history: 0004_care): the WB barcode
cache, imported WB reviews and their reply drafts, care incidents. `wb_products` stays shared
(`otklik.adapters.db.models.WBProduct`): cashback reads it too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.adapters.db.models import Base, BigId


class WBBarcode(Base):
    """One barcode (EAN) of one size of a cached card: barcode -> product and size."""

    __tablename__ = "wb_barcodes"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "barcode"),
        Index("ix_wb_barcodes_barcode", "barcode"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    barcode: Mapped[str] = mapped_column(String(32))
    nm_id: Mapped[int] = mapped_column(BigInteger)
    chrt_id: Mapped[int | None] = mapped_column(BigInteger)
    tech_size: Mapped[str] = mapped_column(String(64), default="")
    wb_size: Mapped[str] = mapped_column(String(64), default="")


class WBFeedback(Base):
    """A WB review imported for insights; no buyer name is stored. `category` is the care category."""

    __tablename__ = "wb_feedbacks"
    __table_args__ = (
        UniqueConstraint("channel_account_id", "feedback_id"),
        Index("ix_wb_feedbacks_created", "channel_account_id", "created_date"),
        Index("ix_wb_feedbacks_category", "category", "created_date"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    feedback_id: Mapped[str] = mapped_column(String(64))
    nm_id: Mapped[int] = mapped_column(BigInteger)
    product_name: Mapped[str] = mapped_column(String(300), default="")
    supplier_article: Mapped[str] = mapped_column(String(120), default="")
    size: Mapped[str] = mapped_column(String(64), default="")
    rating: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    pros: Mapped[str] = mapped_column(Text, default="")
    cons: Mapped[str] = mapped_column(Text, default="")
    photo_count: Mapped[int] = mapped_column(Integer, default=0)
    matching_size: Mapped[str] = mapped_column(String(16), default="")
    created_date: Mapped[datetime]
    answer_text: Mapped[str] = mapped_column(Text, default="")
    answer_state: Mapped[str] = mapped_column(String(32), default="")
    negative: Mapped[bool] = mapped_column(Boolean, default=False)  # rating <= 3, or negative text
    category: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[int | None] = mapped_column(Integer)  # percent, 0..100
    classified_by: Mapped[str] = mapped_column(String(16), default="")  # offline | llm
    imported_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WBReviewReply(Base):
    """The reply to one review: draft -> approved -> posted (confirmed by a re-read) | failed (retryable)."""

    __tablename__ = "wb_review_replies"
    __table_args__ = (UniqueConstraint("feedback_row_id"), Index("ix_wb_review_replies_status", "status"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feedback_row_id: Mapped[int] = mapped_column(ForeignKey("wb_feedbacks.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # template | llm | operator
    status: Mapped[str] = mapped_column(String(16))  # draft | approved | posting | posted | failed
    approved_by_id: Mapped[int | None] = mapped_column(BigInteger)
    approved_by: Mapped[str] = mapped_column(String(200), default="")
    approved_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    answer_state: Mapped[str] = mapped_column(String(32), default="")  # WB's state on the re-read
    posted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CareIncident(Base):
    """One care case of a conversation: category, product, outcome, rating (otklik.capabilities.care.incidents)."""

    __tablename__ = "care_incidents"
    __table_args__ = (
        UniqueConstraint("conversation_id", "case_key"),
        Index("ix_care_incidents_created", "created_at"),
        Index("ix_care_incidents_category", "category", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    case_key: Mapped[str] = mapped_column(String(64))
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    category: Mapped[str] = mapped_column(String(32))
    product: Mapped[str] = mapped_column(String(120), default="")  # WB nmId or a product key
    barcode: Mapped[str] = mapped_column(String(32), default="")
    outcome: Mapped[str] = mapped_column(String(24))  # resolved_by_bot | handed_off | unresolved
    rating: Mapped[int | None] = mapped_column(Integer)
    phrase: Mapped[str] = mapped_column(String(300), default="")  # the buyer's words that opened the case
    needs_check: Mapped[bool] = mapped_column(Boolean, default=False)  # e.g. WB was down: check later
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
