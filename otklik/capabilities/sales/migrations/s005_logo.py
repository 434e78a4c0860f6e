"""sales: the seller's logo on the documents (a media store id)

Revision ID: s005
Revises: s004
"""

import sqlalchemy as sa
from alembic import op

revision = "s005"
down_revision = "s004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sales_config") as batch:
        batch.add_column(sa.Column("logo_media_id", sa.String(length=64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("sales_config") as batch:
        batch.drop_column("logo_media_id")
