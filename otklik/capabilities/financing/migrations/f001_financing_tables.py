"""financing: named rates tables and their versions

Revision ID: f001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "f001"
down_revision = None
branch_labels = ("financing",)
depends_on = "0001"  # the shared schema exists first

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "financing_tables",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "financing_table_versions",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("table_id", BIGID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["table_id"], ["financing_tables.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("table_id", "version", name="uq_financing_table_versions_table_version"),
    )
    op.create_index("ix_financing_table_versions_table_id", "financing_table_versions", ["table_id"])


def downgrade() -> None:
    op.drop_index("ix_financing_table_versions_table_id", table_name="financing_table_versions")
    op.drop_table("financing_table_versions")
    op.drop_table("financing_tables")
