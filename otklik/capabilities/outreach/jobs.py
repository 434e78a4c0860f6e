"""The broadcast runner (`JobSpec` "outreach-broadcasts"): starts scheduled broadcasts when due and runs a step
of each running one (write delivery rows, queue a window of sends, notice a revoked token, finish)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from otklik.capabilities.outreach import service
from otklik.conversations.context import RuntimeContext

log = logging.getLogger(__name__)
EVERY = 0.25  # seconds between two rounds while something runs
IDLE = 2.0  # … and while nothing does


async def run_once(ctx: RuntimeContext) -> int:
    """One round over every running broadcast; returns how many ran."""
    await service.activate_due(ctx)
    ids = await service.running(ctx)
    for broadcast_id in ids:
        try:
            await service.step(ctx, broadcast_id)
        except Exception:  # one broken broadcast must not stop the others
            log.exception("broadcast %s: step failed", broadcast_id)
    return len(ids)


async def runner_loop(ctx: RuntimeContext, stop: asyncio.Event) -> None:
    while not stop.is_set():
        busy = await run_once(ctx)
        try:
            await asyncio.wait_for(stop.wait(), EVERY if busy else IDLE)
        except TimeoutError:
            pass


def broadcasts_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    return functools.partial(runner_loop, app.ctx)
