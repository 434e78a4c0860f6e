"""What the metrics layer counts of cashback (`Capability.counters`): the claims started, by conversation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.cashback.models import CashbackClaim as Claim
from otklik.platform.plugins import Counter


async def claims_started(session: AsyncSession, since: datetime, until: datetime) -> list[tuple[datetime, int | None]]:
    """Every claim started in `[since, until)`, whatever became of it."""
    rows = await session.execute(
        select(Claim.created_at, Claim.conversation_id).where(Claim.created_at >= since, Claim.created_at < until)
    )
    return [(when, int(conv)) for when, conv in rows]


COUNTERS = (Counter("claims", claims_started),)
