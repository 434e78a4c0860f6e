"""The reminders job: due reminders (24 h and 2 h before, per service; quiet hours already applied when
they were planned) go out as messages with Подтверждаю / Перенести / Отменить; a service with a negative
offset also gets the after-visit message (a 1-5 rating and "Записаться снова") after a visit that was not
cancelled or a no-show.

Each reminder is a durable row claimed with a lease: a crash before the commit leaves it to be claimed again,
the commit that writes the message also marks it `sent` (exactly once). A cancelled or moved booking's
reminders are no longer `pending`. The route is the booking's conversation (`conversation:<id>`); a
booking without one is `skipped` with the route `none` — the seam where the SMS/e-mail fallback of
platform/reach plugs in (`route_for`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from otklik.adapters.db.models import Contact, ContactIdentity, Conversation
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.chat import _send, _wake, after_visit_message, reminder_message
from otklik.clock import utcnow
from otklik.conversations.context import RuntimeContext
from otklik.conversations.reach_route import blocker
from otklik.platform.reach.service import reach

log = logging.getLogger(__name__)
EVERY_SECONDS = 30.0
LEASE = timedelta(seconds=120)


def route_for(row: Any) -> str | None:
    """The booking's own conversation, when it has one (whether it can reach the client now is `_chat_open`)."""
    return f"conversation:{row.conversation_id}" if row.conversation_id else None


async def _chat_state(ctx: RuntimeContext, session: Any, conversation_id: int | None, now: datetime) -> str:
    """Would a reminder written to the booking's conversation reach the client now? "open": yes; "local": the
    web chat, seen only by a visitor on the page (shown at the next visit); "closed": not now (WhatsApp outside
    the 24-hour window would hold it; the account is off); "none": no conversation."""
    if conversation_id is None:
        return "none"
    row = (
        await session.execute(
            select(Conversation.channel_account_id, ContactIdentity.external_id)
            .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
            .where(Conversation.id == conversation_id)
        )
    ).first()
    if row is None:
        return "none"
    if ctx.accounts.get(int(row[0])) is not None and ctx.is_local(int(row[0])):
        return "local"
    return "open" if await blocker(ctx, int(row[0]), str(row[1]), now) is None else "closed"


async def _by_reach(session: Any, booking: Any, text: str, key: str, now: datetime) -> bool:
    """The reminder as a text through `platform.reach` — the client's other chat if one can reach them, else
    SMS, else e-mail — when the booking has a contact and a phone to reach. The phone of the booking becomes
    the contact's `phone` field if it has none (reach reads it there). False: nothing to reach them by."""
    if booking.contact_id is None or not booking.phone:
        return False
    contact = await session.get(Contact, int(booking.contact_id))
    if contact is None:
        return False
    fields = dict(contact.fields or {})
    if not fields.get("phone"):
        fields["phone"] = booking.phone
        contact.fields = fields
        await session.flush()
    await reach(session, int(booking.contact_id), text, dedup_key=key, now=now)
    return True


async def send_due(ctx: RuntimeContext, now: datetime, limit: int = 100) -> int:
    """Send the due reminders; returns how many went out."""
    async with ctx.db.write() as session:
        due = (
            await session.execute(
                select(m.reminders.c.id)
                .where(
                    m.reminders.c.status == "pending", m.reminders.c.due_at <= now,
                    or_(m.reminders.c.lease_until.is_(None), m.reminders.c.lease_until < now),
                )
                .order_by(m.reminders.c.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars().all()  # fmt: skip
        if due:
            await session.execute(update(m.reminders).where(m.reminders.c.id.in_(due)).values(lease_until=now + LEASE))
    sent = 0
    for reminder_id in due:
        conversation_id = None
        async with ctx.db.write() as session:
            rem = (
                await session.execute(select(m.reminders).where(m.reminders.c.id == reminder_id).with_for_update())
            ).first()
            if rem is None or rem.status != "pending":
                continue
            booking = (await session.execute(select(m.bookings).where(m.bookings.c.id == rem.booking_id))).first()
            route = route_for(booking) if booking is not None else None
            after = int(rem.offset_min) < 0
            if booking is None or (
                booking.status not in (*service.ACTIVE, "completed") if after
                else booking.status not in service.ACTIVE or booking.start_at <= now
            ):  # fmt: skip
                status = "skipped"
            elif not after and (chat := await _chat_state(ctx, session, booking.conversation_id, now)) != "open":
                data = await service.booking_data(session, int(booking.id))
                message = reminder_message(data, int(rem.offset_min))
                key = f"booking:{booking.id}:remind:{int(rem.offset_min)}"
                reached = await _by_reach(session, booking, message.text, key, now)
                shown = chat == "local" and await _send(ctx, session, int(booking.conversation_id), message, now=now)
                if shown:  # the web chat keeps it, with its buttons, for the next visit
                    conversation_id = int(booking.conversation_id)
                status = "sent" if reached or shown else "skipped"
                route = f"reach:{key}" if reached else route or "none"
            elif route is None:
                status, route = "skipped", "none"
            else:
                data = await service.booking_data(session, int(booking.id))
                conversation_id = int(booking.conversation_id)
                message = after_visit_message(data) if after else reminder_message(data, int(rem.offset_min))
                ok = await _send(ctx, session, conversation_id, message, now=now)
                status = "sent" if ok else "skipped"
            await session.execute(
                update(m.reminders).where(m.reminders.c.id == reminder_id).values(
                    status=status, route=route, sent_at=now if status == "sent" else None, lease_until=None
                )
            )  # fmt: skip
        if status == "sent":
            sent += 1
            if conversation_id is not None:
                _wake(ctx, conversation_id)
    return sent


async def reminders_loop(ctx: RuntimeContext, stop: asyncio.Event, every: float = EVERY_SECONDS) -> None:
    while not stop.is_set():
        try:
            count = await send_due(ctx, utcnow())
            if count:
                log.info("bookings: %d reminders sent", count)
        except Exception:  # the supervisor restarts crashed loops; one bad row must not stop the others
            log.exception("bookings: reminders failed")
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


def reminders_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    return functools.partial(reminders_loop, app.ctx)
