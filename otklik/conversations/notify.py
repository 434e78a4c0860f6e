"""In-process wake-ups: the dispatcher after a commit, web-chat long-polls after a delivery.

Across processes nothing is pushed; waiters also poll the database on a short interval.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict


class Notifier:
    def __init__(self, max_conversations: int = 100_000) -> None:
        self.outbox = asyncio.Event()
        self.timers = asyncio.Event()
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._versions: OrderedDict[int, int] = OrderedDict()
        self._max = max_conversations

    def outbox_changed(self) -> None:
        self.outbox.set()

    def version(self, conversation_id: int) -> int:
        """How many deliveries this process has seen for the conversation (read it before querying)."""
        return self._versions.get(conversation_id, 0)

    def delivered(self, conversation_id: int) -> None:
        self._versions[conversation_id] = self._versions.get(conversation_id, 0) + 1
        self._versions.move_to_end(conversation_id)
        if len(self._versions) > self._max:
            self._versions.popitem(last=False)
        for event in self._waiters.get(conversation_id, ()):
            event.set()

    async def wait_delivery(self, conversation_id: int, timeout: float, seen: int | None = None) -> None:
        """Return when something was delivered to the conversation after version `seen` (at once if
        that already happened: no wake-up is lost between a query and this call), or after `timeout`."""
        if seen is not None and self.version(conversation_id) != seen:
            return
        event = asyncio.Event()
        waiters = self._waiters[conversation_id]
        waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(conversation_id, None)
