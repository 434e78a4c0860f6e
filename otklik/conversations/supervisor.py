"""One owner for background loops: keeps references, logs failures, restarts with back-off, cancels on
shutdown. No orphan tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Loop = Callable[[asyncio.Event], Awaitable[None]]


class Supervisor:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, loop: Loop) -> None:
        """Start a named background loop once; a second start of a running name is ignored (an orphaned
        task would outlive `close`)."""
        running = self._tasks.get(name)
        if running is not None and not running.done():
            return
        self._tasks[name] = asyncio.get_running_loop().create_task(self._keep(name, loop), name=name)

    def names(self) -> list[str]:
        """The loops started (running or restarting), by name."""
        return sorted(self._tasks)

    async def _keep(self, name: str, loop: Loop) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                await loop(self.stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background loop %s failed; restarting in %.1fs", name, delay)
                try:
                    await asyncio.wait_for(self.stop.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, 30.0)

    async def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        tasks = list(self._tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
