"""the visual flow builder: node positions beside each flow (not inside its YAML)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "flow_layouts",
        sa.Column("flow_key", sa.String(length=80), nullable=False),
        sa.Column("positions", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("flow_key"),
    )


def downgrade() -> None:
    op.drop_table("flow_layouts")
