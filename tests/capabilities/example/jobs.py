"""`example-digest`: marks new notes as digested, now and then (a worker loop under the supervisor)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update

from tests.capabilities.example.models import notes

EVERY = 0.05


def digest_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with app.db.write() as session:
                await session.execute(update(notes).where(notes.c.digested == 0).values(digested=1))
            try:
                await asyncio.wait_for(stop.wait(), EVERY)
            except TimeoutError:
                pass

    return loop
