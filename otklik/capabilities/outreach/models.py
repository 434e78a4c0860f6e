"""The outreach capability's tables, on its own metadata: saved segments, broadcasts and one delivery row per
(broadcast, contact)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

from otklik.adapters.db.models import UTCDateTime

metadata = MetaData()
BIGID = BigInteger().with_variant(Integer(), "sqlite")
TS = UTCDateTime(timezone=True)

segments = Table(
    "outreach_segments",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("name", String(80), nullable=False, unique=True),
    Column("conditions", JSON, nullable=False),  # segments.parse: all / any / not over the leaves
    Column("actor", String(120), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

broadcasts = Table(
    "outreach_broadcasts",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False),
    Column("segment_id", BIGID, nullable=True),  # None: every subscribed contact
    Column("channel_account_id", BIGID, nullable=True),  # None: the contact's latest conversation, any account
    Column("message", JSON, nullable=False),  # {"text", "buttons", "template"} (service.parse_message)
    Column("status", String(16), nullable=False),  # draft | scheduled | running | paused | cancelled | done
    Column("reason", String(300), nullable=False, default=""),  # why it paused
    Column("scheduled_at", TS, nullable=True),
    Column("timezone", String(64), nullable=False, default="UTC"),  # the seller's, for --at and quiet hours
    Column("quiet_start", Integer, nullable=True),  # hour 0-23: no sends from then …
    Column("quiet_end", Integer, nullable=True),  # … until this hour (local time)
    Column("variant", String(40), nullable=True),  # the A/B test a variant is picked from (not used yet)
    Column("cursor", BIGID, nullable=False, default=0),  # contacts up to this id have their delivery row
    Column("materialized", Integer, nullable=False, default=0),  # 1: every delivery row exists
    Column("total", Integer, nullable=False, default=0),
    Column("actor", String(120), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("started_at", TS, nullable=True),
    Column("finished_at", TS, nullable=True),
)

deliveries = Table(
    "outreach_deliveries",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("broadcast_id", BIGID, nullable=False),
    Column("contact_id", BIGID, nullable=False),
    Column("conversation_id", BIGID, nullable=False),
    Column("status", String(16), nullable=False),  # pending | queued | skipped | cancelled
    Column("message_id", BIGID, nullable=True),  # the kernel's message once queued: its status tells the rest
    Column("reason", Text, nullable=True),  # why skipped
    Column("created_at", TS, nullable=False),
    Column("queued_at", TS, nullable=True),
    UniqueConstraint("broadcast_id", "contact_id", name="uq_outreach_deliveries_broadcast_contact"),
    Index("ix_outreach_deliveries_status", "broadcast_id", "status", "id"),
    Index("ix_outreach_deliveries_message", "message_id"),
)
