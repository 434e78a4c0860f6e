"""reach: attempts to reach a contact outside the chat (channel, SMS, e-mail) and their delivery status

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reach_attempts",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("next_routes", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("provider_id", sa.String(length=120), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("worker", sa.String(length=120), nullable=True),
        sa.Column("check_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("delivered_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key", "route"),
    )
    op.create_index("ix_reach_attempts_due", "reach_attempts", ["status", "due_at"])
    op.create_index("ix_reach_attempts_check", "reach_attempts", ["status", "check_at"])
    op.create_index(op.f("ix_reach_attempts_contact_id"), "reach_attempts", ["contact_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reach_attempts_contact_id"), table_name="reach_attempts")
    op.drop_index("ix_reach_attempts_check", table_name="reach_attempts")
    op.drop_index("ix_reach_attempts_due", table_name="reach_attempts")
    op.drop_table("reach_attempts")
