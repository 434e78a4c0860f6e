"""example: notes taken by the `example.note` action

Revision ID: e001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "e001"
down_revision = None
branch_labels = ("example",)
depends_on = "0001"  # the shared schema exists first


def upgrade() -> None:
    op.create_table(
        "example_notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.String(length=200), nullable=False),
        sa.Column("digested", sa.Integer(), nullable=False),
        sa.Column("created_at", otklik.adapters.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_example_notes_conversation_id", "example_notes", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_example_notes_conversation_id", table_name="example_notes")
    op.drop_table("example_notes")
