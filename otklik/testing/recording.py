"""A recording `ChannelSender` for tests: remembers every send and can be scripted to fail."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from otklik.core.channel import ChannelLimits, SendError, SendResult
from otklik.core.messages import OutboundMessage


@dataclass(frozen=True, slots=True)
class SentRecord:
    recipient: str
    message: OutboundMessage
    idempotency_key: str
    at: float


@dataclass
class RecordingSender:
    """Sends nowhere; `failures` is a queue of exceptions raised by the next sends (None = succeed)."""

    kind: str = "recording"
    limits: ChannelLimits = field(default_factory=ChannelLimits)
    supports_idempotency: bool = False
    delay: float = 0.0
    sent: list[SentRecord] = field(default_factory=list)
    failures: deque[SendError | None] = field(default_factory=deque)
    unreachable: set[str] = field(default_factory=set)
    calls: int = 0

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if recipient in self.unreachable:
            raise SendError("Forbidden: bot was blocked by the user", unreachable=True)
        if self.failures:
            failure = self.failures.popleft()
            if failure is not None:
                raise failure
        self.sent.append(SentRecord(recipient, message, idempotency_key, time.monotonic()))
        return SendResult(external_id=f"ext-{len(self.sent)}")

    def texts(self, recipient: str | None = None) -> list[str]:
        return [r.message.text for r in self.sent if recipient is None or r.recipient == recipient]

    async def aclose(self) -> None:
        return None
