"""send_pace: the per-account send limit and daily cap shared by every worker; outbox.started_at (issue #19)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "send_pace",
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("day_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_account_id"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("started_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("started_at")
    op.drop_table("send_pace")
