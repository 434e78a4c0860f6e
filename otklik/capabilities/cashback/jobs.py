"""Periodic cashback work under the worker's supervisor: erase payout details N days after payout."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from otklik.adapters.db.engine import Database
from otklik.capabilities.cashback.payouts import erase_due
from otklik.clock import utcnow

log = logging.getLogger(__name__)
ERASE_EVERY_SECONDS = 3600.0


async def erase_loop(db: Database, stop: asyncio.Event, every: float = ERASE_EVERY_SECONDS) -> None:
    """Run `erase_due` now and then every hour until `stop` (several workers may run it: it is idempotent)."""
    while not stop.is_set():
        erased = await erase_due(db, utcnow())
        if erased:
            log.info("cashback: erased payout details of %d paid claims", erased)
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


def erase_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The capability's job (`JobSpec`): the erasure loop on the container's database."""
    return functools.partial(erase_loop, app.db)
