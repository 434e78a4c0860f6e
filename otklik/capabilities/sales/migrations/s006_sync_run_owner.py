"""sales: the worker that started a sync run (a 'running' row whose worker lost its lease is stale)

Revision ID: s006
Revises: s005
"""

import sqlalchemy as sa
from alembic import op

revision = "s006"
down_revision = "s005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sales_sync_runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sales_sync_runs") as batch:
        batch.drop_column("owner")
