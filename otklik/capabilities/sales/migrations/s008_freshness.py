"""sales: the freshness of a product row (hours; 0 = off) past which a quote says "sujeto a confirmación"

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


def downgrade() -> None:
    with op.batch_alter_table("sales_config") as batch:
        batch.drop_column("freshness_hours")
