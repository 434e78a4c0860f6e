"""sales: settings, order series, carts, orders, order lines and history

Revision ID: s002
Revises: s001
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "s002"
down_revision = "s001"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    config = op.create_table(
        "sales_config",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("iva_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("validity_hours", sa.Integer(), nullable=False),
        sa.Column("cart_ttl_hours", sa.Integer(), nullable=False),
        sa.Column("series", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    series = op.create_table(
        "sales_series",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(config, [{"id": 1, "iva_rate": 21, "validity_hours": 48, "cart_ttl_hours": 72, "series": "PV"}])
    op.bulk_insert(series, [{"name": "PV", "prefix": "PV-", "width": 6, "next_value": 1}])
    op.create_table(
        "sales_carts",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("conversation_id", BIGID, nullable=False),
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id"),
    )
    op.create_index("ix_sales_carts_contact_id", "sales_carts", ["contact_id"])
    op.create_index("ix_sales_carts_expires_at", "sales_carts", ["expires_at"])
    op.create_table(
        "sales_cart_lines",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("cart_id", BIGID, nullable=False),
        sa.Column("product_id", BIGID, nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["cart_id"], ["sales_carts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["product_id"], ["sales_products.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cart_id", "product_id"),
    )
    op.create_table(
        "sales_orders",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("cart_id", BIGID, nullable=True),
        sa.Column("cart_generation", sa.Integer(), nullable=False),
        sa.Column("conversation_id", BIGID, nullable=True),
        sa.Column("contact_id", BIGID, nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("iva", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("iva_rate", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("customer", sa.JSON(), nullable=False),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["cart_id"], ["sales_carts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("cart_id", "cart_generation"),
    )
    op.create_index("ix_sales_orders_conversation_id", "sales_orders", ["conversation_id"])
    op.create_index("ix_sales_orders_contact_id", "sales_orders", ["contact_id"])
    op.create_index("ix_sales_orders_status", "sales_orders", ["status"])
    op.create_index("ix_sales_orders_created_at", "sales_orders", ["created_at"])
    op.create_table(
        "sales_order_lines",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("order_id", BIGID, nullable=False),
        sa.Column("product_id", BIGID, nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("prices_include_iva", sa.Boolean(), nullable=False),
        sa.Column("line_total", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["sales_orders.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["product_id"], ["sales_products.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sales_order_lines_order_id", "sales_order_lines", ["order_id"])
    op.create_table(
        "sales_order_history",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("order_id", BIGID, nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["sales_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sales_order_history_order_id", "sales_order_history", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_sales_order_history_order_id", table_name="sales_order_history")
    op.drop_table("sales_order_history")
    op.drop_index("ix_sales_order_lines_order_id", table_name="sales_order_lines")
    op.drop_table("sales_order_lines")
    for name in ("created_at", "status", "contact_id", "conversation_id"):
        op.drop_index(f"ix_sales_orders_{name}", table_name="sales_orders")
    op.drop_table("sales_orders")
    op.drop_table("sales_cart_lines")
    op.drop_index("ix_sales_carts_expires_at", table_name="sales_carts")
    op.drop_index("ix_sales_carts_contact_id", table_name="sales_carts")
    op.drop_table("sales_carts")
    op.drop_table("sales_series")
    op.drop_table("sales_config")
