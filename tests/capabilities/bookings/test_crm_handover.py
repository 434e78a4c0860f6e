"""The issue's hand-over end to end: a lead posted to `POST /api/lead` and the booking made for it reach the
fake Bitrix24 and amoCRM with the mapped fields — bookings emits, the CRM job consumes, neither imports the
other (the internal webhook consumer). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from otklik.capabilities.bookings import service as bookings
from otklik.capabilities.crm import service as crm
from otklik.capabilities.crm.sync import CrmSync
from otklik.platform.apitokens import create_token
from otklik.testing.fake_amocrm import FakeAmoCrmServer
from otklik.testing.fake_bitrix24 import FakeBitrix24Server
from tests.capabilities.bookings.conftest import NOW, Shop


async def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
async def http(shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    from otklik.web.app import create_app

    web = create_app(shop.app, worker=False, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://api.test") as client:
        yield client


async def _post_lead(shop: Shop, http: httpx.AsyncClient) -> dict[str, object]:
    _id, token = await create_token(shop.app.db, "site", "leads", actor="test")
    body = {"client_name": "Мария Петрова", "phone": "8 (912) 345-67-89", "service_id": shop.salon.haircut,
            "preferred_time": "2026-12-12T15:00:00+03:00", "source": "site", "utm_source": "yandex",
            "utm_campaign": "winter", "comment": "Хочу к Айгуль"}  # fmt: skip
    answer = await http.post("/api/lead", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    lead: dict[str, object] = answer.json()
    return lead


async def _book_for(shop: Shop, lead: dict[str, object]) -> bookings.Slot:
    async with shop.app.db.read() as session:
        slots = await bookings.find_slots(session, shop.salon.haircut, now=NOW, days=7, limit=3)
    slot = slots[0]
    new = bookings.NewBooking(
        service_id=shop.salon.haircut, staff_id=slot.staff_id, start=slot.start, client_name="Мария Петрова",
        phone="+79123456789", contact_id=int(str(lead["contact_id"])), lead_id=int(str(lead["id"])), source="site",
    )  # fmt: skip
    await bookings.book_or_offer(shop.app.db, new, now=NOW)
    return slot


async def test_a_site_lead_and_its_booking_reach_bitrix24(shop: Shop, http: httpx.AsyncClient) -> None:
    async with FakeBitrix24Server() as portal:
        for field in ("UF_CRM_SERVICE", "UF_CRM_STAFF", "UF_CRM_START"):
            portal.add_field(field)
        cid = await crm.add_bitrix24(shop.app.db, shop.app.vault, portal.webhook_url, actor="test")
        await crm.set_mapping(
            shop.app.db, cid, {"field_service": "UF_CRM_SERVICE", "field_staff": "UF_CRM_STAFF",
                               "field_start": "UF_CRM_START"}, actor="test",
        )  # fmt: skip
        sync = CrmSync(shop.app.db, shop.app.vault, shop.app.settings, sleep=_no_sleep)
        lead = await _post_lead(shop, http)
        slot = await _book_for(shop, lead)
        assert await sync.run_once(NOW + timedelta(seconds=1)) >= 1
        await sync.run_once(NOW + timedelta(seconds=2))

        [record] = portal.state.leads.values()
        assert record["NAME"] == "Мария Петрова"
        assert record["PHONE"] == [{"VALUE": "+79123456789", "VALUE_TYPE": "WORK"}]
        assert record["UF_CRM_SERVICE"] == "Стрижка"
        assert (record["UTM_SOURCE"], record["UTM_CAMPAIGN"]) == ("yandex", "winter")
        assert record["ORIGIN_ID"] == f"lead:{lead['id']}"
        [(record_id, _)] = portal.state.leads.items()
        [todo] = portal.state.todos.values()  # the booking is a to-do on the lead's record, not a second lead
        assert todo["ownerId"] == record_id and "Стрижка" in str(todo["description"])
        assert todo["deadline"] == slot.start.astimezone(NOW.tzinfo).isoformat()
        assert len(portal.state.contacts) == 1


async def test_a_site_lead_reaches_amocrm_once(shop: Shop, http: httpx.AsyncClient) -> None:
    async with FakeAmoCrmServer() as amo:
        amo.add_field(501, "Услуга")
        cid = await crm.add_amocrm(
            shop.app.db, shop.app.vault, subdomain="salon", base_url=amo.base_url, token=amo.token, actor="test"
        )
        await crm.set_mapping(
            shop.app.db, cid, {"field_service": "501", "pipeline_id": "7001", "status_id": "41001",
                               "tags": "сайт"}, actor="test",
        )  # fmt: skip
        sync = CrmSync(shop.app.db, shop.app.vault, shop.app.settings, sleep=_no_sleep)
        lead = await _post_lead(shop, http)
        await sync.run_once(NOW + timedelta(seconds=1))
        await sync.run_once(NOW + timedelta(seconds=2))  # nothing left: no second lead

        [record] = amo.state.leads.values()
        fields = {f["field_id"]: f["values"][0]["value"] for f in record["custom_fields_values"]}
        assert fields[501] == "Стрижка"
        assert f"#L{lead['id']}" in str(record["name"])
