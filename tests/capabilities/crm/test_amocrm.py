"""amoCRM hand-over: leads/complex with the embedded contact, pipeline / status / tags / mapped fields and a
note; bookings as a task, moved and cancelled; a 401 refreshes the OAuth token (rotated, stored encrypted);
without a refresh token a 401 fails clearly; 429 and an outage are retried into one lead. SQLite and PG."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select

from otklik.adapters.db.models import WebhookDelivery
from otklik.bootstrap import Otklik
from otklik.capabilities.crm import service
from otklik.capabilities.crm.models import connections
from otklik.capabilities.crm.sync import CrmSync
from otklik.clock import utcnow
from otklik.testing.fake_amocrm import CLIENT_ID, CLIENT_SECRET, REFRESH, FakeAmoCrmServer
from tests.capabilities.crm.events import booking, emit_event, lead


async def _connect(otk: Otklik, fake: FakeAmoCrmServer, *, oauth: bool = False) -> int:
    fake.add_field(501, "Услуга")
    fake.add_field(502, "Мастер")
    fake.add_field(503, "Дата визита")
    extra = {"refresh_token": REFRESH, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET} if oauth else {}
    cid = await service.add_amocrm(
        otk.db, otk.vault, subdomain="salon", base_url=fake.base_url, token=fake.token, actor="test", **extra
    )
    form = {"field_service": "501", "field_staff": "502", "field_start": "503", "pipeline_id": "7001",
            "status_id": "41001", "tags": "otklik, сайт"}  # fmt: skip
    await service.set_mapping(otk.db, cid, form, actor="test")
    return cid


async def _deliveries(otk: Otklik) -> list[WebhookDelivery]:
    async with otk.db.read() as session:
        return list((await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))).scalars())


def _values(record: dict[str, object]) -> dict[int, object]:
    return {f["field_id"]: f["values"][0]["value"] for f in record["custom_fields_values"]}  # type: ignore[attr-defined,index]


async def test_lead_created_is_a_complex_lead_with_contact_tags_fields_and_a_note(
    otk: Otklik, sync: CrmSync, amo: FakeAmoCrmServer
) -> None:
    await _connect(otk, amo)
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await sync.run_once(now)
    [(lead_id, record)] = amo.state.leads.items()
    assert record["name"] == "Айгуль Сафина · Стрижка #L5"
    assert (record["pipeline_id"], record["status_id"]) == (7001, 41001)
    assert record["tags"] == ["otklik", "сайт", "telegram"]
    values = _values(record)
    assert values[501] == "Стрижка"
    assert values[503] == int(datetime.fromisoformat("2026-12-12T15:00:00+03:00").timestamp())
    [contact] = amo.state.contacts.values()
    assert contact["first_name"] == "Айгуль Сафина"
    assert contact["custom_fields_values"] == [
        {"field_code": "PHONE", "values": [{"enum_code": "WORK", "value": "+79171234567"}]}
    ]
    [note] = amo.state.notes
    assert note["entity_id"] == lead_id and note["note_type"] == "common"
    assert "Клиентка хочет стрижку" in note["params"]["text"]
    assert "https://otklik.example.ru/admin/bookings/leads/5" in note["params"]["text"]
    assert "campaign=winter" in note["params"]["text"]
    assert [d.status for d in await _deliveries(otk)] == ["delivered"]


async def test_booking_task_moved_and_cancelled(otk: Otklik, sync: CrmSync, amo: FakeAmoCrmServer) -> None:
    await _connect(otk, amo)
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await emit_event(otk, "booking.created", booking(7, lead_id=5), now)
    await sync.run_once(now)
    assert len(amo.state.leads) == 1
    [(lead_id, record)] = amo.state.leads.items()
    [task] = amo.state.tasks.values()
    assert task["entity_id"] == lead_id and task["entity_type"] == "leads"
    assert task["complete_till"] == int(datetime.fromisoformat("2026-12-12T15:00:00+03:00").timestamp())

    moved = booking(7, start="2026-12-13T11:00:00+03:00", end="2026-12-13T12:00:00+03:00")
    await emit_event(otk, "booking.moved", moved, now)
    await sync.run_once(now)
    assert task["complete_till"] == int(datetime.fromisoformat("2026-12-13T11:00:00+03:00").timestamp())
    assert _values(record)[503] == task["complete_till"]

    await emit_event(otk, "booking.cancelled", booking(7, status="cancelled"), now)
    await sync.run_once(now)
    assert record["status_id"] == 143 and record["pipeline_id"] == 7001
    assert task["is_completed"] is True and "ОТМЕНЕНА" in task["result"]["text"]
    assert len(amo.state.leads) == 1 and len(amo.state.tasks) == 1
    assert {d.status for d in await _deliveries(otk)} == {"delivered"}


async def test_a_401_refreshes_the_token_and_stores_the_rotated_pair_encrypted(
    otk: Otklik, sync: CrmSync, amo: FakeAmoCrmServer
) -> None:
    cid = await _connect(otk, amo, oauth=True)
    amo.expire_token()
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await sync.run_once(now)
    assert amo.state.refreshes == 1
    assert [d.status for d in await _deliveries(otk)] == ["delivered"] and len(amo.state.leads) == 1
    async with otk.db.read() as session:
        sealed = (
            await (await session.connection()).execute(select(connections.c.secret).where(connections.c.id == cid))
        ).scalar_one()
    assert amo.refresh_token not in sealed and amo.token not in sealed  # encrypted at rest
    stored = json.loads(otk.vault.decrypt(sealed))
    assert stored["access_token"] == amo.token and stored["refresh_token"] == amo.refresh_token != REFRESH

    amo.expire_token()  # the next refresh must use the rotated refresh token (the old one is dead)
    await emit_event(otk, "lead.created", lead(6, phone="+79170000002"), now)
    await CrmSync(otk.db, otk.vault, otk.settings).run_once(now)  # a new job: tokens read from the database
    assert amo.state.refreshes == 2 and len(amo.state.leads) == 2


async def test_a_401_without_a_refresh_token_fails_clearly(otk: Otklik, sync: CrmSync, amo: FakeAmoCrmServer) -> None:
    await _connect(otk, amo)
    amo.expire_token()
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await sync.run_once(now)
    [row] = await _deliveries(otk)
    assert row.status == "failed" and "add a new long-lived token" in (row.last_error or "")
    assert amo.state.leads == {}


async def test_429_and_an_outage_end_in_one_lead(otk: Otklik, sync: CrmSync, amo: FakeAmoCrmServer) -> None:
    await _connect(otk, amo)
    amo.fail(429, times=2)
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await sync.run_once(now)
    assert [d.status for d in await _deliveries(otk)] == ["delivered"] and len(amo.state.leads) == 1

    amo.fail(503, times=3)
    await emit_event(otk, "booking.created", booking(7, lead_id=None, phone="+79170000003"), now)
    for _ in range(4):
        rows = await _deliveries(otk)
        now = max(now, rows[-1].next_attempt_at) + timedelta(seconds=1)
        await sync.run_once(now)
    assert [d.status for d in await _deliveries(otk)] == ["delivered", "delivered"]
    assert len(amo.state.leads) == 2 and len(amo.state.tasks) == 1


async def test_a_deleted_custom_field_fails_clearly(otk: Otklik, sync: CrmSync, amo: FakeAmoCrmServer) -> None:
    await _connect(otk, amo)
    amo.drop_field(502)
    now = utcnow()
    await emit_event(otk, "booking.created", booking(7), now)
    await sync.run_once(now)
    [row] = await _deliveries(otk)
    assert row.status == "failed" and "no lead field 502 (mapped to staff)" in (row.last_error or "")
    assert amo.state.leads == {}
