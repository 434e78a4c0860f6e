"""The contract between the dispatcher and a channel adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from otklik.core.messages import OutboundMessage


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider answered: its id for the sent message, when it gives one."""

    external_id: str | None = None


class SendError(Exception):
    """A failed send, classified for the dispatcher.

    - `retry_after` set: the provider asked us to wait (429); the row is retried after it, not counted
      as a failure.
    - `permanent`: retrying cannot help (bad request, chat not found); the row is marked failed.
    - `unreachable`: the buyer blocked the bot; the contact is marked unreachable and not retried.
    - `held`: the channel may not carry this message now (WhatsApp outside the 24-hour window, with no
      template named for the case); the row is kept, marked held, and sent when the buyer writes again.
    - otherwise: transient (5xx, timeout); retried with exponential back-off up to the attempt limit.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        unreachable: bool = False,
        held: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent or unreachable
        self.unreachable = unreachable
        self.held = held


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """Provider limits the dispatcher obeys: the account's limits are shared by every worker
    (`conversations/sharedpace.py`), the chat's are per process."""

    per_second: float | None = None  # per channel account
    per_day: int | None = None  # messages per channel account per UTC day (WhatsApp's messaging tier)
    per_chat_interval: float | None = None  # minimum seconds between two messages to one chat
    per_chat_burst: int = 1  # messages to one chat that may go at once before `per_chat_interval` applies


class ChannelSender(Protocol):
    """Sends one outbound message to one recipient of one channel account.

    `idempotency_key` is stable across retries of the same outbox row; adapters whose provider accepts
    such a key pass it on (then a send interrupted by a crash may be safely repeated).
    """

    kind: str
    limits: ChannelLimits
    supports_idempotency: bool

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult: ...

    async def aclose(self) -> None: ...
