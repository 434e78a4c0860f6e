"""Carts left untouched expire: a worker loop finds open carts past their `expires_at` (durable: the time
is on the cart row, so a restart loses nothing), empties each one in a transaction that locks its
conversation, and queues a notice to the buyer in that same transaction. Closing the cart's generation is
conditional on the generation it read, so two workers (or a buyer writing at that moment) never send
the notice twice. A cart reached by the buyer after its time but before the loop is closed by the turn
itself (`chat.Turn.cart`)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from otklik.capabilities.sales import cart as carts
from otklik.capabilities.sales.models import cart_lines
from otklik.capabilities.sales.models import carts as cart_table
from otklik.clock import utcnow
from otklik.conversations import repo
from otklik.conversations.context import RuntimeContext
from otklik.conversations.outbox import enqueue
from otklik.core.messages import Button, OutboundMessage

log = logging.getLogger(__name__)
EVERY_SECONDS = 60.0
NOTICE = ("Tu carrito venció porque pasaron varios días sin cambios, y lo vacié: los precios y el stock "
          "pueden haber cambiado. Si querés, lo armamos de nuevo con los valores de hoy.")  # fmt: skip


async def expire_due(ctx: RuntimeContext, now: datetime, limit: int = 200) -> int:
    """Expire the due carts (with lines) and notify their buyers; returns how many."""
    due_query = (
        select(cart_table.c.id, cart_table.c.conversation_id)
        .where(cart_table.c.expires_at <= now, cart_table.c.id.in_(select(cart_lines.c.cart_id)))
        .order_by(cart_table.c.expires_at)
        .limit(limit)
    )
    async with ctx.db.read() as session:
        due = [(int(a), int(b)) for a, b in (await session.execute(due_query)).all()]
    expired = 0
    for cart_id, conversation_id in due:
        local = False
        async with ctx.db.write() as session:
            conv = await repo.load_conversation(session, conversation_id=conversation_id, lock=True)
            tx = repo.as_tx(session)
            cart = await carts.by_id(tx, cart_id)
            if cart is None or cart.expires_at is None or cart.expires_at > now or conv is None:
                continue  # the buyer touched it meanwhile
            if not await carts.close_generation(tx, cart, now):
                continue
            local = ctx.is_local(conv.channel_account_id)
            message = OutboundMessage(text=NOTICE, buttons=(Button("Ver productos", "intent:product_search"),))
            await enqueue(session, conv.id, conv.channel_account_id, conv.recipient, message, author="bot",
                          now=now, local=local)  # fmt: skip
        expired += 1
        if local:
            ctx.notifier.delivered(conversation_id)
        else:
            ctx.notifier.outbox_changed()
    return expired


async def expiry_loop(ctx: RuntimeContext, stop: asyncio.Event, every: float = EVERY_SECONDS) -> None:
    while not stop.is_set():
        try:
            count = await expire_due(ctx, utcnow())
            if count:
                log.info("sales: %d carts expired", count)
        except Exception:  # the supervisor restarts crashed loops; a bad row must not stop the others
            log.exception("sales: cart expiry failed")
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


def cart_expiry_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The capability's job (`JobSpec`): the expiry loop on the container's runtime."""
    return functools.partial(expiry_loop, app.ctx)
