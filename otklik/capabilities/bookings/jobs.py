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

from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.chat import _send, _wake, after_visit_message, reminder_message
from otklik.clock import utcnow
from otklik.conversations.context import RuntimeContext

log = logging.getLogger(__name__)
EVERY_SECONDS = 30.0
LEASE = timedelta(seconds=120)


def route_for(row: Any) -> str | None:
    """Where a reminder goes: the booking's conversation. The SMS/e-mail fallback (platform/reach) plugs
    in here: a booking without a reachable conversation but with a phone or e-mail."""
    return f"conversation:{row.conversation_id}" if row.conversation_id else None


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
        if status == "sent" and conversation_id is not None:
            sent += 1
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
