"""The capability's table, on its own metadata (the shared models module does not know it)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

from otklik.adapters.db.models import UTCDateTime

metadata = MetaData()
notes = Table(
    "example_notes",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("conversation_id", BigInteger, nullable=False, index=True),
    Column("text", String(200), nullable=False),
    Column("digested", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
)
