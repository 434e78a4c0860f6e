"""The status values of the conversation kernel's tables (outbox, messages, timers).

StrEnums: a member *is* its string, so stored rows, ORM comparisons and SQL text are unchanged. Raw SQL is
built from these once, at import (`f"status = '{OutboxStatus.PENDING}'"`), never per call. The conversation's
own status is `otklik.core.conversation.Status`.
"""

from __future__ import annotations

from enum import StrEnum


class OutboxStatus(StrEnum):
    """`outbox.status`: pending -> sending (leased) -> sent | failed | uncertain | held.

    `held`: the channel may not carry the message now (WhatsApp's closed 24-hour window, no template named):
    kept, never sent to be refused, and made pending again when the buyer writes (`conversations.window`)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # a worker stopped while sending and the channel has no idempotency key
    HELD = "held"  # outside the channel's customer-service window; released when the buyer writes again


class MessageStatus(StrEnum):
    """`messages.status`: inbound messages are received; outbound ones are queued, then sent, then the
    channel may report delivered / read / failed. An operator's internal note is never sent."""

    RECEIVED = "received"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    HELD = "held"  # waits for the buyer's next message (a closed 24-hour window)
    NOTE = "note"


class TimerStatus(StrEnum):
    """`timers.status`: pending -> running (leased) -> done."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


class TimerKind(StrEnum):
    """`timers.kind`: a wait node, a question's timeout (both `StartTimer.purpose`), or an action to run."""

    WAIT = "wait"
    TIMEOUT = "timeout"
    ACTION = "action"
