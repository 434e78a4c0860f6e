"""The `channel` route of `platform.reach`: a text to the contact on the channel of their latest conversation,
written to the kernel's outbox (the dispatcher sends it like any bot message), or a clear "cannot reach them
there" (`SendError(permanent=True)`) so `reach` goes on to SMS or e-mail:

- no conversation, the contact unsubscribed or unreachable, its channel account not enabled → cannot;
- the web chat (a local kind): the visitor's page may be closed, nobody would see it → cannot;
- a channel with a 24-hour window (WhatsApp): outside the window a free text would be held until the customer
  writes again, which a reminder cannot wait for → cannot (a template reminder is the caller's own message).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from otklik.adapters.db.models import Contact, ContactIdentity, Conversation
from otklik.clock import utcnow
from otklik.conversations import window
from otklik.conversations.context import RuntimeContext
from otklik.conversations.outbox import enqueue
from otklik.core.channel import SendError
from otklik.core.messages import OutboundMessage

WINDOWED = frozenset({"whatsapp"})


async def blocker(
    ctx: RuntimeContext,
    account_id: int,
    recipient: str,
    now: datetime,
    *,
    windowed: frozenset[str] = WINDOWED,
    margin: float = 300.0,
) -> str | None:
    """Why a text written now to `recipient` on this channel account would not reach them now (None: it
    would): the account is not enabled, it is the web chat (only a visitor on the page sees it), or the
    24-hour window of a windowed channel is closed. Also used by capabilities choosing where a reminder
    goes (bookings)."""
    account = ctx.accounts.get(account_id)
    if account is None:
        return "channel: the conversation's channel account is not enabled"
    if ctx.is_local(account_id):
        return f"channel: {account.kind} reaches only a visitor who is on the page"
    if account.kind in windowed:
        last = await window.last_inbound(ctx.db, account_id, recipient)
        if not window.is_open(last, now, timedelta(seconds=margin)):
            return f"channel: {account.kind}: outside the 24-hour window"
    return None


class ChannelReach:
    def __init__(self, ctx: RuntimeContext, *, windowed: frozenset[str] = WINDOWED, margin: float = 300.0) -> None:
        self.ctx, self.windowed, self.margin = ctx, windowed, margin

    async def __call__(self, contact_id: int, text: str, key: str) -> str | None:
        ctx, now = self.ctx, utcnow()
        query = (
            select(
                Conversation.id,
                Conversation.channel_account_id,
                ContactIdentity.external_id,
                Contact.subscribed,
                Contact.reachable,
            )
            .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Conversation.contact_id == contact_id)
            .order_by(Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc())
            .limit(1)
        )
        async with ctx.db.read() as session:
            row = (await session.execute(query)).first()
        if row is None:
            raise SendError("channel: the contact has no conversation", permanent=True)
        conversation_id, account_id, recipient, subscribed, reachable = row
        if not subscribed or not reachable:
            raise SendError("channel: the contact unsubscribed or cannot be reached there", permanent=True)
        reason = await blocker(ctx, int(account_id), str(recipient), now, windowed=self.windowed, margin=self.margin)
        if reason is not None:
            raise SendError(reason, permanent=True)
        account = ctx.accounts[int(account_id)]
        async with ctx.db.write() as session:
            message_id = await enqueue(
                session, int(conversation_id), int(account_id), str(recipient), OutboundMessage(text=text),
                author="bot", now=now, channel=account.kind,
            )  # fmt: skip
        return f"message:{message_id}"
