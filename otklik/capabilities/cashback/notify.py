"""Messages to a buyer from outside a flow step (a moderator's decision, a nudge, an action's reply with
buttons): written to the outbox in the caller's transaction, delivered after the commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from otklik.conversations import repo
from otklik.conversations.context import RuntimeContext
from otklik.conversations.outbox import enqueue
from otklik.core.messages import Button, OutboundMessage


@dataclass(slots=True)
class Outgoing:
    """Messages queued in one transaction; call `delivered()` after the commit to wake the senders."""

    ctx: RuntimeContext
    conversations: dict[int, bool] = field(default_factory=dict)  # id -> local

    async def send(
        self,
        session: AsyncSession,
        conversation_id: int,
        text: str,
        *,
        now: datetime,
        buttons: tuple[Button, ...] = (),
        author: str = "bot",
    ) -> None:
        conv = await repo.load_conversation(session, conversation_id=conversation_id, lock=False)
        if conv is None or not text.strip():
            return
        local = self.ctx.is_local(conv.channel_account_id)
        message = OutboundMessage(text=text, buttons=buttons)
        await enqueue(
            session, conv.id, conv.channel_account_id, conv.recipient, message, author=author, now=now, local=local
        )
        self.conversations[conv.id] = local

    def delivered(self) -> None:
        for conversation_id, local in self.conversations.items():
            if local:
                self.ctx.notifier.delivered(conversation_id)
            else:
                self.ctx.notifier.outbox_changed()
        self.conversations.clear()
