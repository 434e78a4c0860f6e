"""inbox: the operator queue index (waiting conversations, priority first, oldest first)

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_conversations_queue", "conversations", ["status", "priority", "waiting_since"])


def downgrade() -> None:
    op.drop_index("ix_conversations_queue", "conversations")
