"""outreach: segments, broadcasts, deliveries

Revision ID: o001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "o001"
down_revision = None
branch_labels = ("outreach",)
depends_on = "0001"

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outreach_segments",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "outreach_broadcasts",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("segment_id", BIGID, nullable=True),
        sa.Column("channel_account_id", BIGID, nullable=True),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("scheduled_at", TS, nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=True),
        sa.Column("quiet_end", sa.Integer(), nullable=True),
        sa.Column("variant", sa.String(length=40), nullable=True),
        sa.Column("cursor", BIGID, nullable=False),
        sa.Column("materialized", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "outreach_deliveries",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("broadcast_id", BIGID, nullable=False),
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("conversation_id", BIGID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_id", BIGID, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("queued_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("broadcast_id", "contact_id", name="uq_outreach_deliveries_broadcast_contact"),
    )
    op.create_index("ix_outreach_deliveries_status", "outreach_deliveries", ["broadcast_id", "status", "id"])
    op.create_index("ix_outreach_deliveries_message", "outreach_deliveries", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_outreach_deliveries_message", table_name="outreach_deliveries")
    op.drop_index("ix_outreach_deliveries_status", table_name="outreach_deliveries")
    op.drop_table("outreach_deliveries")
    op.drop_table("outreach_broadcasts")
    op.drop_table("outreach_segments")
