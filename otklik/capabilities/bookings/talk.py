"""The booking talk (pack `booking-ru`): the flow action `bookings.talk` runs on every buyer message.

It reads the service, the master and the day/time from the text (the NLU's Russian date parser plus the
salon's own names), offers 3-6 free slots as buttons and "Другие даты", asks the name and the phone
(phonenumbers, region RU), books (the same locked check as everywhere: a slot taken between the offer and
the tap gets fresh alternatives) and confirms from the flow's template. It also answers "сколько стоит …",
"где вы находитесь", "перенесите мою запись", "отмените запись" and the reminders' buttons. A booking from
the talk records the conversation's lead too (`lead.created`). What the talk knows between messages is one
row per conversation (`bookings_talks`).

Slow action (it reads and books through the database's own transactions, `book_or_offer`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from otklik import clock
from otklik.adapters.db.models import ChannelAccount, Conversation
from otklik.capabilities.bookings import chat, ics, service
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings.schedule import load_hours
from otklik.conversations.nlu.dates import find_dates
from otklik.conversations.timers import ACTION_MESSAGES, ActionContext
from otklik.core.errors import InvalidInput, OtklikError
from otklik.core.messages import Attachment, Button, OutboundMessage

MONTHS = {name: n + 1 for n, name in enumerate(chat.MONTHS)}
_BAD_CLOCK = re.compile(r"(?<!\d)(\d{1,2})[:.](\d{2})(?!\d)")
_HOUR = re.compile(r"(?:^|\s)в\s+(\d{1,2})(?:[:.](\d{2}))?(?!\d)(?!\s*(?:" + "|".join(chat.MONTHS) + "))")
_DAY_MONTH = re.compile(r"(?<!\d)(\d{1,2})\s+(" + "|".join(chat.MONTHS) + r")")
_WORD = re.compile(r"[а-яёa-z]+")
PRICE_WORDS = ("сколько стоит", "цена", "стоимост", "прайс", "почём", "почем")
WHERE_WORDS = ("где вы", "адрес", "как добраться", "находитесь", "как вас найти")
CANCEL_WORDS = ("отмен",)
MOVE_WORDS = ("перенес", "перенос", "другое время", "передвин")
AFTERNOON = ("после обеда", "днём", "днем", "вечер")
MORNING = ("утр", "до обеда")
DEFAULT_CONFIRM = "Готово! Вы записаны: {service}, мастер {staff}, {when}. Стоимость {price} ₽. Адрес: {address}."


@dataclass(frozen=True, slots=True)
class Reading:
    """What a buyer's text says about a booking."""

    service_id: int | None = None
    staff_id: int | None = None
    day: date | None = None
    moment: datetime | None = None  # a day and a time
    part: str | None = None  # "morning" | "afternoon"
    bad: str | None = None  # what could not be a date or a time ("25:00", "31 февраля")


def _stems(text: str) -> set[str]:
    """Crude Russian stems: up to 5 letters, the last one dropped ("Ольга"/"к Ольге" → "ольг")."""
    return {w[: min(5, len(w) - 1)] for w in _WORD.findall(text.lower().replace("ё", "е")) if len(w) >= 4}


def read(text: str, now_local: datetime, services: Mapping[int, str], staff: Mapping[int, str]) -> Reading:
    """Pure: the service, master, day, time and part of the day named in `text` (times in `now_local`'s zone)."""
    low = " ".join(text.lower().split())[:500]
    words = _stems(low)
    service_id = next((i for i, name in services.items() if _stems(name) & words), None)
    staff_id = next((i for i, name in staff.items() if _stems(name) & words), None)
    for match in _BAD_CLOCK.finditer(low):
        if int(match[1]) > 23 or int(match[2]) > 59:
            return Reading(service_id, staff_id, bad=match[0])
    for match in _DAY_MONTH.finditer(low):
        try:
            date(now_local.year, MONTHS[match[2]], int(match[1]))
        except ValueError:
            return Reading(service_id, staff_id, bad=match[0])
    day: date | None = None
    moment: datetime | None = None
    for found in find_dates(low, "ru", now_local):
        if found.kind == "datetime":
            moment = datetime.fromisoformat(found.value).replace(tzinfo=now_local.tzinfo)
            day = moment.date()
        elif day is None:
            day = date.fromisoformat(found.value)
        break
    hour = _HOUR.search(low)
    if moment is None and hour is not None:
        h, mm = int(hour[1]), int(hour[2] or 0)
        if h > 23 or mm > 59:
            return Reading(service_id, staff_id, bad=hour[0].strip())
        if 1 <= h <= 8 and not any(w in low for w in MORNING):
            h += 12  # "в 3" at a salon is 15:00
        base = day or now_local.date()
        moment = datetime.combine(base, time(h, mm), now_local.tzinfo)
        day = base
    part = "afternoon" if any(w in low for w in AFTERNOON) else "morning" if any(w in low for w in MORNING) else None
    return Reading(service_id, staff_id, day, moment, part)


def _m(text: str, buttons: tuple[Button, ...] = (), *, contact: bool = False) -> dict[str, Any]:
    return OutboundMessage(text, buttons, request_contact=contact).to_dict()


class Talk:
    """One step of the talk for one conversation (`run`)."""

    def __init__(self, ctx: ActionContext, args: Mapping[str, Any], now: datetime) -> None:
        self.ctx, self.args, self.now = ctx, args, now
        self.db = ctx.runtime.db
        self.out: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}
        self.note = ""  # said before the next offer

    async def load(self) -> None:
        async with self.db.read() as session:
            row = await session.scalar(
                select(m.talks.c.state).where(m.talks.c.conversation_id == self.ctx.conversation_id)
            )
            self.services = {
                int(r.id): (str(r.name), r) for r in (await session.execute(
                    select(m.services).where(m.services.c.active.is_(True)).order_by(m.services.c.id))).all()
            }  # fmt: skip
            self.staff = {
                int(r.id): (str(r.name), load_hours(r.hours).timezone)
                for r in (await session.execute(select(m.staff).where(m.staff.c.active.is_(True)))).all()
            }
        self.state = dict(row) if isinstance(row, dict) else {}
        self.zone = ZoneInfo(next(iter(self.staff.values()))[1]) if self.staff else ZoneInfo("Europe/Moscow")

    async def save(self) -> None:
        async with self.db.write() as session:
            await session.execute(m.talks.delete().where(m.talks.c.conversation_id == self.ctx.conversation_id))
            await session.execute(
                m.talks.insert().values(conversation_id=self.ctx.conversation_id, state=self.state, updated_at=self.now)
            )

    # --- offers ---

    async def offer(self, service_id: int, *, intro: str, first_day: date | None = None, staff_id: int | None = None,
                    part: str | None = None, first: datetime | None = None) -> None:  # fmt: skip
        day = first_day or self.now.astimezone(self.zone).date()
        intro, self.note = self.note + intro, ""
        async with self.db.read() as session:
            slots = await service.find_slots(
                session, service_id, now=self.now, first_day=day, days=14, staff_id=staff_id, limit=300,
                skip_booking=self.state.get("moving"),
            )  # fmt: skip
        if part is not None:
            noon = [s for s in slots if (s.start.astimezone(self.zone).hour >= 13) == (part == "afternoon")]
            slots = noon or slots
        if first is not None:
            slots = [s for s in slots if s.start == first][:1] + [s for s in slots if s.start != first]
        if not slots:
            self.out.append(
                _m(f"{intro} Свободного времени в ближайшие две недели нет — оставьте телефон, мы перезвоним.")
            )
            return
        same_day = [
            s for s in slots if s.start.astimezone(self.zone).date() == slots[0].start.astimezone(self.zone).date()
        ]
        chosen = same_day if len(same_day) >= 3 else slots
        zones = {k: v[1] for k, v in self.staff.items()}
        buttons = chat.slot_buttons(chosen[:60] if first is None else [chosen[0], *service.spread(chosen[1:], 5)],
                                    zones, service_id)  # fmt: skip
        self.state["service"] = service_id
        self.state["from"] = (slots[-1].start.astimezone(self.zone).date() + timedelta(days=1)).isoformat()
        self.out.append(_m(intro, buttons))

    def _service_buttons(self) -> tuple[Button, ...]:
        return tuple(Button(name, f"bk:svc:{i}") for i, (name, row) in self.services.items() if row.online)[:8]

    # --- the step ---

    async def run(self, inbound: Mapping[str, Any] | None) -> dict[str, Any]:
        await self.load()
        kind = str((inbound or {}).get("kind") or "")
        text = str((inbound or {}).get("text") or "")[:1000]
        raw = (inbound or {}).get("payload") or {}
        payload = str(raw.get("payload") or "") if isinstance(raw, dict) else ""
        if kind == "button" and payload.startswith("bk:"):
            await self.button(payload)
        elif self.state.get("step") == "name" and text.strip():
            await self.name(text)
        elif self.state.get("step") == "phone" and text.strip():
            await self.phone(text)
        elif text.strip():
            await self.text(text)
        else:
            self.out.append(_m("Здравствуйте! На какую услугу вас записать?", self._service_buttons()))
        await self.save()
        return {"ok": True, "step": self.state.get("step") or "", ACTION_MESSAGES: self.out[:10]}

    async def button(self, payload: str) -> None:
        parts = payload.split(":")
        if parts[1] in ("confirm", "cancel", "move"):
            if parts[1] == "move":
                booking_id = chat._id(parts[2]) if len(parts) == 3 else None
                if booking_id is not None and await self._own(booking_id):
                    self.state["moving"] = booking_id
            async with self.db.write() as session:
                answered = await chat.answer(session, self.ctx.conversation_id, payload, now=self.now)
            if answered is None:
                self.out.append(_m("Эта кнопка устарела."))
            else:
                self.out.append(answered[1].to_dict())
            return
        if parts[1] == "rate" and len(parts) == 4 and parts[3] in ("1", "2", "3", "4", "5"):
            booking_id = chat._id(parts[2])
            if booking_id is not None and await self._own(booking_id):
                try:
                    async with self.db.write() as session:
                        await service.rate(session, booking_id, int(parts[3]), now=self.now)
                    text = (
                        "Спасибо за оценку!"
                        if parts[3] in ("4", "5")
                        else "Спасибо, что сказали. Передадим администратору."
                    )
                except OtklikError:
                    text = "Оценка уже сохранена, спасибо!"
                self.out.append(_m(text))
                return
        if parts[1] == "svc" and len(parts) == 3 and (sid := chat._id(parts[2])) in self.services:
            await self.offer(sid, intro=f"{self.services[sid][0]}: выберите время.")
            return
        if parts[1] == "more" and len(parts) == 3 and (sid := chat._id(parts[2])) in self.services:
            first = date.fromisoformat(self.state["from"]) if self.state.get("from") else None
            await self.offer(sid, intro="Вот другие даты:", first_day=first)
            return
        if parts[1] == "slot" and len(parts) == 5 and parts[4].isdigit() and len(parts[4]) <= 11:
            sid, staff_id = chat._id(parts[2]), chat._id(parts[3])
            if sid in self.services and staff_id in self.staff:
                assert sid is not None and staff_id is not None
                self.state["pick"] = [sid, staff_id, int(parts[4])]
                if self.state.get("moving"):
                    await self.move()
                elif self.state.get("name") and self.state.get("phone"):
                    await self.book()
                else:
                    self.state["step"] = "name"
                    self.out.append(_m("Как вас зовут?"))
                return
        self.out.append(_m("Эта кнопка устарела. На какую услугу вас записать?", self._service_buttons()))

    async def name(self, text: str) -> None:
        name = " ".join(text.split())
        if not 2 <= len(name) <= 60 or not re.fullmatch(r"[A-Za-zА-Яа-яЁё' .-]+", name):
            self.out.append(_m("Напишите, пожалуйста, только имя — например, Мария."))
            return
        self.state["name"], self.state["step"] = name, "phone"
        self.out.append(_m(f"Спасибо, {name}! Оставьте номер телефона для связи.", contact=True))

    async def phone(self, text: str) -> None:
        try:
            self.state["phone"] = service.phone_e164(text)
        except InvalidInput:
            self.out.append(_m("Не похоже на номер телефона. Напишите, например: +7 912 345-67-89", contact=True))
            return
        self.state["step"] = None
        await self.book()

    async def _own(self, booking_id: int) -> bool:
        async with self.db.read() as session:
            owner = await session.scalar(select(m.bookings.c.conversation_id).where(m.bookings.c.id == booking_id))
        return owner == self.ctx.conversation_id

    async def _active(self) -> Any:
        async with self.db.read() as session:
            return (await session.execute(
                select(m.bookings).where(
                    m.bookings.c.conversation_id == self.ctx.conversation_id, m.bookings.c.status.in_(service.ACTIVE),
                    m.bookings.c.start_at > self.now,
                ).order_by(m.bookings.c.start_at).limit(1)
            )).first()  # fmt: skip

    def _when(self, moment: datetime) -> str:
        return chat.when_text(moment.astimezone(self.zone))

    async def book(self) -> None:
        sid, staff_id, ts = self.state["pick"]
        start = datetime.fromtimestamp(ts, self.zone)
        async with self.db.read() as session:
            account = (await session.execute(
                select(ChannelAccount.kind).join(Conversation, Conversation.channel_account_id == ChannelAccount.id)
                .where(Conversation.id == self.ctx.conversation_id))).scalar()  # fmt: skip
        source = re.sub(r"[^a-z0-9_-]", "", str(account or "chat").lower())[:32] or "chat"
        detail = str(self.args.get("payload") or "")[:200] or None
        try:
            async with self.db.write() as session:
                lead = await service.record_lead(session, service.NewLead(
                    self.state["name"], self.state["phone"], source, service_id=sid, preferred_time=start,
                    source_detail=detail, contact_id=self.ctx.contact_id, conversation_id=self.ctx.conversation_id,
                    summary=f"Запись из чата: {self.services[sid][0]}, {self._when(start)}"), now=self.now)  # fmt: skip
            booking_id = await service.book_or_offer(self.db, service.NewBooking(
                sid, staff_id, start, self.state["name"], self.state["phone"], contact_id=self.ctx.contact_id,
                conversation_id=self.ctx.conversation_id, lead_id=lead.lead_id, source=source, source_detail=detail,
            ), now=self.now)  # fmt: skip
        except service.SlotTaken as taken:
            zones = {k: v[1] for k, v in self.staff.items()}
            slots = [service.Slot(staff_id, self.staff[staff_id][0], a, a) for a in taken.alternatives]
            text = "Это время только что заняли."
            if slots:
                self.out.append(_m(f"{text} Свободно:", chat.slot_buttons(slots, zones, sid)))
            else:
                await self.offer(sid, intro=f"{text} Выберите другое:")
            return
        except OtklikError as exc:
            self.out.append(_m(f"Не получилось записать: {exc.user_message}"))
            return
        self.state.pop("pick", None)
        row = self.services[sid][1]
        values = {"service": row.name, "staff": self.staff[staff_id][0], "when": self._when(start),
                  "price": f"{row.price:.0f}", "address": str(self.args.get("address") or ""), "id": booking_id}  # fmt: skip
        template = str(self.args.get("confirm") or DEFAULT_CONFIRM)
        try:
            text = template.format_map(values)
        except (KeyError, ValueError, IndexError):
            text = DEFAULT_CONFIRM.format_map(values)
        attachments: tuple[Attachment, ...] = ()
        if account not in self.ctx.runtime.marketplace_kinds:  # a marketplace's chat takes no files of ours
            async with self.db.read() as session:
                data = await service.booking_data(session, booking_id)
            body = ics.calendar(data, address=values["address"], now=self.now)
            stored = await self.ctx.runtime.media.save(body, "text/calendar", "zapis.ics")
            attachments = (Attachment("file", stored.media_id, filename="zapis.ics", content_type="text/calendar",
                                      size=stored.size),)  # fmt: skip
        self.out.append(OutboundMessage(text, attachments=attachments).to_dict())

    async def move(self) -> None:
        booking_id = int(self.state["moving"])
        sid, staff_id, ts = self.state["pick"]
        start = datetime.fromtimestamp(ts, self.zone)
        try:
            async with self.db.write() as session:
                await service.move(session, booking_id, start, now=self.now, staff_id=staff_id)
        except service.SlotTaken:
            await self.offer(sid, intro="Это время уже занято. Выберите другое:")
            return
        except OtklikError as exc:
            self.out.append(_m(f"Не получилось перенести: {exc.user_message}"))
            self.state.pop("moving", None)
            return
        self.state.pop("moving", None)
        self.state.pop("pick", None)
        self.out.append(_m(f"Запись перенесена: {self._when(start)}, мастер {self.staff[staff_id][0]}."))

    async def text(self, text: str) -> None:
        low = text.lower()
        names = {i: v[0] for i, v in self.services.items()}
        local_now = self.now.astimezone(self.zone)
        reading = read(text, local_now, names, {i: v[0] for i, v in self.staff.items()})
        if any(w in low for w in WHERE_WORDS):
            self.out.append(_m(str(self.args.get("address") or "Адрес уточнит администратор.")))
            return
        if any(w in low for w in PRICE_WORDS):
            rows = (
                [self.services[reading.service_id][1]] if reading.service_id else [v[1] for v in self.services.values()]
            )
            self.out.append(_m("\n".join(f"{r.name} — {r.price:.0f} ₽, {r.duration_min} мин" for r in rows)))
            return
        if any(w in low for w in CANCEL_WORDS) or any(w in low for w in MOVE_WORDS):
            active = await self._active()
            if active is None:
                self.out.append(_m("У вас нет предстоящих записей. Записать вас?", self._service_buttons()))
                return
            when = self._when(active.start_at)
            if any(w in low for w in CANCEL_WORDS):
                self.out.append(_m(f"Отменить запись на {when}?", (Button("Да, отменить", f"bk:cancel:{active.id}"),)))
                return
            self.state["moving"] = int(active.id)
            await self.offer(int(active.service_id), intro=f"Ваша запись: {when}. На какое время перенести?",
                             first_day=reading.day, staff_id=int(active.staff_id))  # fmt: skip
            return
        sid = reading.service_id or self.state.get("service")
        if sid is None or sid not in self.services:
            self.out.append(_m("На какую услугу вас записать?", self._service_buttons()))
            return
        self.state.pop("moving", None)
        staff_id = reading.staff_id
        if staff_id is not None:
            async with self.db.read() as session:
                ok = await session.scalar(select(m.staff_services.c.staff_id).where(
                    m.staff_services.c.staff_id == staff_id, m.staff_services.c.service_id == sid))  # fmt: skip
            if ok is None:
                self.note = f"{self.staff[staff_id][0]} не делает «{self.services[sid][0]}», её время не подойдёт. "
                staff_id = None
        if reading.bad:
            await self.offer(
                sid, intro=f"Такой даты или времени нет: «{reading.bad}». Свободное время:", staff_id=staff_id
            )
            return
        if reading.day is not None and reading.day < local_now.date():
            await self.offer(sid, intro="Эта дата уже прошла. Ближайшее свободное время:", staff_id=staff_id)
            return
        if reading.moment is not None:
            async with self.db.read() as session:
                free = await service.find_slots(session, sid, now=self.now, first_day=reading.day, days=1,
                                                staff_id=staff_id, limit=500)  # fmt: skip
            if any(s.start == reading.moment for s in free):
                await self.offer(sid, intro=f"{self._when(reading.moment)} свободно. Записать?", first_day=reading.day,
                                 staff_id=staff_id, first=reading.moment)  # fmt: skip
                return
            await self.offer(sid, intro=f"{self._when(reading.moment)} занято или мастер не работает. Ближайшее:",
                             first_day=reading.day, staff_id=staff_id)  # fmt: skip
            return
        await self.offer(sid, intro=f"{self.services[sid][0]}: выберите время.", first_day=reading.day,
                         staff_id=staff_id, part=reading.part)  # fmt: skip


async def talk(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    """The flow action `bookings.talk`: args `address`, `confirm` (a template with {service} {staff} {when}
    {price} {address}), `payload` (the deep link's, kept as the booking's `source_detail`)."""
    step = Talk(ctx, args, clock.utcnow())
    return await step.run(ctx.last_inbound)
