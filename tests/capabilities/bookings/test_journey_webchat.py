"""The booking talk on the web chat (pack booking-ru), SQLite and PostgreSQL: book from a sentence, the
slot taken between the offer and the tap, a bad phone, the confirmation, the reminders with a controllable
clock, confirm, move, cancel frees the slot; prices, the address and the bad dates of the issue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from otklik.adapters.db.models import Conversation
from otklik.bootstrap import Otklik
from otklik.capabilities.bookings import jobs, service
from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings.demo import Salon, salon
from otklik.clock import utcnow
from otklik.web.app import create_app
from tests.capabilities.bookings.conftest import MSK
from tests.capabilities.care.conftest import Chat
from tests.conftest import make_settings


@pytest.fixture
async def desk(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Otklik, Salon, httpx.AsyncClient]]:
    app = Otklik.build(make_settings(tmp_path, db_url, default_pack="booking-ru"))
    await app.start()
    async with app.db.write() as session:
        found = await salon(session, now=utcnow())
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield app, found, http
    finally:
        await app.close()


async def _open(http: httpx.AsyncClient) -> Chat:
    response = await http.post("/api/webchat/sessions", json={"language": "ru", "start": "book_vk_winter"})
    assert response.status_code == 201, response.text
    return Chat(http, str(response.json()["session_id"]))


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    return {b["title"]: b["payload"] for b in message.get("buttons") or []}


def _start(payload: str) -> datetime:
    return datetime.fromtimestamp(int(payload.rsplit(":", 1)[1]), MSK)


async def test_book_from_a_sentence_to_the_reminders(desk: tuple[Otklik, Salon, httpx.AsyncClient]) -> None:
    app, found, http = desk
    chat = await _open(http)
    await chat.replies(1)  # the deep link started the talk: "На какую услугу…"
    await chat.send(text="Хочу записаться на стрижку в субботу после обеда")
    offer = (await chat.replies(1))[0]
    slots = [p for p in _buttons(offer).values() if p.startswith("bk:slot:")]
    assert 3 <= len(slots) <= 6 and "Другие даты" in _buttons(offer)
    assert all(_start(p).weekday() == 5 and _start(p).hour >= 13 for p in slots)

    await chat.send(button=slots[0])
    assert (await chat.texts(1)) == ["Как вас зовут?"]
    await chat.send(text="Мария")
    assert "телефон" in (await chat.texts(1))[0]
    await chat.send(text="12345")
    assert "Не похоже на номер" in (await chat.texts(1))[0]
    # meanwhile an administrator books that very slot by phone
    sid, staff_id = (int(x) for x in slots[0].split(":")[2:4])
    await service.book_or_offer(
        app.db, service.NewBooking(sid, staff_id, _start(slots[0]), "Звонок", by_staff=True), now=utcnow()
    )
    await chat.send(text="+7 912 345-67-89")
    taken = (await chat.replies(1))[0]
    assert "только что заняли" in taken["text"]
    again = [p for p in _buttons(taken).values() if p.startswith("bk:slot:")]
    assert again and slots[0] not in again
    await chat.send(button=again[0])  # name and phone are known: booked at once
    confirmed = (await chat.replies(1))[0]
    confirmation = confirmed["text"]
    assert confirmation.startswith("Готово! Вы записаны: Стрижка") and "Баумана" in confirmation
    (ics,) = confirmed["attachments"]
    assert ics["filename"] == "zapis.ics" and ics["content_type"] == "text/calendar"
    body = await app.ctx.media.read(ics["media_id"])
    assert b"BEGIN:VEVENT" in body and "Стрижка".encode() in body and b"\r\nDTSTART:" in body

    async with app.db.read() as session:
        row = (await session.execute(select(m.bookings).where(m.bookings.c.client_name == "Мария"))).one()
        lead = (await session.execute(select(m.leads))).one()
    assert (row.phone, row.source, row.source_detail, row.start_at) == (
        "+79123456789",
        "webchat",
        "book_vk_winter",
        _start(again[0]),
    )
    assert row.lead_id == lead.id and lead.conversation_id == row.conversation_id and lead.source == "webchat"

    start = row.start_at
    assert await jobs.send_due(app.ctx, start - timedelta(hours=24)) == 1
    reminder = (await chat.replies(1))[0]
    assert "Напоминаем" in reminder["text"]
    await chat.send(button=_buttons(reminder)["Подтверждаю"])
    assert (await chat.texts(1)) == ["Спасибо, ждём вас!"]
    await chat.send(button=_buttons(reminder)["Перенести"])
    choose = (await chat.replies(1))[0]
    new = next(p for p in _buttons(choose).values() if p.startswith("bk:slot:") and _start(p) != start)
    await chat.send(button=new)
    assert (await chat.texts(1))[0].startswith("Запись перенесена")
    async with app.db.read() as session:
        moved = (await session.execute(select(m.bookings).where(m.bookings.c.id == row.id))).one()
    assert moved.start_at == _start(new) and moved.status == "confirmed"

    await chat.send(text="отмените запись")
    ask = (await chat.replies(1))[0]
    await chat.send(button=_buttons(ask)["Да, отменить"])
    assert "отменена" in (await chat.texts(1))[0]
    async with app.db.read() as session:
        free = await service.find_slots(session, sid, now=utcnow(), first_day=_start(new).date(), days=1,
                                        staff_id=int(new.split(":")[3]), limit=500)  # fmt: skip
    assert _start(new) in [s.start for s in free]


async def test_questions_and_bad_input(desk: tuple[Otklik, Salon, httpx.AsyncClient]) -> None:
    _app, _found, http = desk
    chat = await _open(http)
    await chat.replies(1)
    await chat.send(text="сколько стоит маникюр?")
    assert (await chat.texts(1)) == ["Маникюр — 2000 ₽, 90 мин"]
    await chat.send(text="где вы находитесь?")
    assert "Баумана" in (await chat.texts(1))[0]
    for bad, words in (("запишите на стрижку в 25:00", "«25:00»"), ("стрижка 31 февраля", "«31 февраля»")):
        await chat.send(text=bad)
        reply = (await chat.replies(1))[0]
        assert words in reply["text"] and any(p.startswith("bk:slot:") for p in _buttons(reply).values())
    await chat.send(text="можно к Айгуль на маникюр завтра в 15?")
    reply = (await chat.replies(1))[0]
    assert reply["text"].startswith("Айгуль не делает «Маникюр»")
    assert all(title.endswith("· Ольга") for title in _buttons(reply) if title != "Другие даты")
    await chat.send(text="перенесите мою запись")
    assert "нет предстоящих записей" in (await chat.texts(1))[0]
    await chat.send(button="bk:slot:1:1:99999999999999999999")
    assert "устарела" in (await chat.texts(1))[0]

    # a past visit of this chat's client: the after-visit rating buttons
    now = utcnow()
    async with _app.db.write() as session:
        conversation_id = (await session.execute(select(func.max(Conversation.id)))).scalar()
        values = {"service_id": _found.haircut, "staff_id": _found.aigul, "start_at": now - timedelta(hours=3),
                  "end_at": now - timedelta(hours=2), "busy_until": now - timedelta(hours=2), "status": "completed",
                  "client_name": "Мария", "source": "webchat", "price": 1500, "created_at": now, "updated_at": now}  # fmt: skip
        add = insert(m.bookings).returning(m.bookings.c.id)
        mine = (await session.execute(add.values(conversation_id=conversation_id, **values))).scalar_one()
        theirs = (await session.execute(add.values(conversation_id=None, **values))).scalar_one()
    for payload, words in ((f"bk:rate:{theirs}:1", "устарела"), (f"bk:rate:{mine}:9", "устарела"),
                           (f"bk:rate:{mine}:5", "Спасибо за оценку"), (f"bk:rate:{mine}:1", "уже сохранена")):  # fmt: skip
        await chat.send(button=payload)
        assert words in (await chat.texts(1))[0], payload
    async with _app.db.read() as session:
        rated = dict((await session.execute(select(m.bookings.c.id, m.bookings.c.rating))).all())
    assert rated == {mine: 5, theirs: None}
