"""bookings: services, staff, resources, leads, bookings, reminders

Revision ID: b001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import otklik.adapters.db.models

revision = "b001"
down_revision = None
branch_labels = ("bookings",)
depends_on = "0001"  # the shared schema (contacts) exists first

TS = otklik.adapters.db.models.UTCDateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = (
    "bookings_talks",
    "bookings_reminders",
    "bookings_bookings",
    "bookings_leads",
    "bookings_staff_services",
    "bookings_staff",
    "bookings_services",
    "bookings_resources",
)


def upgrade() -> None:
    op.create_table(
        "bookings_resources",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(120), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "bookings_services",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(120), nullable=False, unique=True),
        sa.Column("duration_min", sa.Integer, nullable=False),
        sa.Column("buffer_min", sa.Integer, nullable=False, default=0),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("online", sa.Boolean, nullable=False, default=True),  # bookable by buyers (else staff only)
        sa.Column("reminders", sa.JSON, nullable=False),  # minutes before the start: [1440, 120]
        sa.Column("resource_id", BIGID, sa.ForeignKey("bookings_resources.id", ondelete="SET NULL"), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, default=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "bookings_staff",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(120), nullable=False, unique=True),
        sa.Column(
            "hours", sa.JSON, nullable=False
        ),  # a platform/business_hours schedule: week, holidays = days off, tz
        sa.Column("active", sa.Boolean, nullable=False, default=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "bookings_staff_services",
        sa.Column("staff_id", BIGID, sa.ForeignKey("bookings_staff.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("service_id", BIGID, sa.ForeignKey("bookings_services.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "bookings_leads",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("contact_id", BIGID, nullable=True, index=True),  # contacts.id (a platform table: no FK)
        sa.Column("conversation_id", BIGID, nullable=True),
        sa.Column("client_name", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True, index=True),  # E.164
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("service_id", BIGID, sa.ForeignKey("bookings_services.id", ondelete="SET NULL"), nullable=True),
        sa.Column("preferred_time", TS, nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_detail", sa.String(200), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("utm", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # new | booked | closed
        sa.Column("hits", sa.Integer, nullable=False, default=1),  # the same phone again within the dedup window
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "bookings_bookings",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("contact_id", BIGID, nullable=True, index=True),  # contacts.id (a platform table: no FK)
        sa.Column("conversation_id", BIGID, nullable=True),
        sa.Column("lead_id", BIGID, sa.ForeignKey("bookings_leads.id", ondelete="SET NULL"), nullable=True),
        sa.Column("service_id", BIGID, sa.ForeignKey("bookings_services.id"), nullable=False),
        sa.Column("staff_id", BIGID, sa.ForeignKey("bookings_staff.id"), nullable=False),
        sa.Column("resource_id", BIGID, sa.ForeignKey("bookings_resources.id"), nullable=True),
        sa.Column("start_at", TS, nullable=False),
        sa.Column("end_at", TS, nullable=False),
        sa.Column("busy_until", TS, nullable=False),  # end + the service's buffer
        sa.Column("status", sa.String(16), nullable=False),  # pending confirmed completed no_show cancelled
        sa.Column("client_name", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_detail", sa.String(200), nullable=True),
        sa.Column("notes", sa.Text, nullable=False, default=""),
        sa.Column("price", sa.Numeric(12, 2), nullable=False),
        sa.Column("rating", sa.SmallInteger, nullable=True),  # 1-5, after the visit
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Index("ix_bookings_bookings_staff_start", "staff_id", "start_at"),
        sa.Index("ix_bookings_bookings_resource_start", "resource_id", "start_at"),
    )
    op.create_table(
        "bookings_reminders",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("booking_id", BIGID, sa.ForeignKey("bookings_bookings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("offset_min", sa.Integer, nullable=False),
        sa.Column("due_at", TS, nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),  # pending sent cancelled skipped
        sa.Column("route", sa.String(40), nullable=True),  # "conversation:<id>" today; the SMS/e-mail fallback later
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.UniqueConstraint("booking_id", "offset_min", name="uq_bookings_reminders_booking_offset"),
    )
    op.create_table(
        "bookings_talks",
        sa.Column("conversation_id", BIGID, primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
