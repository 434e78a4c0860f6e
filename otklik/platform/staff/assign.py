"""Who gets it: a member named for one of the keys (a rule), else the next one in the pack's round robin.

The rotation of each pool is one `staff_rotation` row: the member assigned last. `assign` runs in the
caller's transaction (the one that creates the order or booking) and locks that row — `SELECT … FOR UPDATE`
on PostgreSQL, the write lock every SQLite write transaction takes (`BEGIN IMMEDIATE`) — so two concurrent
assignments never pick from the same place, and the order survives restarts. Members added later join the
rotation at their place in id order; removed or deactivated ones are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import StaffRotation
from otklik.clock import utcnow
from otklik.platform.staff.members import Member, members_of


def _pool(pack: str, key: str | None) -> str:
    return f"{pack}|{key}" if key else pack


async def assign(
    session: AsyncSession, pack: str, *, keys: Iterable[str] = (), now: datetime | None = None
) -> Member | None:
    """The member for a new piece of work of `pack`, or None when the pack has no active member.

    `keys` (e.g. `("brand:hikvision", "category:nvr")`, in the caller's order of preference): the first key
    some active member is named for (`StaffMember.rules`) restricts the choice to those members, with a
    rotation of its own; without such a key the pack's rotation decides."""
    members = await members_of(session, pack)
    if not members:
        return None
    candidates, key = members, None
    for raw in keys:
        wanted = (raw or "").strip().lower()
        named = [m for m in members if wanted and wanted in m.rules]
        if named:
            candidates, key = named, wanted
            break
    pool = _pool(pack, key)
    now = now or utcnow()
    last = await _lock(session, pool, now)
    pick = next((m for m in candidates if last is not None and m.id > last), candidates[0])
    await session.execute(
        update(StaffRotation)
        .where(StaffRotation.pool == pool)
        .values(last_staff_id=pick.id, turns=StaffRotation.turns + 1, updated_at=now)
    )
    return pick


async def _lock(session: AsyncSession, pool: str, now: datetime) -> int | None:
    """Make sure the pool's row exists, lock it, return the member assigned last."""
    dialect = session.get_bind().dialect.name
    values = {"pool": pool, "last_staff_id": None, "turns": 0, "updated_at": now}
    if dialect == "postgresql":
        await session.execute(pg_insert(StaffRotation).values(**values).on_conflict_do_nothing(index_elements=["pool"]))
    else:
        await session.execute(
            sqlite_insert(StaffRotation).values(**values).on_conflict_do_nothing(index_elements=["pool"])
        )
    last = await session.scalar(select(StaffRotation.last_staff_id).where(StaffRotation.pool == pool).with_for_update())
    return None if last is None else int(last)
