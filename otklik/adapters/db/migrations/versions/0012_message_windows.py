"""customer-service windows and message templates (WhatsApp and other providers with a 24-hour window)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "customer_windows",
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("last_inbound_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_account_id", "recipient"),
    )
    op.create_table(
        "message_templates",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=15), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("params", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("synced_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_account_id", "name", "language"),
    )


def downgrade() -> None:
    op.drop_table("message_templates")
    op.drop_table("customer_windows")
