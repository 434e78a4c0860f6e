"""financing: a default rates table per pack

Revision ID: f002
Revises: f001
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "f002"
down_revision = "f001"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "financing_pack_defaults",
        sa.Column("pack", sa.String(length=64), nullable=False),
        sa.Column("table_id", BIGID, nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["table_id"], ["financing_tables.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pack"),
    )
    op.create_index("ix_financing_pack_defaults_table_id", "financing_pack_defaults", ["table_id"])


def downgrade() -> None:
    op.drop_index("ix_financing_pack_defaults_table_id", table_name="financing_pack_defaults")
    op.drop_table("financing_pack_defaults")
