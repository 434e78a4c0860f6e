"""The capability's tables, on its own metadata: named rates tables, every version of each, and the table
each pack uses by default (else the install's default table)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, MetaData, String, Table, Text, UniqueConstraint

from otklik.adapters.db.models import UTCDateTime

metadata = MetaData()
BIGID = BigInteger().with_variant(Integer(), "sqlite")

rate_tables = Table(
    "financing_tables",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("name", String(40), nullable=False, unique=True),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("version", Integer, nullable=False),  # the current version's number
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("updated_at", UTCDateTime(timezone=True), nullable=False),
)

rate_versions = Table(
    "financing_table_versions",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("table_id", BIGID, ForeignKey("financing_tables.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),  # the file as saved (validated), comments included
    Column("actor", String(120), nullable=False),
    Column("note", String(200), nullable=False, default=""),  # "import", "edit", "rollback to 3"
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    UniqueConstraint("table_id", "version", name="uq_financing_table_versions_table_version"),
)

pack_defaults = Table(
    "financing_pack_defaults",
    metadata,
    Column("pack", String(64), primary_key=True),  # a pack's id (`channel_accounts.pack`)
    Column("table_id", BIGID, ForeignKey("financing_tables.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("actor", String(120), nullable=False),
    Column("updated_at", UTCDateTime(timezone=True), nullable=False),
)
