"""The metrics capability's tables, on its own metadata.

- `metrics_daily`: one row per (day, hour, channel account, source, flow, operator) with every counter and the
  latency histograms' totals; `hour` is -1 for a whole day (days before today) or 0..23 (today, per hour).
- `metrics_latency`: the response-time histograms: (the same key, `metric`, `bucket`) -> count.
- `metrics_sessions`: the conversations in the metrics' sense (see docs/metrics.md), kept to carry a session
  open across a recompute boundary and to list the conversations behind a number.
- `metrics_rollup`, `metrics_latency_rollup`: the same numbers added up per (day, channel account) for each of
  the dimensions `all` (key ""), `source`, `flow` and `operator` — written with the day rows; a report with no
  source, flow or operator filter reads these (a few dozen rows a day instead of every combination).
- `metrics_state`: the job's watermarks (last message, event and inbound-event ids seen).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Index, Integer, MetaData, SmallInteger, String, Table

from otklik.adapters.db.models import UTCDateTime

metadata = MetaData()
BIGID = BigInteger().with_variant(Integer(), "sqlite")
TS = UTCDateTime(timezone=True)

#: The counters of a `metrics_daily` row, in column order (docs/metrics.md defines each).
COUNTERS = (
    "conversations",
    "reopened",
    "could_handoff",
    "bot_handled",
    "handoffs",
    "handoffs_asked",
    "handoffs_red_flag",
    "handoffs_retries",
    "handoffs_flow",
    "handoffs_error",
    "messages_in",
    "messages_out",
    "bot_replies",
    "bot_slow",
    "operator_replies",
    "seen_unanswered",
    "leads",
    "bookings",
    "orders",
    "claims",
)
KEY = ("day", "hour", "account_id", "source", "flow", "operator")

daily = Table(
    "metrics_daily",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("hour", SmallInteger, nullable=False),
    Column("account_id", BIGID, nullable=False),  # channel_accounts.id (a platform table: no FK); 0 = none
    Column("source", String(120), nullable=False),
    Column("flow", String(80), nullable=False),
    Column("operator", String(120), nullable=False),
    *(Column(name, Integer, nullable=False, default=0) for name in COUNTERS),
    Index("ix_metrics_daily_key", *KEY, unique=True),
)

latency = Table(
    "metrics_latency",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("hour", SmallInteger, nullable=False),
    Column("account_id", BIGID, nullable=False),
    Column("source", String(120), nullable=False),
    Column("flow", String(80), nullable=False),
    Column("operator", String(120), nullable=False),
    Column("metric", String(16), nullable=False),  # "bot" | "operator"
    Column("bucket", Integer, nullable=False),  # the bucket's upper bound in ms (definitions.BUCKETS)
    Column("count", Integer, nullable=False),
    Index("ix_metrics_latency_key", "day", "metric", "bucket", "hour", "account_id", "source", "flow", "operator",
          unique=True),
)  # fmt: skip

#: The dimensions a rollup row adds up, besides its day and channel account ("all": key "").
ROLLUP_DIMS = ("all", "source", "flow", "operator")

rollup = Table(
    "metrics_rollup",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("account_id", BIGID, nullable=False),
    Column("dim", String(8), nullable=False),
    Column("key", String(120), nullable=False),
    *(Column(name, Integer, nullable=False, default=0) for name in COUNTERS),
    Index("ix_metrics_rollup_key", "dim", "day", "account_id", "key", unique=True),
)

latency_rollup = Table(
    "metrics_latency_rollup",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("day", Date, nullable=False),
    Column("account_id", BIGID, nullable=False),
    Column("dim", String(8), nullable=False),
    Column("key", String(120), nullable=False),
    Column("metric", String(16), nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Index("ix_metrics_latency_rollup_key", "dim", "day", "account_id", "key", "metric", "bucket", unique=True),
)

sessions = Table(
    "metrics_sessions",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("conversation_id", BIGID, nullable=False),  # conversations.id (a platform table: no FK)
    Column("seq", Integer, nullable=False),  # 1 = the conversation's first; more = reopened
    Column("started_at", TS, nullable=False),
    Column("last_buyer_at", TS, nullable=False),  # its last buyer message (the idle window runs from here)
    Column("closed_at", TS, nullable=True),  # closed by an operator
    Column("account_id", BIGID, nullable=False),
    Column("source", String(120), nullable=False),
    Column("flow", String(80), nullable=False),
    Column("could_handoff", Boolean, nullable=False),
    Column("handoff_at", TS, nullable=True),
    Column("handoff_reason", String(80), nullable=False),
    Column("last_at", TS, nullable=False),  # its last message or event
    Column("ended", Boolean, nullable=False),  # closed, followed by another, or idle past the window
    Column("bot_handled", Boolean, nullable=False),
    Column("seen_unanswered", Integer, nullable=False),
    Index("ix_metrics_sessions_conversation", "conversation_id", "started_at", unique=True),
    Index("ix_metrics_sessions_started", "started_at"),
)

state = Table(
    "metrics_state",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
