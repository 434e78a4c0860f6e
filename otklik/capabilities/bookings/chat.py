"""What the bot writes outside a flow step: the first message to a lead's contact (the nearest slots as
buttons), reminders with Подтверждаю / Перенести / Отменить, and the answers to those buttons.

Button payloads: `bk:slot:<service>:<staff>:<unix start>`, `bk:more:<service>` ("другие даты"),
`bk:confirm:<booking>`, `bk:move:<booking>`, `bk:cancel:<booking>`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.schedule import load_hours
from otklik.clock import utcnow
from otklik.conversations import repo
from otklik.conversations.context import RuntimeContext
from otklik.conversations.outbox import enqueue
from otklik.core.errors import Conflict, NotFound
from otklik.core.messages import Button, OutboundMessage
from otklik.platform.webkit.params import BIGINT_MAX

MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
          "ноября", "декабря")  # fmt: skip
WEEKDAYS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")


def _id(text: str) -> int | None:
    """A row id from a payload: 1..BIGINT_MAX digits, else None (a forged payload)."""
    if not text.isascii() or not text.isdigit() or len(text) > 19 or not 1 <= int(text) <= BIGINT_MAX:
        return None
    return int(text)


def when_text(moment: datetime) -> str:
    """`сб 12 декабря, 15:00` (in the moment's own zone)."""
    return f"{WEEKDAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]}, {moment:%H:%M}"


def slot_buttons(slots: list[service.Slot], zones: dict[int, str], service_id: int) -> tuple[Button, ...]:
    from zoneinfo import ZoneInfo

    buttons = [
        Button(
            f"{when_text(s.start.astimezone(ZoneInfo(zones[s.staff_id])))} · {s.staff}",
            f"bk:slot:{service_id}:{s.staff_id}:{int(s.start.timestamp())}",
        )
        for s in service.spread(slots, 6)
    ]
    return (*buttons, Button("Другие даты", f"bk:more:{service_id}"))


async def _send(ctx: RuntimeContext, session: AsyncSession, conversation_id: int, message: OutboundMessage,
                *, now: datetime) -> bool:  # fmt: skip
    conv = await repo.load_conversation(session, conversation_id=conversation_id, lock=False)
    if conv is None:
        return False
    local = ctx.is_local(conv.channel_account_id)
    now = min(now, utcnow())  # due at once: a reminder computed for a later moment (a test's clock) still goes
    await enqueue(session, conv.id, conv.channel_account_id, conv.recipient, message, author="bot", now=now,
                  local=local)  # fmt: skip
    return True


def _wake(ctx: RuntimeContext, conversation_id: int) -> None:
    ctx.notifier.delivered(conversation_id)
    ctx.notifier.outbox_changed()


async def write_first(ctx: RuntimeContext, contact_id: int, service_id: int, *, now: datetime) -> bool:
    """A lead's contact reachable on a channel: the bot writes first with the nearest slots. True if sent."""
    async with ctx.db.write() as session:
        conversation_id = await service.conversation_of(session, contact_id)
        if conversation_id is None:
            return False
        try:
            name = (await service.get_service(session, service_id)).name
        except NotFound:
            return False
        slots = await service.find_slots(session, service_id, now=now, days=7, limit=60)
        if not slots:
            return False
        zones = {
            int(r.id): load_hours(r.hours).timezone
            for r in (await session.execute(select(m.staff.c.id, m.staff.c.hours))).all()
        }
        text = f"Здравствуйте! Вы оставили заявку на «{name}». Ближайшее свободное время:"
        sent = await _send(ctx, session, conversation_id, OutboundMessage(text, slot_buttons(slots, zones, service_id)),
                           now=now)  # fmt: skip
    if sent:
        _wake(ctx, conversation_id)
    return sent


def reminder_message(data: dict[str, object], offset_min: int) -> OutboundMessage:
    ahead = "завтра" if offset_min >= 720 else "скоро"
    start = datetime.fromisoformat(str(data["start"]))
    text = (f"Напоминаем: {ahead} вы записаны на «{data['service']}» к {data['staff']} — {when_text(start)}. "
            "Подтвердите, пожалуйста.")  # fmt: skip
    booking = data["booking_id"]
    return OutboundMessage(
        text,
        (Button("Подтверждаю", f"bk:confirm:{booking}"), Button("Перенести", f"bk:move:{booking}"),
         Button("Отменить", f"bk:cancel:{booking}")),
    )  # fmt: skip


def after_visit_message(data: dict[str, object]) -> OutboundMessage:
    booking = data["booking_id"]
    stars = tuple(Button("★" * n, f"bk:rate:{booking}:{n}") for n in range(5, 0, -1))
    return OutboundMessage(
        f"Спасибо, что были у нас! Как вам «{data['service']}» у мастера {data['staff']}? Оцените, пожалуйста.",
        (*stars, Button("Записаться снова", f"bk:svc:{data['service_id']}")),
    )


async def answer_button(ctx: RuntimeContext, conversation_id: int, payload: str, *, now: datetime) -> str | None:
    """A tap on a reminder's button in `conversation_id`: confirm, cancel (frees the slot at once) or move
    (the nearest slots are offered); the answer is written to the conversation. Only the booking of that
    very conversation is touched. Returns what happened ("confirmed", "cancelled", "offered", "stale") or
    None for a payload that is not ours."""
    async with ctx.db.write() as session:
        answered = await answer(session, conversation_id, payload, now=now)
        if answered is None:
            return None
        await _send(ctx, session, conversation_id, answered[1], now=now)
    _wake(ctx, conversation_id)
    return answered[0]


async def answer(
    session: AsyncSession, conversation_id: int, payload: str, *, now: datetime
) -> tuple[str, OutboundMessage] | None:
    """`answer_button` in the caller's transaction, the reply returned (the booking talk sends it as its
    action's message, after the flow has moved on)."""
    parts = payload.split(":")
    if len(parts) != 3 or parts[0] != "bk" or parts[1] not in ("confirm", "cancel", "move"):
        return None
    booking_id = _id(parts[2])
    if booking_id is None:
        return None
    row = (await session.execute(select(m.bookings).where(m.bookings.c.id == booking_id))).first()
    if row is None or row.conversation_id != conversation_id:
        return None
    outcome = "stale"
    buttons: tuple[Button, ...] = ()
    try:
        if parts[1] == "confirm":
            await service.set_status(session, booking_id, "confirmed", now=now)
            text, outcome = "Спасибо, ждём вас!", "confirmed"
        elif parts[1] == "cancel":
            await service.set_status(session, booking_id, "cancelled", now=now)
            text, outcome = "Запись отменена. Будем рады видеть вас снова.", "cancelled"
        else:
            if row.status not in service.ACTIVE:
                raise Conflict(f"запись {'отменена' if row.status == 'cancelled' else 'уже в прошлом'}")
            slots = await service.find_slots(
                session, int(row.service_id), now=now, days=7, limit=60, skip_booking=booking_id
            )
            hours = (await session.execute(select(m.staff.c.id, m.staff.c.hours))).all()
            zones = {int(r.id): load_hours(r.hours).timezone for r in hours}
            text, buttons = "Выберите новое время:", slot_buttons(slots, zones, int(row.service_id))
            outcome = "offered"
    except Conflict as exc:
        text = f"Не получилось: {exc.user_message}"
    return outcome, OutboundMessage(text, buttons)
