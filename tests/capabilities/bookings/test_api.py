"""`POST /api/lead`: tokens (none, unknown, revoked, wrong scope), the lead stored with its contact and
`lead.created`, dedup by phone, the bot writing first to a reachable contact, and bad bodies — each bad
field named, oversized, not JSON, hostile — with nothing stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from otklik.capabilities.bookings import models as m
from otklik.capabilities.bookings import service
from otklik.platform.apitokens import create_token, revoke_token
from tests.capabilities.bookings.conftest import Shop, bot_messages, events, new_conversation

URL = "/api/lead"


@pytest.fixture
async def http(shop: Shop) -> httpx.AsyncClient:
    from otklik.web.app import create_app

    web = create_app(shop.app, worker=False, manage_lifecycle=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://api.test")


@pytest.fixture
async def token(shop: Shop) -> str:
    _id, secret = await create_token(shop.app.db, "site", "leads", actor="test")
    return secret


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _body(shop: Shop, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"client_name": "Мария Петрова", "phone": "8 (912) 345-67-89",
                            "service_id": shop.salon.haircut, "preferred_time": "2026-12-12T15:00:00+03:00",
                            "source": "site", "utm_source": "yandex", "utm_campaign": "winter",
                            "comment": "Хочу к Айгуль"}  # fmt: skip
    body.update(over)
    return {k: v for k, v in body.items() if v is not ...}


async def _count(shop: Shop) -> int:
    async with shop.app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(m.leads)) or 0)


async def test_a_lead_then_the_same_phone_again(shop: Shop, http: httpx.AsyncClient, token: str) -> None:
    created = await http.post(URL, json=_body(shop), headers=_auth(token))
    assert created.status_code == 201, created.text
    lead = created.json()
    assert lead["duplicate"] is False and lead["contact_id"] and lead["messaged"] is False  # no channel yet
    sent = await events(shop.app, "lead.")
    assert len(sent) == 1 and sent[0]["subject"] == f"lead:{lead['id']}"
    data = sent[0]["data"]
    assert (data["phone"], data["service"], data["source"]) == ("+79123456789", "Стрижка", "site")
    assert data["utm"] == {"source": "yandex", "campaign": "winter"}
    assert data["preferred_time"] == "2026-12-12T15:00:00+03:00" and data["admin_url"].endswith(f"/{lead['id']}")

    again = await http.post(
        URL, json=_body(shop, phone="+7 912 345 67 89", comment="перезвоните"), headers=_auth(token)
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["id"] == lead["id"]
    assert await _count(shop) == 1 and len(await events(shop.app, "lead.")) == 1
    async with shop.app.db.read() as session:
        row = (await session.execute(select(m.leads))).one()
    assert row.hits == 2 and row.comment == "перезвоните"

    other = await http.post(URL, json=_body(shop, phone="+7 912 345 67 00"), headers=_auth(token))
    assert other.status_code == 201 and other.json()["contact_id"] != lead["contact_id"]
    also = await http.post("/api/v1/bookings/leads", json=_body(shop, phone="+7 912 000 67 00"), headers=_auth(token))
    assert also.status_code == 201


async def test_the_bot_writes_first_when_it_can(shop: Shop, http: httpx.AsyncClient, token: str) -> None:
    conversation_id = await new_conversation(shop.app)
    async with shop.app.db.write() as session:  # an earlier lead of this phone from the chat: the same contact
        from otklik.adapters.db.models import Conversation

        contact_id = int(
            await session.scalar(select(Conversation.contact_id).where(Conversation.id == conversation_id))
        )
        result = await service.record_lead(
            session, service.NewLead("Мария", "+79123456789", "webchat", contact_id=contact_id,
                                     conversation_id=conversation_id), now=shop_now())  # fmt: skip
    assert not result.duplicate
    response = await http.post(URL, json=_body(shop, phone="+79123456780"), headers=_auth(token))
    assert response.json()["messaged"] is False  # another phone: a new contact, no channel
    async with shop.app.db.write() as session:
        await session.execute(m.leads.update().values(created_at=shop_now().replace(year=2025)))  # outside the window
    response = await http.post(URL, json=_body(shop), headers=_auth(token))
    assert response.status_code == 201 and response.json()["contact_id"] == contact_id
    assert response.json()["messaged"] is True
    out = await bot_messages(shop.app, conversation_id)
    assert len(out) == 1 and "Стрижка" in out[0].text
    payloads = [b["payload"] for b in out[0].payload["buttons"]]
    assert 3 <= len(payloads) <= 7 and payloads[-1] == f"bk:more:{shop.salon.haircut}"
    assert all(p.startswith(f"bk:slot:{shop.salon.haircut}:") for p in payloads[:-1])


def shop_now() -> Any:
    from otklik.clock import utcnow

    return utcnow()


BAD: list[tuple[dict[str, Any], set[str]]] = [
    ({"client_name": ..., "phone": ..., "source": ...}, {"client_name", "phone", "source"}),
    ({"phone": "123"}, {"phone"}),
    ({"phone": "+7 999 000"}, {"phone"}),
    ({"phone": 79123456789}, {"phone"}),
    ({"client_name": "x" * 201}, {"client_name"}),
    ({"client_name": "a\x00b"}, {"client_name"}),
    ({"service_id": "1"}, {"service_id"}),
    ({"service_id": True}, {"service_id"}),
    ({"service_id": -4}, {"service_id"}),
    ({"service_id": 99999}, {"service_id"}),
    ({"preferred_time": "31 февраля"}, {"preferred_time"}),
    ({"preferred_time": "2026-02-31T15:00:00+03:00"}, {"preferred_time"}),
    ({"preferred_time": "2026-12-12T25:00:00+03:00"}, {"preferred_time"}),
    ({"preferred_time": "2026-12-12T15:00:00"}, {"preferred_time"}),
    ({"preferred_time": "2020-01-01T15:00:00+03:00"}, {"preferred_time"}),
    ({"source": "<script>"}, {"source"}),
    ({"email": "not-an-email"}, {"email"}),
    ({"comment": "x" * 2001, "utm_source": ["a"]}, {"comment", "utm_source"}),
]


async def test_bad_fields_are_named(shop: Shop, http: httpx.AsyncClient, token: str) -> None:
    for over, fields in BAD:
        response = await http.post(URL, json=_body(shop, **over), headers=_auth(token))
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "invalid" and set(body["fields"]) == fields, (over, body)
        assert all(f in body["message"] for f in fields)
    assert await _count(shop) == 0 and await events(shop.app, "lead.") == []


async def test_bad_bodies_and_tokens(shop: Shop, http: httpx.AsyncClient, token: str) -> None:
    good = json.dumps(_body(shop)).encode()
    cases: list[tuple[dict[str, str], bytes, int, str]] = [
        ({}, good, 401, "unauthorized"),
        ({"Authorization": "Bearer otk_" + "x" * 43}, good, 401, "unauthorized"),
        ({"Authorization": "Basic abc"}, good, 401, "unauthorized"),
        (_auth(token), b"{not json", 422, "invalid"),
        (_auth(token), b"[1, 2]", 422, "invalid"),
        (_auth(token), b'{"client_name": "A", "hack": 1}', 422, "invalid"),
        (_auth(token), b"\xff\xfe", 422, "invalid"),
        (_auth(token), b"[" * 100_000, 413, "too_large"),
        (_auth(token), b'{"client_name": "' + b"x" * 2_000_000 + b'"}', 413, "too_large"),
    ]
    for headers, body, status, code in cases:
        response = await http.post(URL, content=body, headers={"Content-Type": "application/json", **headers})
        assert (response.status_code, response.json()["error"]) == (status, code), (body[:40], response.text)
    _id, other = await create_token(shop.app.db, "orders-only", "orders", actor="test")
    assert (await http.post(URL, json=_body(shop), headers=_auth(other))).status_code == 403
    await revoke_token(shop.app.db, "site", actor="test")
    assert (await http.post(URL, json=_body(shop), headers=_auth(token))).status_code == 401
    assert await _count(shop) == 0


async def test_erasing_a_contact(shop: Shop, http: httpx.AsyncClient, token: str) -> None:
    lead = (await http.post(URL, json=_body(shop, email="m@example.com"), headers=_auth(token))).json()
    other = (await http.post(URL, json=_body(shop, phone="+79123456700"), headers=_auth(token))).json()
    async with shop.app.db.write() as session:
        slots = await service.find_slots(session, shop.salon.haircut, now=shop_now(), limit=1)
        await service.book(session, service.NewBooking(shop.salon.haircut, slots[0].staff_id, slots[0].start,
                                                       "Мария Петрова", "+79123456789", contact_id=lead["contact_id"],
                                                       notes="аллергия на краску"), now=shop_now())  # fmt: skip
        counts = await service.erase_contact(session, lead["contact_id"], now=shop_now())
    assert counts == {"leads": 1, "bookings": 1}
    async with shop.app.db.read() as session:
        rows = {r.id: r for r in (await session.execute(select(m.leads))).all()}
        booking = (await session.execute(select(m.bookings))).one()
    assert (rows[lead["id"]].client_name, rows[lead["id"]].phone, rows[lead["id"]].email) == ("—", None, None)
    assert rows[lead["id"]].utm == {} and rows[other["id"]].phone == "+79123456700"  # someone else's stays
    assert (booking.client_name, booking.phone, booking.notes, booking.status) == ("—", None, "", "pending")


async def test_erasing_the_contact_through_the_api_erases_its_leads_and_bookings(
    shop: Shop, http: httpx.AsyncClient, token: str
) -> None:
    """`POST /api/v1/contacts/{id}/erase` (the kernel's `people.erase`) runs bookings' `Capability.erase` in
    the same transaction: names, phones and comments of the contact's leads and bookings go; times, services,
    statuses and prices stay."""
    lead = (await http.post(URL, json=_body(shop), headers=_auth(token))).json()
    async with shop.app.db.read() as session:
        slots = await service.find_slots(session, shop.salon.haircut, now=shop_now(), days=7, limit=1)
    booking_id = await service.book_or_offer(
        shop.app.db,
        service.NewBooking(shop.salon.haircut, slots[0].staff_id, slots[0].start, "Мария Петрова", "+79123456789",
                           contact_id=lead["contact_id"], lead_id=lead["id"], source="site"),
        now=shop_now(),
    )  # fmt: skip
    _id, eraser = await create_token(shop.app.db, "dpo", "contacts.erase", actor="test")
    erased = await http.post(f"/api/v1/contacts/{lead['contact_id']}/erase", headers=_auth(eraser))
    assert erased.status_code == 200, erased.text
    assert erased.json()["capabilities"]["bookings"] == {"leads": 1, "bookings": 1}
    async with shop.app.db.read() as session:
        booked = (await session.execute(select(m.bookings).where(m.bookings.c.id == booking_id))).one()
        stored = (await session.execute(select(m.leads).where(m.leads.c.id == lead["id"]))).one()
    assert (booked.client_name, booked.phone) == ("—", None) and booked.service_id == shop.salon.haircut
    assert (stored.client_name, stored.phone, stored.comment) == ("—", None, None)
    assert "Мария" not in str(tuple(booked)) + str(tuple(stored)) and "912" not in str(tuple(stored))
