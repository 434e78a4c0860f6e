"""wb_chats (the Wildberries buyer chat's replySign and product card per chat); wb_feedbacks loses
order_status (WB's feedback object has no such field)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "wb_chats",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("channel_account_id", BIGID, nullable=False),
        sa.Column("chat_id", sa.String(length=200), nullable=False),
        sa.Column("reply_sign", sa.String(length=255), nullable=False),
        sa.Column("good_card", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_account_id"], ["channel_accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_account_id", "chat_id"),
    )
    with op.batch_alter_table("wb_feedbacks") as batch:
        batch.drop_column("order_status")


def downgrade() -> None:
    with op.batch_alter_table("wb_feedbacks") as batch:
        batch.add_column(sa.Column("order_status", sa.String(length=32), nullable=False, server_default=""))
    op.drop_table("wb_chats")
