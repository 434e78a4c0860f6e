"""care: WB product and barcode cache, WB feedbacks and reply drafts, care incidents

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "wb_products",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("nm_id", sa.BigInteger(), nullable=False),
        sa.Column("vendor_code", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("brand", sa.String(length=120), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("wb_updated_at", sa.String(length=40), nullable=False),
        sa.Column("synced_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_account_id", "nm_id"),
    )
    op.create_table(
        "wb_barcodes",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("barcode", sa.String(length=32), nullable=False),
        sa.Column("nm_id", sa.BigInteger(), nullable=False),
        sa.Column("chrt_id", sa.BigInteger(), nullable=True),
        sa.Column("tech_size", sa.String(length=64), nullable=False),
        sa.Column("wb_size", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_account_id", "barcode"),
    )
    op.create_index("ix_wb_barcodes_barcode", "wb_barcodes", ["barcode"])
    op.create_table(
        "wb_feedbacks",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("feedback_id", sa.String(length=64), nullable=False),
        sa.Column("nm_id", sa.BigInteger(), nullable=False),
        sa.Column("product_name", sa.String(length=300), nullable=False),
        sa.Column("supplier_article", sa.String(length=120), nullable=False),
        sa.Column("size", sa.String(length=64), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("pros", sa.Text(), nullable=False),
        sa.Column("cons", sa.Text(), nullable=False),
        sa.Column("photo_count", sa.Integer(), nullable=False),
        sa.Column("order_status", sa.String(length=32), nullable=False),
        sa.Column("matching_size", sa.String(length=16), nullable=False),
        sa.Column("created_date", TS, nullable=False),
        sa.Column("answer_text", sa.Text(), nullable=False),
        sa.Column("answer_state", sa.String(length=32), nullable=False),
        sa.Column("negative", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("confidence", sa.Integer(), nullable=True),
        sa.Column("classified_by", sa.String(length=16), nullable=False),
        sa.Column("imported_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_account_id", "feedback_id"),
    )
    op.create_index("ix_wb_feedbacks_created", "wb_feedbacks", ["channel_account_id", "created_date"])
    op.create_index("ix_wb_feedbacks_category", "wb_feedbacks", ["category", "created_date"])
    op.create_table(
        "wb_review_replies",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("feedback_row_id", BIGID, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("approved_by_id", sa.BigInteger(), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=False),
        sa.Column("approved_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("answer_state", sa.String(length=32), nullable=False),
        sa.Column("posted_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["feedback_row_id"], ["wb_feedbacks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("feedback_row_id"),
    )
    op.create_index("ix_wb_review_replies_status", "wb_review_replies", ["status"])
    op.create_table(
        "care_incidents",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("conversation_id", BIGID, nullable=False),
        sa.Column("case_key", sa.String(length=64), nullable=False),
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("product", sa.String(length=120), nullable=False),
        sa.Column("barcode", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("phrase", sa.String(length=300), nullable=False),
        sa.Column("needs_check", sa.Boolean(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"]),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "case_key"),
    )
    op.create_index("ix_care_incidents_created", "care_incidents", ["created_at"])
    op.create_index("ix_care_incidents_category", "care_incidents", ["category", "created_at"])


def downgrade() -> None:
    op.drop_table("care_incidents")
    op.drop_table("wb_review_replies")
    op.drop_table("wb_feedbacks")
    op.drop_table("wb_barcodes")
    op.drop_table("wb_products")
