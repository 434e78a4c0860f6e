"""What the metrics layer counts of bookings (`Capability.counters`): leads and bookings created, by
conversation — the dashboard's lead → booking conversion, and the A/B tests' "booked" goal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.bookings.models import bookings, leads
from otklik.platform.plugins import Counter


async def _created(
    table: Table, session: AsyncSession, since: datetime, until: datetime
) -> list[tuple[datetime, int | None]]:
    rows = await session.execute(
        select(table.c.created_at, table.c.conversation_id).where(
            table.c.created_at >= since, table.c.created_at < until
        )
    )
    return [(when, None if conv is None else int(conv)) for when, conv in rows]


async def leads_created(session: AsyncSession, since: datetime, until: datetime) -> list[tuple[datetime, int | None]]:
    """Every lead stored in `[since, until)` (the same phone again within the dedup window is the same lead)."""
    return await _created(leads, session, since, until)


async def bookings_created(
    session: AsyncSession, since: datetime, until: datetime
) -> list[tuple[datetime, int | None]]:
    """Every booking made in `[since, until)`, cancelled ones included (a booking was made)."""
    return await _created(bookings, session, since, until)


COUNTERS = (Counter("leads", leads_created), Counter("bookings", bookings_created))
