"""In-process wake-ups: the dispatcher after a commit, web-chat long-polls after a delivery.

Across processes nothing is pushed; waiters also poll the database on a short interval.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Notifier:
    def __init__(self) -> None:
        self.outbox = asyncio.Event()
        self.timers = asyncio.Event()
        self._conversations: dict[int, set[asyncio.Event]] = defaultdict(set)

    def outbox_changed(self) -> None:
        self.outbox.set()

    def delivered(self, conversation_id: int) -> None:
        for event in self._conversations.get(conversation_id, ()):
            event.set()

    async def wait_delivery(self, conversation_id: int, timeout: float) -> None:
        """Return when something was delivered to the conversation, or after `timeout`."""
        event = asyncio.Event()
        waiters = self._conversations[conversation_id]
        waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiters.discard(event)
            if not waiters:
                self._conversations.pop(conversation_id, None)
