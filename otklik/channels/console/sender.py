"""The console channel: the terminal is the buyer's chat (used by `otklik chat`)."""

from __future__ import annotations

from collections.abc import Callable

from otklik.core.channel import ChannelLimits, SendResult
from otklik.core.messages import OutboundMessage, degrade_buttons


class ConsoleSender:
    """Prints replies; buttons become a numbered list the user answers with a number."""

    kind = "console"
    limits = ChannelLimits()
    supports_idempotency = True  # printing twice after a crash is harmless

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self.last_buttons: tuple[tuple[str, str], ...] = ()

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        self.last_buttons = tuple((b.title, b.payload) for b in message.buttons)
        self._write(degrade_buttons(message).text)
        for attachment in message.attachments:
            self._write(f"[{attachment.kind}: {attachment.url or attachment.media_id}]")
        return SendResult(external_id=None)

    async def aclose(self) -> None:
        return None
