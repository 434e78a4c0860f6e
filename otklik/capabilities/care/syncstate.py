"""Per-account WB sync state (cursors, last run, last error) in the `settings` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import Setting
from otklik.clock import utcnow


def state_key(account_id: int) -> str:
    return f"wb_sync:{account_id}"


async def load_state(db: Database, account_id: int) -> dict[str, Any]:
    async with db.read() as session:
        row = await session.get(Setting, state_key(account_id))
        return dict(row.value) if row else {}


async def save_state(session: AsyncSession, account_id: int, **values: Any) -> None:
    """Merge `values` into the account's state (in the caller's transaction)."""
    row = await session.get(Setting, state_key(account_id))
    if row is None:
        session.add(Setting(key=state_key(account_id), value=dict(values), updated_at=utcnow()))
    else:
        row.value, row.updated_at = {**row.value, **values}, utcnow()
