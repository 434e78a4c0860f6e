"""metrics: daily aggregate rows, latency histograms, sessions and the job's watermarks

Revision ID: m001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "m001"
down_revision = None
branch_labels = ("metrics",)
depends_on = "0001"  # the shared schema exists first

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTERS = (
    "conversations", "reopened", "could_handoff", "bot_handled", "handoffs", "handoffs_asked", "handoffs_red_flag",
    "handoffs_retries", "handoffs_flow", "handoffs_error", "messages_in", "messages_out", "bot_replies", "bot_slow",
    "operator_replies", "seen_unanswered", "leads", "bookings", "orders", "claims",
)  # fmt: skip


def _key() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", BIGID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("flow", sa.String(length=80), nullable=False),
        sa.Column("operator", sa.String(length=120), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "metrics_daily",
        *_key(),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_metrics_daily_key", "metrics_daily", ["day", "hour", "account_id", "source", "flow", "operator"],
        unique=True,
    )  # fmt: skip
    op.create_table(
        "metrics_latency",
        *_key(),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_metrics_latency_key", "metrics_latency",
        ["day", "metric", "bucket", "hour", "account_id", "source", "flow", "operator"], unique=True,
    )  # fmt: skip
    op.create_table(
        "metrics_sessions",
        sa.Column("id", BIGID, nullable=False),
        sa.Column("conversation_id", BIGID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_buyer_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("flow", sa.String(length=80), nullable=False),
        sa.Column("could_handoff", sa.Boolean(), nullable=False),
        sa.Column("handoff_at", TS, nullable=True),
        sa.Column("handoff_reason", sa.String(length=80), nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("bot_handled", sa.Boolean(), nullable=False),
        sa.Column("seen_unanswered", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_metrics_sessions_conversation", "metrics_sessions", ["conversation_id", "started_at"], unique=True
    )
    op.create_index("ix_metrics_sessions_started", "metrics_sessions", ["started_at"])
    op.create_table(
        "metrics_state",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("metrics_state")
    op.drop_index("ix_metrics_sessions_started", table_name="metrics_sessions")
    op.drop_index("ix_metrics_sessions_conversation", table_name="metrics_sessions")
    op.drop_table("metrics_sessions")
    op.drop_index("ix_metrics_latency_key", table_name="metrics_latency")
    op.drop_table("metrics_latency")
    op.drop_index("ix_metrics_daily_key", table_name="metrics_daily")
    op.drop_table("metrics_daily")
