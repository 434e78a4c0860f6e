"""crm: connections and links

Revision ID: c001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "c001"
down_revision = None
branch_labels = ("crm",)
depends_on = "0001"  # the shared schema exists first

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "crm_connections",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "crm_links",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("connection_id", BIGID, nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("local_id", BIGID, nullable=False),
        sa.Column("contact_ext", sa.String(length=64), nullable=True),
        sa.Column("record_ext", sa.String(length=64), nullable=True),
        sa.Column("activity_ext", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["crm_connections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "object", "local_id", name="uq_crm_links_connection_object_local"),
    )


def downgrade() -> None:
    op.drop_table("crm_links")
    op.drop_table("crm_connections")
