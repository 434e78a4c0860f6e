"""The CRM hand-over's tables, on its own metadata: the connected CRMs and the external ids of what was
handed over (one row per connection and local lead / booking: the never-a-duplicate guarantee)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from otklik.adapters.db.models import UTCDateTime

metadata = MetaData()
BIGID = BigInteger().with_variant(Integer(), "sqlite")

connections = Table(
    "crm_connections",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # bitrix24 | amocrm
    Column("name", String(120), nullable=False, unique=True),
    Column("config", JSON, nullable=False),  # not secret: portal host, subdomain, base URL
    Column("secret", Text, nullable=False),  # Vault-encrypted JSON: webhook URL, tokens
    Column("mapping", JSON, nullable=False),  # pipeline, statuses, tags, custom fields, sources
    Column("active", Boolean, nullable=False, default=True),
    Column("last_error", String(500)),
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("updated_at", UTCDateTime(timezone=True), nullable=False),
)

links = Table(
    "crm_links",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("connection_id", BIGID, ForeignKey("crm_connections.id", ondelete="CASCADE"), nullable=False),
    Column("object", String(16), nullable=False),  # lead | booking
    Column("local_id", BIGID, nullable=False),
    Column("contact_ext", String(64)),
    Column("record_ext", String(64)),  # the CRM's lead id
    Column("activity_ext", String(64)),  # Bitrix24's to-do, amoCRM's task
    Column("created_at", UTCDateTime(timezone=True), nullable=False),
    Column("updated_at", UTCDateTime(timezone=True), nullable=False),
    UniqueConstraint("connection_id", "object", "local_id", name="uq_crm_links_connection_object_local"),
)
