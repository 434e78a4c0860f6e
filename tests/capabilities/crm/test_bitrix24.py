"""Bitrix24 hand-over: events emitted as the bookings capability emits them → records in the fake portal with
the mapped fields; moves and cancels update; an outage is retried into one record; a revoked webhook and a
deleted mapped field fail clearly and can be retried. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import delete, select

from otklik.adapters.db.models import WebhookDelivery
from otklik.bootstrap import Otklik
from otklik.capabilities.crm import admin, service
from otklik.capabilities.crm.models import connections, links
from otklik.capabilities.crm.sync import CrmSync
from otklik.clock import utcnow
from otklik.testing.fake_bitrix24 import FakeBitrix24Server
from tests.capabilities.crm.events import booking, emit_event, lead


async def _connect(otk: Otklik, fake: FakeBitrix24Server, **mapping: str) -> int:
    fake.add_field("UF_CRM_SERVICE")
    fake.add_field("UF_CRM_STAFF")
    fake.add_field("UF_CRM_START")
    cid = await service.add_bitrix24(otk.db, otk.vault, fake.webhook_url, actor="test")
    form = {"field_service": "UF_CRM_SERVICE", "field_staff": "UF_CRM_STAFF", "field_start": "UF_CRM_START",
            "source_telegram": "OTHER", **mapping}  # fmt: skip
    await service.set_mapping(otk.db, cid, form, actor="test")
    return cid


async def _deliveries(otk: Otklik) -> list[WebhookDelivery]:
    async with otk.db.read() as session:
        return list((await session.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))).scalars())


async def test_lead_created_makes_a_contact_and_a_lead_with_the_mapped_fields(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server
) -> None:
    await _connect(otk, bitrix)
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    assert await sync.run_once(now) == 1

    [(lead_id, record)] = bitrix.state.leads.items()
    assert record["NAME"] == "Айгуль Сафина"
    assert record["PHONE"] == [{"VALUE": "+79171234567", "VALUE_TYPE": "WORK"}]
    assert record["SOURCE_ID"] == "OTHER"
    assert "promo_winter" in record["SOURCE_DESCRIPTION"]
    assert (record["UTM_SOURCE"], record["UTM_MEDIUM"], record["UTM_CAMPAIGN"]) == ("vk", "cpc", "winter")
    assert record["UF_CRM_SERVICE"] == "Стрижка"
    assert record["UF_CRM_START"] == "2026-12-12T15:00:00+03:00"
    assert "Клиентка хочет стрижку" in record["COMMENTS"]
    assert "https://otklik.example.ru/admin/bookings/leads/5" in record["COMMENTS"]
    assert (record["ORIGINATOR_ID"], record["ORIGIN_ID"]) == ("otklik", "lead:5")
    [(contact_id, contact)] = bitrix.state.contacts.items()
    assert record["CONTACT_ID"] == str(contact_id)
    assert "batch" in bitrix.state.http  # the new contact and its lead went together
    assert [d.status for d in await _deliveries(otk)] == ["delivered"]

    # a second lead of the same phone: the contact is found, not made again
    await emit_event(otk, "lead.created", lead(6), now)
    await sync.run_once(now)
    assert len(bitrix.state.contacts) == 1 and len(bitrix.state.leads) == 2
    assert bitrix.state.leads[max(bitrix.state.leads)]["CONTACT_ID"] == str(contact_id)


async def test_booking_reuses_the_lead_and_is_updated_on_move_and_cancel(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server
) -> None:
    await _connect(otk, bitrix)
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await emit_event(otk, "booking.created", booking(7, lead_id=5), now)
    await sync.run_once(now)
    assert len(bitrix.state.leads) == 1  # the booking's to-do is on the lead's record
    [(lead_id, record)] = bitrix.state.leads.items()
    [todo] = bitrix.state.todos.values()
    assert todo["ownerId"] == lead_id and todo["deadline"] == "2026-12-12T15:00:00+03:00"
    assert "Лейсан" in todo["description"]

    await emit_event(
        otk, "booking.moved", booking(7, start="2026-12-13T11:00:00+03:00", end="2026-12-13T12:00:00+03:00"), now
    )
    await sync.run_once(now)
    assert todo["deadline"] == "2026-12-13T11:00:00+03:00"
    assert record["UF_CRM_START"] == "2026-12-13T11:00:00+03:00"

    await emit_event(otk, "booking.cancelled", booking(7, status="cancelled"), now)
    await sync.run_once(now)
    assert record["STATUS_ID"] == "JUNK"
    assert "ОТМЕНЕНА" in todo["description"]
    assert len(bitrix.state.leads) == 1 and len(bitrix.state.todos) == 1
    assert {d.status for d in await _deliveries(otk)} == {"delivered"}


async def test_a_booking_without_a_lead_creates_one_lead_with_its_todo_in_one_batch(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server
) -> None:
    await _connect(otk, bitrix, status_cancelled="LOSE")
    now = utcnow()
    await emit_event(otk, "booking.created", booking(9, lead_id=None, phone="+79170000001"), now)
    await sync.run_once(now)
    [record] = bitrix.state.leads.values()
    assert record["ORIGIN_ID"] == "booking:9" and record["UF_CRM_STAFF"] == "Лейсан"
    assert [m for m, _ in bitrix.state.calls if m.startswith("crm.")][-3:] == [
        "crm.contact.add", "crm.lead.add", "crm.activity.todo.add",
    ]  # fmt: skip
    await emit_event(otk, "booking.cancelled", booking(9, lead_id=None), now)
    await sync.run_once(now)
    assert record["STATUS_ID"] == "LOSE"  # the mapped status, not the default JUNK


async def test_an_hour_long_outage_is_retried_into_one_record(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server
) -> None:
    await _connect(otk, bitrix)
    bitrix.down(times=10_000)
    start = utcnow()
    await emit_event(otk, "lead.created", lead(5), start)
    now = start
    attempts = 0
    while now < start + timedelta(hours=1):
        if await sync.run_once(now):
            attempts += 1
        [row] = await _deliveries(otk)
        assert row.status == "pending", row.last_error
        now = max(now + timedelta(seconds=1), row.next_attempt_at)
    assert attempts >= 5
    assert "Bitrix24 answered 500" in (row.last_error or "")
    async with otk.db.read() as session:
        shown = (await (await session.connection()).execute(select(connections.c.last_error))).scalar_one()
    assert "500" in shown
    assert [f.id for f in await admin.failures(otk)] == [row.id]  # visible while retried

    bitrix.up()
    await sync.run_once(now)
    [row] = await _deliveries(otk)
    assert row.status == "delivered"
    assert len(bitrix.state.leads) == 1 and len(bitrix.state.contacts) == 1
    assert await admin.failures(otk) == []


async def test_a_lost_answer_does_not_make_a_second_lead(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server
) -> None:
    cid = await _connect(otk, bitrix)
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await sync.run_once(now)
    async with otk.db.write() as session:  # as if the worker died after the portal answered
        await (await session.connection()).execute(delete(links))
    [row] = await _deliveries(otk)
    await admin.retry(otk, str(row.id), actor="test")
    await sync.run_once(now + timedelta(seconds=1))
    assert len(bitrix.state.leads) == 1  # found by ORIGIN_ID, not created again
    assert "crm.lead.list" in bitrix.methods()
    async with otk.db.read() as session:
        stored = (
            await (await session.connection()).execute(select(links.c.record_ext).where(links.c.connection_id == cid))
        ).all()
    assert [r.record_ext for r in stored] == [str(next(iter(bitrix.state.leads)))]


async def test_query_limit_exceeded_waits_and_goes_on(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server, sleeps: object
) -> None:
    await _connect(otk, bitrix)
    bitrix.fail("QUERY_LIMIT_EXCEEDED", times=2)
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await sync.run_once(now)
    assert [d.status for d in await _deliveries(otk)] == ["delivered"]
    assert len(bitrix.state.leads) == 1
    assert len(sleeps.waits) >= 2 and all(0 < w <= 1 for w in sleeps.waits)  # type: ignore[attr-defined]


async def test_a_revoked_webhook_fails_clearly_without_retrying(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server
) -> None:
    await _connect(otk, bitrix)
    bitrix.revoke()
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await sync.run_once(now)
    [row] = await _deliveries(otk)
    assert row.status == "failed"
    assert "refused the inbound webhook" in (row.last_error or "") and "INVALID_CREDENTIALS" in (row.last_error or "")
    assert bitrix.state.leads == {}
    ok, message = await service.test_connection(otk.db, otk.vault, (await service.list_connections(otk.db))[0].id)
    assert not ok and "add it again" in message


async def test_a_mapped_field_that_no_longer_exists_fails_clearly_then_retries(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server
) -> None:
    await _connect(otk, bitrix)
    bitrix.drop_field("UF_CRM_STAFF")
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    await sync.run_once(now)
    [row] = await _deliveries(otk)
    assert row.status == "failed"
    assert "no lead field UF_CRM_STAFF (mapped to staff)" in (row.last_error or "")
    assert bitrix.state.leads == {}  # not a lead silently without the field

    bitrix.add_field("UF_CRM_STAFF")  # fixed in the portal; the administrator presses "Retry"
    assert await admin.retry(otk, str(row.id), actor="owner") == 1
    await sync.run_once(now + timedelta(seconds=1))
    [row] = await _deliveries(otk)
    assert row.status == "delivered" and len(bitrix.state.leads) == 1


async def test_malformed_events_fail_clearly_and_others_are_ignored(
    otk: Otklik, sync: CrmSync, bitrix: FakeBitrix24Server
) -> None:
    await _connect(otk, bitrix)
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5) | {"lead_id": "5; DROP TABLE"}, now)
    await emit_event(otk, "booking.created", booking(8) | {"booking_id": True}, now)
    async with otk.db.write() as session:
        from otklik.platform.webhooks import emit

        await emit(session, "lead.updated", {"lead_id": 5}, now=now, subject="lead:5")
    await sync.run_once(now)
    rows = await _deliveries(otk)
    assert [r.status for r in rows] == ["failed", "failed", "delivered"]
    assert "malformed 'lead_id'" in (rows[0].last_error or "")
    assert "malformed 'booking_id'" in (rows[1].last_error or "")
    assert bitrix.state.leads == {}


async def test_two_jobs_at_once_hand_each_lead_over_once(otk: Otklik, bitrix: FakeBitrix24Server) -> None:
    await _connect(otk, bitrix)
    now = utcnow()
    for i in range(1, 9):
        await emit_event(otk, "lead.created", lead(i, phone=f"+7917000000{i}"), now)
    small = otk.settings.model_copy(update={"webhook_batch": 3})
    jobs = [CrmSync(otk.db, otk.vault, small), CrmSync(otk.db, otk.vault, small)]
    for _ in range(6):
        await asyncio.gather(*(job.run_once(now) for job in jobs))
    assert sorted(r["ORIGIN_ID"] for r in bitrix.state.leads.values()) == sorted(f"lead:{i}" for i in range(1, 9))
    assert {d.status for d in await _deliveries(otk)} == {"delivered"}
