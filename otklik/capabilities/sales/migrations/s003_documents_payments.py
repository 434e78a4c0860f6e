"""sales: the seller's letterhead and invoice series, order assignee, documents and payments

Revision ID: s003
Revises: s002
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "s003"
down_revision = "s002"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sales_config") as batch:
        batch.add_column(sa.Column("seller_name", sa.String(length=200), nullable=False, server_default=""))
        batch.add_column(sa.Column("seller_cuit", sa.String(length=20), nullable=False, server_default=""))
        batch.add_column(sa.Column("seller_address", sa.String(length=300), nullable=False, server_default=""))
        batch.add_column(sa.Column("payment_instructions", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("invoice_series", sa.String(length=32), nullable=False, server_default="FC"))
    series = sa.table(
        "sales_series", sa.column("name", sa.String), sa.column("prefix", sa.String),
        sa.column("width", sa.Integer), sa.column("next_value", sa.BigInteger),
    )  # fmt: skip
    op.bulk_insert(series, [{"name": "FC", "prefix": "FC-", "width": 6, "next_value": 1}])
    with op.batch_alter_table("sales_orders") as batch:
        batch.add_column(sa.Column("assignee_id", BIGID, nullable=True))
        batch.add_column(sa.Column("assigned_at", TS, nullable=True))
        batch.create_index("ix_sales_orders_assignee_id", ["assignee_id"])
    op.create_table(
        "sales_documents",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("order_id", BIGID, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("media_id", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["sales_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "kind"),
    )
    op.create_index("ix_sales_documents_order_id", "sales_documents", ["order_id"])
    op.create_table(
        "sales_payments",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("order_id", BIGID, nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("invoice_number", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["sales_orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )


def downgrade() -> None:
    op.drop_table("sales_payments")
    op.drop_index("ix_sales_documents_order_id", table_name="sales_documents")
    op.drop_table("sales_documents")
    with op.batch_alter_table("sales_orders") as batch:
        batch.drop_index("ix_sales_orders_assignee_id")
        batch.drop_column("assigned_at")
        batch.drop_column("assignee_id")
    op.execute("DELETE FROM sales_series WHERE name = 'FC'")
    with op.batch_alter_table("sales_config") as batch:
        for name in ("invoice_series", "payment_instructions", "seller_address", "seller_cuit", "seller_name"):
            batch.drop_column(name)
