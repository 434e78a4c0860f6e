"""sales: the product catalog

Revision ID: s001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "s001"
down_revision = None
branch_labels = ("sales",)
depends_on = "0001"  # the shared schema exists first

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sales_products",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("brand", sa.String(length=80), nullable=False),
        sa.Column("category", sa.String(length=80), nullable=False),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("prices_include_iva", sa.Boolean(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sku"),
    )
    op.create_index("ix_sales_products_category", "sales_products", ["category"])
    op.create_index("ix_sales_products_active", "sales_products", ["active"])
    op.create_index("ix_sales_products_updated_at", "sales_products", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_sales_products_updated_at", table_name="sales_products")
    op.drop_index("ix_sales_products_active", table_name="sales_products")
    op.drop_index("ix_sales_products_category", table_name="sales_products")
    op.drop_table("sales_products")
