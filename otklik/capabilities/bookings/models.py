"""The capability's tables, on its own metadata: services, staff (and what each does), resources, bookings,
leads and the reminders of each booking.

Slots are never stored: they are computed from the staff's hours and the bookings (`schedule.py`).
`busy_until` is a booking's end plus the service's buffer: the span no other booking of the same staff
member or resource may overlap (checked under a lock, `service.book`)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from otklik.adapters.db.models import UTCDateTime

metadata = MetaData()
BIGID = BigInteger().with_variant(Integer(), "sqlite")
TS = UTCDateTime(timezone=True)

resources = Table(
    "bookings_resources",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("created_at", TS, nullable=False),
)

services = Table(
    "bookings_services",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("duration_min", Integer, nullable=False),
    Column("buffer_min", Integer, nullable=False, default=0),
    Column("price", Numeric(12, 2), nullable=False),
    Column("online", Boolean, nullable=False, default=True),  # bookable by buyers (else staff only)
    Column("reminders", JSON, nullable=False),  # minutes before the start: [1440, 120]
    Column("resource_id", BIGID, ForeignKey("bookings_resources.id", ondelete="SET NULL"), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", TS, nullable=False),
)

staff = Table(
    "bookings_staff",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("hours", JSON, nullable=False),  # a platform/business_hours schedule: week, holidays = days off, tz
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", TS, nullable=False),
)

staff_services = Table(
    "bookings_staff_services",
    metadata,
    Column("staff_id", BIGID, ForeignKey("bookings_staff.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", BIGID, ForeignKey("bookings_services.id", ondelete="CASCADE"), primary_key=True),
)

leads = Table(
    "bookings_leads",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("contact_id", BIGID, nullable=True, index=True),  # contacts.id (a platform table: no FK)
    Column("conversation_id", BIGID, nullable=True),
    Column("client_name", String(200), nullable=False),
    Column("phone", String(20), nullable=True, index=True),  # E.164
    Column("email", String(254), nullable=True),
    Column("service_id", BIGID, ForeignKey("bookings_services.id", ondelete="SET NULL"), nullable=True),
    Column("preferred_time", TS, nullable=True),
    Column("source", String(32), nullable=False),
    Column("source_detail", String(200), nullable=True),
    Column("comment", Text, nullable=True),
    Column("utm", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # new | booked | closed
    Column("hits", Integer, nullable=False, default=1),  # the same phone again within the dedup window
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

bookings = Table(
    "bookings_bookings",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("contact_id", BIGID, nullable=True, index=True),  # contacts.id (a platform table: no FK)
    Column("conversation_id", BIGID, nullable=True),
    Column("lead_id", BIGID, ForeignKey("bookings_leads.id", ondelete="SET NULL"), nullable=True),
    Column("service_id", BIGID, ForeignKey("bookings_services.id"), nullable=False),
    Column("staff_id", BIGID, ForeignKey("bookings_staff.id"), nullable=False),
    Column("resource_id", BIGID, ForeignKey("bookings_resources.id"), nullable=True),
    Column("start_at", TS, nullable=False),
    Column("end_at", TS, nullable=False),
    Column("busy_until", TS, nullable=False),  # end + the service's buffer
    Column("status", String(16), nullable=False),  # pending confirmed completed no_show cancelled
    Column("client_name", String(200), nullable=False),
    Column("phone", String(20), nullable=True),
    Column("source", String(32), nullable=False),
    Column("source_detail", String(200), nullable=True),
    Column("notes", Text, nullable=False, default=""),
    Column("price", Numeric(12, 2), nullable=False),
    Column("rating", SmallInteger, nullable=True),  # 1-5, after the visit
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_bookings_bookings_staff_start", "staff_id", "start_at"),
    Index("ix_bookings_bookings_resource_start", "resource_id", "start_at"),
)

reminders = Table(
    "bookings_reminders",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("booking_id", BIGID, ForeignKey("bookings_bookings.id", ondelete="CASCADE"), nullable=False),
    Column("offset_min", Integer, nullable=False),
    Column("due_at", TS, nullable=False, index=True),
    Column("status", String(16), nullable=False),  # pending sent cancelled skipped
    Column("route", String(40), nullable=True),  # "conversation:<id>", "reach:<dedup key>" (platform.reach: SMS, e-mail), "none"
    Column("lease_until", TS, nullable=True),
    Column("sent_at", TS, nullable=True),
    UniqueConstraint("booking_id", "offset_min", name="uq_bookings_reminders_booking_offset"),
)

talks = Table(
    "bookings_talks",
    metadata,
    Column("conversation_id", BIGID, primary_key=True),
    Column("state", JSON, nullable=False),  # what the booking talk knows: service, staff, picked slot, name, step
    Column("updated_at", TS, nullable=False),
)
