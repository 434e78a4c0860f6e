"""What a capability's demo seeder gets (`Capability.demo`): `async seed(session, demo: DemoSeed)`.

`otklik.demo_data` creates the platform's demo rows (a demo WB account, demo buyers with a closed
conversation each), then calls each capability's seeder in the same transaction. A seeder adds its rows
through `demo.add(table, row)`, which records their ids so "Remove demo data" deletes exactly them: the
capability's `demo_tables` (children first) go before the platform's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from otklik.adapters.crypto import Vault

Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class DemoConversation:
    """A demo buyer's closed conversation the platform created: the buyer's first words and when."""

    id: int
    contact_id: int
    text: str  # what the buyer wrote (the conversation's first message)
    at: datetime


@dataclass(frozen=True, slots=True)
class DemoSeed:
    session: AsyncSession
    now: datetime
    vault: Vault
    wb_account_id: int  # the demo Wildberries account (no key: the sync job skips it)
    chat_account_id: int  # the web chat account the demo conversations are on
    conversations: tuple[DemoConversation, ...]
    record: Callable[[str, Any], None]

    def add(self, table: str, row: Row) -> Row:
        """Add an ORM row and record it (its id, after the flush) for removal; `table` must be one of the
        capability's `demo_tables`."""
        self.session.add(row)
        self.record(table, row)
        return row
