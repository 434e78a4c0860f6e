"""Connections, mapping and the internal endpoint: hostile input refused with clear messages and nothing
stored; the HTTP webhook worker never POSTs the CRM's deliveries; no CRM → no rows pile up; the leaky bucket."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import WebhookDelivery, WebhookEndpoint
from otklik.bootstrap import Otklik
from otklik.capabilities.crm import service
from otklik.capabilities.crm.base import LeakyBucket
from otklik.capabilities.crm.bitrix24 import check_webhook_url, command
from otklik.capabilities.crm.models import connections
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput
from otklik.platform.webhooks.service import add_endpoint
from otklik.platform.webhooks.worker import WebhookDispatcher
from otklik.testing.fake_bitrix24 import nest
from tests.capabilities.crm.events import emit_event, lead

HOOK = "https://salon.bitrix24.ru/rest/1/abc123def456/"


async def _count(otk: Otklik, table: object) -> int:
    async with otk.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "", "http://salon.bitrix24.ru/rest/1/abc/", "https://salon.bitrix24.ru/", "https://salon.bitrix24.ru/rest/x/abc/",
        "https://user:pw@salon.bitrix24.ru/rest/1/abc/", "https://salon.bitrix24.ru/rest/1/abc/?a=1",
        "javascript:alert(1)", "https://salon.bitrix24.ru/rest/1/" + "a" * 600 + "/", "https://s\u0000.ru/rest/1/a/",
    ],
)  # fmt: skip
def test_bad_bitrix_webhook_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="webhook URL"):
        check_webhook_url(url)


async def test_a_refused_connection_stores_nothing(otk: Otklik) -> None:
    with pytest.raises(InvalidInput, match="webhook URL"):
        await service.add_bitrix24(otk.db, otk.vault, "http://salon.bitrix24.ru/rest/1/abc/", actor="test")
    assert await _count(otk, connections) == 0
    assert check_webhook_url("https://salon.bitrix24.ru/rest/1/abc") == "https://salon.bitrix24.ru/rest/1/abc/"


async def test_the_secret_is_stored_encrypted_and_the_name_is_unique(otk: Otklik) -> None:
    cid = await service.add_bitrix24(otk.db, otk.vault, HOOK, actor="test")
    async with otk.db.read() as session:
        row = (await (await session.connection()).execute(select(connections))).one()
    assert "abc123def456" not in row.secret and "abc123def456" not in str(row.config)
    assert "abc123def456" in otk.vault.decrypt(row.secret)
    [view] = await service.list_connections(otk.db)
    assert (view.id, view.target, view.name) == (cid, "salon.bitrix24.ru", "salon.bitrix24.ru")
    with pytest.raises(InvalidInput, match="exists"):
        await service.add_bitrix24(otk.db, otk.vault, HOOK, actor="test")


async def test_amocrm_input_is_checked(otk: Otklik) -> None:
    with pytest.raises(InvalidInput, match="subdomain"):
        await service.add_amocrm(otk.db, otk.vault, subdomain="evil.com/x", token="t", actor="test")
    with pytest.raises(InvalidInput, match="token"):
        await service.add_amocrm(otk.db, otk.vault, subdomain="salon", token="a b", actor="test")
    with pytest.raises(InvalidInput, match="together"):
        await service.add_amocrm(otk.db, otk.vault, subdomain="salon", token="t", refresh_token="r", actor="test")
    with pytest.raises(InvalidInput, match="https"):
        await service.add_amocrm(otk.db, otk.vault, subdomain="s", base_url="http://10.0.0.1", token="t", actor="test")
    assert await _count(otk, connections) == 0


def test_mapping_names_every_bad_value() -> None:
    form = {
        "field_service": "UF_CRM_1", "field_staff": "NAME; drop", "status_cancelled": "<script>",
        "source_telegram": "OTHER", "source_Bad!": "WEB", "responsible_id": "-3", "unknown": "x",
    }  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        service.parse_mapping("bitrix24", form)
    message = caught.value.user_message
    for key in ("field_staff", "status_cancelled", "source_Bad!", "responsible_id"):
        assert key in message
    assert "field_service" not in message
    good = service.parse_mapping("bitrix24", {"field_service": "UF_CRM_1", "source_telegram": "OTHER"})
    assert good == {"fields": {"service": "UF_CRM_1"}, "sources": {"telegram": "OTHER"}}


def test_amocrm_mapping() -> None:
    assert service.parse_mapping("amocrm", {"field_start": "503", "tags": "a, b", "pipeline_id": "7"}) == {
        "fields": {"start": 503}, "pipeline_id": 7, "tags": ["a", "b"],
    }  # fmt: skip
    with pytest.raises(InvalidInput, match="pipeline_id"):
        service.parse_mapping("amocrm", {"pipeline_id": "1e9"})
    with pytest.raises(InvalidInput, match="tags"):
        service.parse_mapping("amocrm", {"tags": ",".join(str(i) for i in range(20))})


async def test_the_http_worker_skips_the_crm_and_nothing_piles_up_without_a_crm(otk: Otklik) -> None:
    now = utcnow()
    await emit_event(otk, "lead.created", lead(5), now)
    assert await _count(otk, WebhookDelivery) == 0  # no CRM connected: the endpoint is off

    cid = await service.add_bitrix24(otk.db, otk.vault, HOOK, actor="test")
    await add_endpoint(otk.db, otk.vault, "https://erp.example.com/hook", "lead.*", actor="test")
    await emit_event(otk, "lead.created", lead(6), now)
    async with otk.db.read() as session:
        urls = sorted((await session.execute(select(WebhookEndpoint.url))).scalars())
    assert urls == ["https://erp.example.com/hook", "internal:crm"]
    assert await _count(otk, WebhookDelivery) == 2
    http = await WebhookDispatcher(otk.db, otk.vault, otk.settings).claim(now)
    assert [c.url for c in http] == ["https://erp.example.com/hook"]
    crm = await WebhookDispatcher(otk.db, otk.vault, otk.settings, consumer="crm").claim(now)
    assert [c.url for c in crm] == ["internal:crm"] and crm[0].payload["data"]["lead_id"] == 6

    await service.set_active(otk.db, otk.vault, cid, False, actor="test")
    await emit_event(otk, "lead.created", lead(7), now)
    assert await _count(otk, WebhookDelivery) == 3  # only the HTTP endpoint's


def test_the_leaky_bucket_allows_a_burst_then_the_rate() -> None:
    clock = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    bucket = LeakyBucket(2.0, 50, clock=lambda: clock[0], sleep=sleep)
    import asyncio

    async def go() -> None:
        for _ in range(50):
            await bucket.acquire()
        assert waits == []
        await bucket.acquire()
        await bucket.acquire()
        assert waits == [0.5, 0.5]
        clock[0] += 10  # 20 requests leaked
        for _ in range(20):
            await bucket.acquire()
        assert waits == [0.5, 0.5]
        bucket.fill()  # 503 QUERY_LIMIT_EXCEEDED
        await bucket.acquire()
        assert waits[-1] == 0.5

    asyncio.run(go())


def test_batch_commands_round_trip_through_php_query_strings() -> None:
    cmd = command("crm.lead.add", {"fields": {"TITLE": "Стрижка & co=1", "PHONE": [{"VALUE": "+7917", "VALUE_TYPE": "WORK"}],
                                              "CONTACT_ID": "$result[contact]"}})  # fmt: skip
    method, _, query = cmd.partition("?")
    from urllib.parse import parse_qsl

    assert method == "crm.lead.add"
    assert "$result[contact]" in query
    assert nest(parse_qsl(query)) == {
        "fields": {
            "TITLE": "Стрижка & co=1",
            "PHONE": [{"VALUE": "+7917", "VALUE_TYPE": "WORK"}],
            "CONTACT_ID": "$result[contact]",
        }
    }


async def test_the_job_creates_no_endpoint_in_an_install_without_a_crm(otk: Otklik) -> None:
    import asyncio

    from otklik.capabilities.crm.sync import CrmSync

    stop = asyncio.Event()
    stop.set()  # one start-up pass, no loop
    await CrmSync(otk.db, otk.vault, otk.settings).run(stop)
    assert await _count(otk, WebhookEndpoint) == 0
    cid = await service.add_bitrix24(otk.db, otk.vault, HOOK, actor="test")
    await service.remove(otk.db, otk.vault, cid, actor="test")
    async with otk.db.read() as session:
        [endpoint] = (await session.execute(select(WebhookEndpoint))).scalars()
    assert endpoint.url == "internal:crm" and not endpoint.active


async def test_the_crm_endpoint_is_not_switched_removed_or_tested_by_hand(otk: Otklik) -> None:
    """`internal:crm` follows the CRM connections: Settings → Webhooks and `otklik webhooks` refuse to disable,
    remove or test it (removing it would lose the events handed over until the next restart)."""
    from otklik.core.errors import Conflict
    from otklik.platform.webhooks import service as hooks

    await service.add_bitrix24(otk.db, otk.vault, HOOK, actor="test")
    async with otk.db.read() as session:
        endpoint = (await session.execute(select(WebhookEndpoint))).scalars().one()
    assert endpoint.url == "internal:crm" and endpoint.active
    for attempt in (
        hooks.set_active(otk.db, endpoint.id, False, actor="test"),
        hooks.remove_endpoint(otk.db, endpoint.id, actor="test"),
        hooks.send_test(otk.db, endpoint.id, actor="test"),
    ):
        with pytest.raises(Conflict, match="internal consumer"):
            await attempt
    async with otk.db.read() as session:
        again = (await session.execute(select(WebhookEndpoint))).scalars().one()
    assert (again.id, again.active) == (endpoint.id, True)
    assert await _count(otk, WebhookDelivery) == 0  # no test event was queued
