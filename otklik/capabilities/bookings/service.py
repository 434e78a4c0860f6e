"""The bookings use cases shared by the API, the admin, the CLI and the chat: the schedule (services, staff,
resources), slots, booking with no double booking, moves, status changes, reminders and leads.

No double booking is guaranteed by the database: `book` and `move` lock the staff member's row (and the
resource's) — `SELECT … FOR UPDATE` on PostgreSQL; on SQLite every write transaction is `BEGIN IMMEDIATE`,
so writers are serialised — then check the span against the active bookings and insert, all in one
transaction. Two concurrent bookers of one slot: the second waits for the first's commit, sees the slot
taken and gets `SlotTaken` with the new free slots.

Every change emits its event (`booking.*`, `lead.created`, docs/bookings.md) in its own transaction."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount, Contact, Conversation
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings.schedule import MAX_DAYS, Span, free_slots, load_hours, on_grid
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.platform.business_hours import HoursError, Schedule, parse_schedule
from otklik.platform.staff.outbox import StaffMessage, notify_pack
from otklik.platform.webhooks import emit

ACTIVE = ("pending", "confirmed")  # statuses that hold a slot
STATUSES = ("pending", "confirmed", "completed", "no_show", "cancelled")
MOVES: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"confirmed", "cancelled", "completed", "no_show"}),
    "confirmed": frozenset({"completed", "cancelled", "no_show"}),
    "completed": frozenset(),
    "no_show": frozenset({"completed"}),  # marked by mistake
    "cancelled": frozenset(),
}
MIN_NOTICE = timedelta(minutes=60)
DEFAULT_REMINDERS = (1440, 120)
QUIET = (time(21, 0), time(9, 0))  # no reminder between these local times (moved, see `reminder_due`)
LEAD_DEDUP = timedelta(hours=24)
REGION = "RU"
MAX_NAME = 120
MAX_CLIENT_NAME = 200
MAX_NOTES = 2000
SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class SlotTaken(Conflict):
    """The slot is no longer free (taken meanwhile, or never was); `alternatives` are free starts."""

    def __init__(self, message: str, alternatives: Sequence[datetime] = ()) -> None:
        super().__init__(message)
        self.alternatives = list(alternatives)


def _new_id(result: Any) -> int:
    return int(result.inserted_primary_key[0])


# --- schedule ---------------------------------------------------------------------------------------


def _name(raw: object, what: str, limit: int = MAX_NAME) -> str:
    name = " ".join(str(raw or "").split())
    if not name or len(name) > limit:
        raise InvalidInput(f"{what}: 1 to {limit} characters")
    return name


def money(raw: object) -> Decimal:
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        raise InvalidInput("price: a number like 1500 or 1500.00") from None
    if (
        not value.is_finite()
        or value < 0
        or value > Decimal("9999999999.99")
        or value != value.quantize(Decimal("0.01"))
    ):
        raise InvalidInput("price: 0 to 9999999999.99, at most 2 decimals")
    return value


def _minutes(raw: object, what: str, low: int, high: int) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidInput(f"{what}: a whole number of minutes") from None
    if not low <= value <= high:
        raise InvalidInput(f"{what}: {low} to {high} minutes")
    return value


def _offset(raw: object) -> int:
    """A reminder offset: minutes before the start (15 .. 14 days), or negative: the after-visit message
    (rating and rebooking) that many minutes after the end (-15 .. -1 day)."""
    value = _minutes(raw, "reminders", -1440, 14 * 1440)
    if -15 < value < 15:
        raise InvalidInput("reminders: at least 15 minutes before the start, or -15 and less (after the end)")
    return value


async def add_resource(session: AsyncSession, name: str, *, now: datetime) -> int:
    result = await session.execute(insert(m.resources).values(name=_name(name, "name"), created_at=now))
    return _new_id(result)


async def add_service(
    session: AsyncSession,
    *,
    name: str,
    duration_min: object,
    price: object,
    now: datetime,
    buffer_min: object = 0,
    online: bool = True,
    reminders: Sequence[int] = DEFAULT_REMINDERS,
    resource_id: int | None = None,
) -> int:
    offsets = sorted({_offset(r) for r in reminders}, reverse=True)[:5]
    values = {
        "name": _name(name, "name"), "duration_min": _minutes(duration_min, "duration", 15, 720),
        "buffer_min": _minutes(buffer_min, "buffer", 0, 240), "price": money(price), "online": bool(online),
        "reminders": offsets, "resource_id": resource_id, "active": True, "created_at": now,
    }  # fmt: skip
    if await session.scalar(select(m.services.c.id).where(m.services.c.name == values["name"])) is not None:
        raise Conflict(f"a service named {values['name']!r} exists")
    result = await session.execute(insert(m.services).values(**values))
    return _new_id(result)


def check_hours(hours: Mapping[str, Any]) -> Schedule:
    """A staff member's hours as `platform.business_hours` reads them (`week`, `holidays` = days off,
    `timezone`); raises `HoursError` naming every problem."""
    return parse_schedule({**hours, "enabled": True})


async def add_staff(
    session: AsyncSession, *, name: str, hours: Mapping[str, Any], services: Sequence[int], now: datetime
) -> int:
    schedule = check_hours(hours)
    known = set((await session.execute(select(m.services.c.id).where(m.services.c.id.in_(list(services))))).scalars())
    missing = [s for s in services if s not in known]
    if missing:
        raise InvalidInput(f"services: no service {missing[0]}")
    clean = _name(name, "name")
    if await session.scalar(select(m.staff.c.id).where(m.staff.c.name == clean)) is not None:
        raise Conflict(f"a staff member named {clean!r} exists")
    result = await session.execute(
        insert(m.staff).values(name=clean, hours=schedule.to_dict(), active=True, created_at=now)
    )
    staff_id = _new_id(result)
    if known:
        await session.execute(insert(m.staff_services), [{"staff_id": staff_id, "service_id": s} for s in known])
    return staff_id


async def set_hours(session: AsyncSession, staff_id: int, hours: Mapping[str, Any]) -> None:
    schedule = check_hours(hours)
    done = await session.execute(update(m.staff).where(m.staff.c.id == staff_id).values(hours=schedule.to_dict()))
    if not done.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"no staff member {staff_id}")


# --- slots --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    staff_id: int
    staff: str
    start: datetime
    end: datetime


async def get_service(session: AsyncSession, service_id: int) -> Any:
    row = (await session.execute(select(m.services).where(m.services.c.id == service_id))).first()
    if row is None or not row.active:
        raise NotFound(f"no service {service_id}")
    return row


async def _staff_for(session: AsyncSession, service_id: int, staff_id: int | None) -> list[Any]:
    query = (
        select(m.staff)
        .join(m.staff_services, m.staff_services.c.staff_id == m.staff.c.id)
        .where(m.staff_services.c.service_id == service_id, m.staff.c.active.is_(True))
        .order_by(m.staff.c.id)
    )
    if staff_id is not None:
        query = query.where(m.staff.c.id == staff_id)
    return list((await session.execute(query)).all())


async def _busy(
    session: AsyncSession, *, staff_id: int, resource_id: int | None, start: datetime, end: datetime,
    skip: int | None = None,
) -> list[Span]:  # fmt: skip
    who = m.bookings.c.staff_id == staff_id
    if resource_id is not None:
        who = or_(who, m.bookings.c.resource_id == resource_id)
    query = select(m.bookings.c.start_at, m.bookings.c.busy_until).where(
        who, m.bookings.c.status.in_(ACTIVE), m.bookings.c.start_at < end, m.bookings.c.busy_until > start
    )
    if skip is not None:
        query = query.where(m.bookings.c.id != skip)
    return [Span(a, b) for a, b in (await session.execute(query)).all()]


async def find_slots(
    session: AsyncSession,
    service_id: int,
    *,
    now: datetime,
    first_day: date | None = None,
    days: int = 7,
    staff_id: int | None = None,
    limit: int = 200,
    skip_booking: int | None = None,
    min_notice: timedelta = MIN_NOTICE,
) -> list[Slot]:
    """Free slots of the service (with one staff member, or any who does it), earliest first."""
    service = await get_service(session, service_id)
    people = await _staff_for(session, service_id, staff_id)
    if staff_id is not None and not people:
        raise InvalidInput(f"staff {staff_id} does not do {service.name}")
    days = max(1, min(days, MAX_DAYS))
    found: list[Slot] = []
    for person in people:
        hours = load_hours(person.hours)
        day0 = first_day or now.astimezone(hours.zone).date()
        window_start = datetime.combine(day0 - timedelta(days=1), time(0), hours.zone)
        window_end = datetime.combine(day0 + timedelta(days=days + 1), time(0), hours.zone)
        busy = await _busy(
            session, staff_id=person.id, resource_id=service.resource_id, start=window_start, end=window_end,
            skip=skip_booking,
        )  # fmt: skip
        length = timedelta(minutes=service.duration_min)
        for start in free_slots(
            hours, duration_min=service.duration_min, buffer_min=service.buffer_min, busy=busy, first_day=day0,
            days=days, now=now, min_notice=min_notice,
        ):  # fmt: skip
            found.append(Slot(int(person.id), str(person.name), start, start + length))
    found.sort(key=lambda s: (s.start, s.staff_id))
    return found[:limit]


def spread(slots: Sequence[Slot], count: int = 6) -> list[Slot]:
    """Up to `count` slots to offer as buttons: the earliest, then spread over the rest of the list."""
    if len(slots) <= count:
        return list(slots)
    step = len(slots) / count
    return [slots[int(i * step)] for i in range(count)]


# --- bookings ---------------------------------------------------------------------------------------


def phone_e164(raw: object, region: str = REGION) -> str:
    text = str(raw or "").strip()
    if not text or len(text) > 32:
        raise InvalidInput("phone: a phone number like +7 912 345-67-89")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("phone: a phone number like +7 912 345-67-89") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone: not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class NewBooking:
    service_id: int
    staff_id: int
    start: datetime
    client_name: str
    phone: str | None = None
    contact_id: int | None = None
    conversation_id: int | None = None
    lead_id: int | None = None
    source: str = "admin"
    source_detail: str | None = None
    notes: str = ""
    status: str = "pending"
    by_staff: bool = False  # an admin may book a service that is not online-bookable, and at short notice
    extra: dict[str, Any] = field(default_factory=dict)


async def _lock(session: AsyncSession, staff_id: int, resource_id: int | None) -> Any:
    """Lock the staff member's row (and the resource's): concurrent bookers of either wait here."""
    person = (await session.execute(select(m.staff).where(m.staff.c.id == staff_id).with_for_update())).first()
    if person is None or not person.active:
        raise InvalidInput(f"staff: no staff member {staff_id}")
    if resource_id is not None:
        await session.execute(select(m.resources.c.id).where(m.resources.c.id == resource_id).with_for_update())
    return person


async def _check_free(
    session: AsyncSession, service: Any, person: Any, start: datetime, *, now: datetime, skip: int | None,
    min_notice: timedelta,
) -> None:  # fmt: skip
    hours = load_hours(person.hours)
    if start.tzinfo is None:
        raise InvalidInput("start: a time with its offset (e.g. 2026-12-12T15:00:00+03:00)")
    if not on_grid(start, hours.zone):
        raise InvalidInput("start: on the quarter hour (:00, :15, :30, :45)")
    if start < now:
        raise InvalidInput("start: in the past")
    day = start.astimezone(hours.zone).date()
    free = await find_slots(
        session, int(service.id), now=now, first_day=day, days=1, staff_id=int(person.id), limit=10_000,
        skip_booking=skip, min_notice=min_notice,
    )  # fmt: skip
    if any(s.start == start for s in free):
        return
    if day in hours.holidays or not hours.week[day.weekday()]:
        raise SlotTaken(f"{person.name} does not work on {day.isoformat()}")
    raise SlotTaken(f"{start.astimezone(hours.zone):%Y-%m-%d %H:%M} is not free with {person.name}")


async def book(session: AsyncSession, new: NewBooking, *, now: datetime) -> int:
    """Book in the caller's write transaction (`db.write()`); raises `SlotTaken`, `InvalidInput`."""
    service = await get_service(session, new.service_id)
    if not service.online and not new.by_staff:
        raise InvalidInput(f"{service.name} is booked by phone only")
    if not await session.scalar(
        select(func.count())
        .select_from(m.staff_services)
        .where(m.staff_services.c.staff_id == new.staff_id, m.staff_services.c.service_id == new.service_id)
    ):
        raise InvalidInput(f"staff {new.staff_id} does not do {service.name}")
    if new.status not in ACTIVE:
        raise InvalidInput("status: pending or confirmed")
    if not SOURCE.fullmatch(new.source):
        raise InvalidInput("source: lower-case letters, digits, _ or -")
    client = _name(new.client_name, "client_name", MAX_CLIENT_NAME)
    notes = str(new.notes or "")
    if len(notes) > MAX_NOTES:
        raise InvalidInput(f"notes: at most {MAX_NOTES} characters")
    person = await _lock(session, new.staff_id, service.resource_id)
    await _check_free(
        session, service, person, new.start, now=now, skip=None,
        min_notice=timedelta(0) if new.by_staff else MIN_NOTICE,
    )  # fmt: skip
    end = new.start + timedelta(minutes=service.duration_min)
    result = await session.execute(
        insert(m.bookings).values(
            contact_id=new.contact_id, conversation_id=new.conversation_id, lead_id=new.lead_id,
            service_id=service.id, staff_id=person.id, resource_id=service.resource_id, start_at=new.start,
            end_at=end, busy_until=end + timedelta(minutes=service.buffer_min), status=new.status,
            client_name=client, phone=new.phone, source=new.source,
            source_detail=(new.source_detail or None) and str(new.source_detail)[:200], notes=notes,
            price=service.price, created_at=now, updated_at=now,
        )
    )  # fmt: skip
    booking_id = _new_id(result)
    if new.lead_id is not None:
        await session.execute(
            update(m.leads).where(m.leads.c.id == new.lead_id).values(status="booked", updated_at=now)
        )
    await _plan_reminders(session, booking_id, now=now)
    await _emit_booking(session, "booking.created", booking_id, now=now)
    return booking_id


async def book_or_offer(db: Database, new: NewBooking, *, now: datetime) -> int:
    """`book` in its own transaction; a taken slot raises `SlotTaken` with fresh alternatives (same day
    first, then the next days) read after the refusal."""
    try:
        async with db.write() as session:
            return await book(session, new, now=now)
    except SlotTaken as taken:
        async with db.read() as session:
            person = (await session.execute(select(m.staff.c.hours).where(m.staff.c.id == new.staff_id))).scalar()
            zone = load_hours(person).zone if person else ZoneInfo("UTC")
            alternatives = await find_slots(
                session, new.service_id, now=now, first_day=new.start.astimezone(zone).date(), days=7, limit=6,
                staff_id=new.staff_id,
            )  # fmt: skip
        raise SlotTaken(taken.user_message, [s.start for s in alternatives]) from None


async def _booking(session: AsyncSession, booking_id: int, *, lock: bool = False) -> Any:
    query = select(m.bookings).where(m.bookings.c.id == booking_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(f"no booking {booking_id}")
    return row


async def move(
    session: AsyncSession, booking_id: int, start: datetime, *, now: datetime, staff_id: int | None = None,
    by_staff: bool = False,
) -> None:  # fmt: skip
    """Move an active booking to a new start (and staff member); its reminders are planned again."""
    row = await _booking(session, booking_id)
    if row.status not in ACTIVE:
        raise Conflict(f"booking {booking_id} is {row.status}")
    service = await get_service(session, int(row.service_id))
    target = staff_id if staff_id is not None else int(row.staff_id)
    if target != row.staff_id and not (await _staff_for(session, int(service.id), target)):
        raise InvalidInput(f"staff {target} does not do {service.name}")
    person = await _lock(session, target, service.resource_id)
    await _check_free(
        session, service, person, start, now=now, skip=booking_id, min_notice=timedelta(0) if by_staff else MIN_NOTICE
    )
    end = start + timedelta(minutes=service.duration_min)
    await session.execute(
        update(m.bookings).where(m.bookings.c.id == booking_id).values(
            staff_id=target, start_at=start, end_at=end, busy_until=end + timedelta(minutes=service.buffer_min),
            updated_at=now,
        )
    )  # fmt: skip
    await session.execute(
        update(m.reminders)
        .where(m.reminders.c.booking_id == booking_id, m.reminders.c.status == "pending")
        .values(status="cancelled")
    )
    await session.execute(
        m.reminders.delete().where(m.reminders.c.booking_id == booking_id, m.reminders.c.status == "cancelled")
    )
    await _plan_reminders(session, booking_id, now=now)
    await _emit_booking(session, "booking.moved", booking_id, now=now)


async def set_status(session: AsyncSession, booking_id: int, status: str, *, now: datetime) -> bool:
    """pending → confirmed → completed / no_show / cancelled. Returns False when it already had it
    (a second tap of "Подтверждаю"); raises `Conflict` for a move the rules refuse. Cancelling frees the
    slot at once (only pending and confirmed bookings hold one) and drops the pending reminders."""
    if status not in STATUSES:
        raise InvalidInput(f"status: one of {', '.join(STATUSES)}")
    row = await _booking(session, booking_id, lock=True)
    if row.status == status:
        return False
    if status not in MOVES[row.status]:
        raise Conflict(f"booking {booking_id} is {row.status}: it cannot become {status}")
    if status in ("completed", "no_show") and row.start_at > now:
        raise Conflict(f"booking {booking_id} has not started yet")
    await session.execute(update(m.bookings).where(m.bookings.c.id == booking_id).values(status=status, updated_at=now))
    if status not in ACTIVE:  # no more reminders; the after-visit message only after a visit
        dropped = m.reminders.c.offset_min > 0 if status == "completed" else m.reminders.c.offset_min != 0
        await session.execute(
            update(m.reminders)
            .where(m.reminders.c.booking_id == booking_id, m.reminders.c.status == "pending", dropped)
            .values(status="cancelled")
        )
    await _emit_booking(session, f"booking.{status}", booking_id, now=now)
    return True


# --- reminders ----------------------------------------------------------------------------------------


def after_visit_due(end: datetime, offset_min: int, zone: ZoneInfo) -> datetime:
    """The after-visit message `-offset_min` after `end`, out of the quiet hours (the next morning)."""
    due = end - timedelta(minutes=offset_min)
    local = due.astimezone(zone)
    quiet_from, quiet_to = QUIET
    if local.time() >= quiet_from or local.time() < quiet_to:
        morning = local.date() if local.time() < quiet_to else local.date() + timedelta(days=1)
        due = datetime.combine(morning, quiet_to, zone)
    return due


def reminder_due(start: datetime, offset_min: int, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the reminder `offset_min` before `start` goes out: moved out of the quiet hours (to their end
    when that is still before the visit, else to just before they begin); None when that is past."""
    due = start - timedelta(minutes=offset_min)
    local = due.astimezone(zone)
    quiet_from, quiet_to = QUIET
    if local.time() >= quiet_from or local.time() < quiet_to:
        morning = local.date() if local.time() < quiet_to else local.date() + timedelta(days=1)
        later = datetime.combine(morning, quiet_to, zone)
        if later < start:
            due = later
        else:
            evening = morning - timedelta(days=1)
            due = datetime.combine(evening, quiet_from, zone) - timedelta(minutes=15)
    return due if due > now else None


async def _plan_reminders(session: AsyncSession, booking_id: int, *, now: datetime) -> None:
    row = await _booking(session, booking_id)
    service = await get_service(session, int(row.service_id))
    hours = (await session.execute(select(m.staff.c.hours).where(m.staff.c.id == row.staff_id))).scalar()
    zone = load_hours(hours).zone
    planned: set[datetime] = set()
    for offset in service.reminders or ():
        if int(offset) < 0:
            planned.add(after := after_visit_due(row.end_at, int(offset), zone))
            await session.execute(
                insert(m.reminders).values(
                    booking_id=booking_id, offset_min=int(offset), due_at=after, status="pending",
                    route=f"conversation:{row.conversation_id}" if row.conversation_id else None,
                )
            )  # fmt: skip
            continue
        due = reminder_due(row.start_at, int(offset), zone, now)
        if due is None or due in planned:  # past, or the same moment as a longer offset after quiet hours
            continue
        planned.add(due)
        route = f"conversation:{row.conversation_id}" if row.conversation_id else None
        await session.execute(
            insert(m.reminders).values(
                booking_id=booking_id, offset_min=int(offset), due_at=due, status="pending", route=route
            )
        )


# --- events -------------------------------------------------------------------------------------------


def _iso(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat()


async def rate(session: AsyncSession, booking_id: int, stars: int, *, now: datetime) -> None:
    """The client's rating of a visit (1-5), kept on the booking; refused before the visit or twice."""
    if not 1 <= stars <= 5:
        raise InvalidInput("rating: 1 to 5")
    row = await _booking(session, booking_id, lock=True)
    if row.status in ("cancelled", "no_show") or row.start_at > now:
        raise Conflict("there was no visit to rate")
    if row.rating is not None:
        raise Conflict("already rated")
    await session.execute(update(m.bookings).where(m.bookings.c.id == booking_id).values(rating=stars, updated_at=now))


async def booking_data(session: AsyncSession, booking_id: int) -> dict[str, Any]:
    """The `booking.*` event's data (docs/bookings.md, the shared contract)."""
    row = await _booking(session, booking_id)
    service = (await session.execute(select(m.services.c.name).where(m.services.c.id == row.service_id))).scalar()
    person = (
        await session.execute(select(m.staff.c.name, m.staff.c.hours).where(m.staff.c.id == row.staff_id))
    ).first()
    assert person is not None
    zone = load_hours(person.hours).zone
    return {
        "booking_id": int(row.id), "lead_id": row.lead_id, "contact_id": row.contact_id,
        "conversation_id": row.conversation_id, "client_name": row.client_name, "phone": row.phone,
        "service_id": int(row.service_id), "service": service, "staff_id": int(row.staff_id), "staff": person.name,
        "start": _iso(row.start_at, zone), "end": _iso(row.end_at, zone), "timezone": zone.key,
        "status": row.status, "source": row.source, "price": Decimal(row.price).quantize(Decimal("0.01")),
        "notes": row.notes or "", "summary": "", "admin_url": f"/admin/bookings/{int(row.id)}",
    }  # fmt: skip


STAFF_TOLD = {"booking.created": "Новая запись", "booking.moved": "Запись перенесена",
              "booking.cancelled": "Запись отменена"}  # fmt: skip
DEFAULT_PACK = "booking-ru"  # whose staff hear of bookings made outside a conversation (admin, API)


async def _pack_of(session: AsyncSession, conversation_id: int | None) -> str:
    if conversation_id is None:
        return DEFAULT_PACK
    pack = await session.scalar(
        select(ChannelAccount.pack)
        .join(Conversation, Conversation.channel_account_id == ChannelAccount.id)
        .where(Conversation.id == conversation_id)
    )
    return str(pack or DEFAULT_PACK)


async def _emit_booking(session: AsyncSession, event_type: str, booking_id: int, *, now: datetime) -> None:
    """The event of the change and, for a new, moved or cancelled booking, the staff of the conversation's
    pack are told (platform/staff: Telegram, e-mail; delivered by the `staff-notify` job)."""
    data = await booking_data(session, booking_id)
    await emit(session, event_type, data, now=now, subject=f"booking:{booking_id}")
    subject = STAFF_TOLD.get(event_type)
    if subject is None:
        return
    start = datetime.fromisoformat(data["start"])
    text = (f"{data['service']}, мастер {data['staff']}, {start:%d.%m.%Y %H:%M} ({data['timezone']})\n"
            f"Клиент: {data['client_name']}{', ' + data['phone'] if data['phone'] else ''}\nИсточник: {data['source']}")  # fmt: skip
    message = StaffMessage(
        f"{subject}: {data['client_name']}"[:200], text, data["admin_url"], ("booking", str(booking_id))
    )
    pack = await _pack_of(session, data["conversation_id"])
    await notify_pack(session, pack, message, dedupe=f"{event_type}:{booking_id}:{start.isoformat()}", now=now)


# --- leads ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewLead:
    client_name: str
    phone: str | None
    source: str
    service_id: int | None = None
    preferred_time: datetime | None = None
    email: str | None = None
    comment: str | None = None
    utm: dict[str, str] = field(default_factory=dict)
    source_detail: str | None = None
    contact_id: int | None = None
    conversation_id: int | None = None
    summary: str = ""


@dataclass(frozen=True, slots=True)
class LeadResult:
    lead_id: int
    contact_id: int | None
    duplicate: bool


async def _contact_for(session: AsyncSession, lead: NewLead, *, now: datetime) -> int:
    """The contact a lead belongs to: given, else the one of an earlier lead or booking with this phone,
    else a new contact (its display name only: the phone stays on the lead)."""
    if lead.contact_id is not None:
        return lead.contact_id
    if lead.phone:
        for table in (m.leads, m.bookings):
            found = await session.scalar(
                select(table.c.contact_id)
                .where(table.c.phone == lead.phone, table.c.contact_id.is_not(None))
                .order_by(table.c.id.desc())
                .limit(1)
            )
            if found is not None:
                return int(found)
    result = await session.execute(
        insert(Contact).values(display_name=lead.client_name, created_at=now, tags={}, fields={})
    )
    return _new_id(result)


async def record_lead(session: AsyncSession, lead: NewLead, *, now: datetime) -> LeadResult:
    """Store a lead (API or conversation) and emit `lead.created`. The same phone within `LEAD_DEDUP` is the
    same lead: it counts one more hit (the newer comment and time kept) and emits nothing new."""
    if lead.phone:
        previous = (
            await session.execute(
                select(m.leads.c.id, m.leads.c.contact_id)
                .where(m.leads.c.phone == lead.phone, m.leads.c.created_at >= now - LEAD_DEDUP)
                .order_by(m.leads.c.id.desc())
                .limit(1)
                .with_for_update()
            )
        ).first()
        if previous is not None:
            changes: dict[str, Any] = {"hits": m.leads.c.hits + 1, "updated_at": now}
            if lead.comment:
                changes["comment"] = lead.comment
            if lead.preferred_time:
                changes["preferred_time"] = lead.preferred_time
            await session.execute(update(m.leads).where(m.leads.c.id == previous.id).values(**changes))
            return LeadResult(int(previous.id), previous.contact_id, True)
    contact_id = await _contact_for(session, lead, now=now)
    result = await session.execute(
        insert(m.leads).values(
            contact_id=contact_id, conversation_id=lead.conversation_id, client_name=lead.client_name,
            phone=lead.phone, email=lead.email, service_id=lead.service_id, preferred_time=lead.preferred_time,
            source=lead.source, source_detail=lead.source_detail, comment=lead.comment, utm=dict(lead.utm),
            status="new", hits=1, created_at=now, updated_at=now,
        )
    )  # fmt: skip
    lead_id = _new_id(result)
    service = None
    if lead.service_id is not None:
        service = await session.scalar(select(m.services.c.name).where(m.services.c.id == lead.service_id))
    data = {
        "lead_id": lead_id, "contact_id": contact_id, "conversation_id": lead.conversation_id,
        "client_name": lead.client_name, "phone": lead.phone, "email": lead.email, "service_id": lead.service_id,
        "service": service, "preferred_time": lead.preferred_time.isoformat() if lead.preferred_time else None,
        "source": lead.source, "source_detail": lead.source_detail, "comment": lead.comment, "utm": dict(lead.utm),
        "summary": lead.summary, "admin_url": f"/admin/bookings/leads/{lead_id}",
    }  # fmt: skip
    await emit(session, "lead.created", data, now=now, subject=f"lead:{lead_id}")
    return LeadResult(lead_id, contact_id, False)


async def conversation_of(session: AsyncSession, contact_id: int) -> int | None:
    """The contact's latest reachable conversation (to write first), or None."""
    found = await session.scalar(
        select(Conversation.id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(and_(Conversation.contact_id == contact_id, Contact.reachable.is_(True)))
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    return int(found) if found is not None else None


async def erase_contact(session: AsyncSession, contact_id: int, *, now: datetime) -> dict[str, int]:
    """What the capability keeps about a person, erased (the kernel's `people.erase` leaves it to each
    capability): names, phones, e-mails, comments, notes and UTM tags of the contact's leads and bookings,
    and the talk's state of their conversations. Times, services, statuses and prices stay (the numbers)."""
    leads_done = await session.execute(
        update(m.leads).where(m.leads.c.contact_id == contact_id).values(
            client_name="—", phone=None, email=None, comment=None, utm={}, source_detail=None, updated_at=now)
    )  # fmt: skip
    bookings_done = await session.execute(
        update(m.bookings).where(m.bookings.c.contact_id == contact_id).values(
            client_name="—", phone=None, notes="", source_detail=None, updated_at=now)
    )  # fmt: skip
    conversations = select(Conversation.id).where(Conversation.contact_id == contact_id).scalar_subquery()
    await session.execute(m.talks.delete().where(m.talks.c.conversation_id.in_(conversations)))
    return {"leads": int(leads_done.rowcount or 0), "bookings": int(bookings_done.rowcount or 0)}  # type: ignore[attr-defined]


__all__ = ["HoursError", "SlotTaken", "book", "book_or_offer", "find_slots", "move", "record_lead", "set_status"]
