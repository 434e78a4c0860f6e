"""sales: the freshness of a product row (hours; 0 = off) past which a quote says "sujeto a confirmación",
and the SKUs of an order an executive must confirm before its pre-invoice

Revision ID: s008
Revises: s007
"""

import sqlalchemy as sa
from alembic import op

revision = "s008"
down_revision = "s007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sales_config") as batch:
        batch.add_column(sa.Column("freshness_hours", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("sales_orders") as batch:
        batch.add_column(sa.Column("to_check", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sales_orders") as batch:
        batch.drop_column("to_check")
    with op.batch_alter_table("sales_config") as batch:
        batch.drop_column("freshness_hours")
