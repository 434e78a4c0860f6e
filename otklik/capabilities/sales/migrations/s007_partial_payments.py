"""sales: several payments per order (partial payments)

Revision ID: s007
Revises: s006
"""

from alembic import op

revision = "s007"
down_revision = "s006"
branch_labels = None
depends_on = None

CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("sales_payments_order_id_key", "sales_payments", type_="unique")
        op.create_index("ix_sales_payments_order_id", "sales_payments", ["order_id"])
        return
    with op.batch_alter_table("sales_payments", naming_convention=CONVENTION) as batch:  # SQLite: a copy
        batch.drop_constraint("uq_sales_payments_order_id", type_="unique")
        batch.create_index("ix_sales_payments_order_id", ["order_id"])


def downgrade() -> None:
    # a second payment of an order cannot stay: keep the first of each (the others are lost on downgrade)
    op.execute("DELETE FROM sales_payments WHERE id NOT IN (SELECT MIN(id) FROM sales_payments GROUP BY order_id)")
    op.drop_index("ix_sales_payments_order_id", table_name="sales_payments")
    with op.batch_alter_table("sales_payments") as batch:
        batch.create_unique_constraint("sales_payments_order_id_key", ["order_id"])
