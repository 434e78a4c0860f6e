"""staff: executives and other staff, the round robin's place, the staff notifications outbox

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staff_members",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("telegram_chat_id", sa.String(length=40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("packs", sa.String(length=400), nullable=False),
        sa.Column("rules", sa.String(length=400), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "staff_rotation",
        sa.Column("pool", sa.String(length=200), nullable=False),
        sa.Column("last_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pool"),
    )
    op.create_table(
        "staff_notifications",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("staff_id", BIGID, nullable=True),
        sa.Column("transport", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=2000), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=240), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("worker", sa.String(length=120), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_members.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_staff_notifications_due", "staff_notifications", ["status", "due_at"])
    op.create_index("ix_staff_notifications_about", "staff_notifications", ["subject_type", "subject_id"])
    op.create_index(op.f("ix_staff_notifications_staff_id"), "staff_notifications", ["staff_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_notifications_staff_id"), table_name="staff_notifications")
    op.drop_index("ix_staff_notifications_about", table_name="staff_notifications")
    op.drop_index("ix_staff_notifications_due", table_name="staff_notifications")
    op.drop_table("staff_notifications")
    op.drop_table("staff_rotation")
    op.drop_table("staff_members")
