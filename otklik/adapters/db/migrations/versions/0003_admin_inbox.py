"""admin users and sessions, inbox columns, canned responses, contact tags, audit indexes

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("unread", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("last_text", sa.String(length=200), server_default="", nullable=False))
        batch.add_column(sa.Column("closed_at", TS, nullable=True))
    op.create_index("ix_conversations_status_last", "conversations", ["status", "last_message_at"])
    op.create_index("ix_conversations_assigned", "conversations", ["assigned_to", "last_message_at"])
    op.create_index("ix_conversations_account_last", "conversations", ["channel_account_id", "last_message_at"])
    op.create_index("ix_event_log_kind_ts", "event_log", ["kind", "ts"])
    op.create_index("ix_event_log_actor_ts", "event_log", ["actor", "ts"])
    op.create_table(
        "users",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("login", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("password_changed_at", TS, nullable=False),
        sa.Column("last_login_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("login"),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", BIGID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_admin_sessions_user_id", "admin_sessions", ["user_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("login", sa.String(length=120), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_login", "login_failures", ["login", "ts"])
    op.create_index("ix_login_failures_ip", "login_failures", ["ip", "ts"])
    op.create_table(
        "canned_responses",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "contact_tags",
        sa.Column("contact_id", BIGID, nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id", "tag"),
    )
    op.create_index("ix_contact_tags_tag", "contact_tags", ["tag", "contact_id"])


def downgrade() -> None:
    op.drop_table("contact_tags")
    op.drop_table("canned_responses")
    op.drop_table("login_failures")
    op.drop_table("admin_sessions")
    op.drop_table("users")
    op.drop_index("ix_event_log_actor_ts", "event_log")
    op.drop_index("ix_event_log_kind_ts", "event_log")
    op.drop_index("ix_conversations_account_last", "conversations")
    op.drop_index("ix_conversations_assigned", "conversations")
    op.drop_index("ix_conversations_status_last", "conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("closed_at")
        batch.drop_column("last_text")
        batch.drop_column("unread")
