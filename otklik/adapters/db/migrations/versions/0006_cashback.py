"""cashback: campaigns and claims (checks, decision, encrypted payout details)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cashback_campaigns",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("all_products", sa.Boolean(), nullable=False),
        sa.Column("products", sa.JSON(), nullable=False),
        sa.Column("reward_kopecks", sa.BigInteger(), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("min_rating", sa.Integer(), nullable=False),
        sa.Column("one_per_buyer", sa.Boolean(), nullable=False),
        sa.Column("auto_approve", sa.Boolean(), nullable=False),
        sa.Column("budget_kopecks", sa.BigInteger(), nullable=True),
        sa.Column("max_claims", sa.Integer(), nullable=True),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("erase_after_days", sa.Integer(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cashback_campaigns_window", "cashback_campaigns", ["status", "starts_at"])
    op.create_table(
        "cashback_claims",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("campaign_id", BIGID, nullable=False),
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("conversation_id", BIGID, nullable=False),
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("nm_id", sa.BigInteger(), nullable=True),
        sa.Column("product_name", sa.String(length=300), nullable=False),
        sa.Column("amount_kopecks", sa.BigInteger(), nullable=False),
        sa.Column("screenshot_media_id", sa.String(length=64), nullable=True),
        sa.Column("screenshot_hash", sa.String(length=64), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("matched", sa.JSON(), nullable=False),
        sa.Column("wb_feedback_id", sa.String(length=64), nullable=True),
        sa.Column("rewarded_feedback_id", sa.String(length=64), nullable=True),
        sa.Column("fraud_flag", sa.Boolean(), nullable=False),
        sa.Column("reject_reason", sa.String(length=32), nullable=True),
        sa.Column("reject_text", sa.Text(), nullable=False),
        sa.Column("payout_method", sa.String(length=8), nullable=True),
        sa.Column("payout_secret", sa.Text(), nullable=True),
        sa.Column("payout_masked", sa.String(length=120), nullable=False),
        sa.Column("nudges", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.String(length=120), nullable=False),
        sa.Column("paid_by", sa.String(length=120), nullable=False),
        sa.Column("consent_at", TS, nullable=True),
        sa.Column("screenshot_at", TS, nullable=True),
        sa.Column("moderation_at", TS, nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("paid_at", TS, nullable=True),
        sa.Column("erased_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["cashback_campaigns.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"]),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rewarded_feedback_id"),
    )
    op.create_index("ix_cashback_claims_state", "cashback_claims", ["state", "updated_at"])
    op.create_index("ix_cashback_claims_campaign", "cashback_claims", ["campaign_id", "state"])
    op.create_index("ix_cashback_claims_contact", "cashback_claims", ["contact_id", "campaign_id"])
    op.create_index("ix_cashback_claims_conversation", "cashback_claims", ["conversation_id", "id"])


def downgrade() -> None:
    op.drop_table("cashback_claims")
    op.drop_table("cashback_campaigns")
