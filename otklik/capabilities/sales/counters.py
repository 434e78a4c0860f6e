"""What the metrics layer counts of sales (`Capability.counters`): the orders created, by conversation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.sales.models import orders
from otklik.platform.plugins import Counter


async def orders_created(session: AsyncSession, since: datetime, until: datetime) -> list[tuple[datetime, int | None]]:
    """Every order created in `[since, until)`, cancelled ones included (an order was placed)."""
    rows = await session.execute(
        select(orders.c.created_at, orders.c.conversation_id).where(
            orders.c.created_at >= since, orders.c.created_at < until
        )
    )
    return [(when, None if conv is None else int(conv)) for when, conv in rows]


COUNTERS = (Counter("orders", orders_created),)
