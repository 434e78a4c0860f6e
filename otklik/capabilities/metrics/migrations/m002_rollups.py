"""metrics: rollup rows per (day, channel account) for each of all / source / flow / operator, filled from the
day rows already there

Revision ID: m002
Revises: m001
"""

import sqlalchemy as sa
from alembic import op

revision = "m002"
down_revision = "m001"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COUNTERS = (
    "conversations", "reopened", "could_handoff", "bot_handled", "handoffs", "handoffs_asked", "handoffs_red_flag",
    "handoffs_retries", "handoffs_flow", "handoffs_error", "messages_in", "messages_out", "bot_replies", "bot_slow",
    "operator_replies", "seen_unanswered", "leads", "bookings", "orders", "claims",
)  # fmt: skip
DIMS = ("all", "source", "flow", "operator")


def _head() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", BIGID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", BIGID, nullable=False),
        sa.Column("dim", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "metrics_rollup",
        *_head(),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_metrics_rollup_key", "metrics_rollup", ["dim", "day", "account_id", "key"], unique=True
    )  # fmt: skip
    op.create_table(
        "metrics_latency_rollup",
        *_head(),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_metrics_latency_rollup_key", "metrics_latency_rollup",
        ["dim", "day", "account_id", "key", "metric", "bucket"], unique=True,
    )  # fmt: skip
    sums = ", ".join(f"SUM({c})" for c in COUNTERS)
    for dim in DIMS:
        key = "''" if dim == "all" else dim
        group = "day, account_id" if dim == "all" else f"day, account_id, {dim}"
        op.execute(
            f"INSERT INTO metrics_rollup (day, account_id, dim, key, {', '.join(COUNTERS)}) "
            f"SELECT day, account_id, '{dim}', {key}, {sums} FROM metrics_daily GROUP BY {group}"
        )
        op.execute(
            "INSERT INTO metrics_latency_rollup (day, account_id, dim, key, metric, bucket, count) "
            f"SELECT day, account_id, '{dim}', {key}, metric, bucket, SUM(count) FROM metrics_latency "
            f"GROUP BY {group}, metric, bucket"
        )


def downgrade() -> None:
    op.drop_index("ix_metrics_latency_rollup_key", table_name="metrics_latency_rollup")
    op.drop_table("metrics_latency_rollup")
    op.drop_index("ix_metrics_rollup_key", table_name="metrics_rollup")
    op.drop_table("metrics_rollup")
