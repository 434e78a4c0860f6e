"""The SMS connectors against the fake gateway on loopback: SMS.ru's documented shapes and a generic HTTP
gateway; 429 / 5xx / timeouts / refusals classified for the worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from otklik.core.channel import SendError
from otklik.platform.reach.senders import DELIVERED, PENDING, UNDELIVERED, HttpConfig, HttpSmsSender, SmsRuSender
from otklik.testing.fake_sms import FakeSmsServer

API_ID = "test-api-id"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSmsServer]:
    async with FakeSmsServer(api_id=API_ID) as server:
        yield server


@pytest.fixture
async def smsru(fake: FakeSmsServer) -> AsyncIterator[SmsRuSender]:
    sender = SmsRuSender(API_ID, sender="SalonLen", base_url=fake.base_url, timeout=1)
    yield sender
    await sender.aclose()


async def test_smsru_sends_and_reads_the_delivery_status(fake: FakeSmsServer, smsru: SmsRuSender) -> None:
    result = await smsru.send("+79171234567", "Запись завтра в 15:00")
    (sms,) = fake.sent
    assert (sms.to, sms.text, sms.sender) == ("79171234567", "Запись завтра в 15:00", "SalonLen")
    assert result.provider_id == sms.sms_id
    assert await smsru.status([sms.sms_id]) == {sms.sms_id: PENDING}
    fake.set_status(sms.sms_id, 103)
    assert await smsru.status([sms.sms_id]) == {sms.sms_id: DELIVERED}
    fake.set_status(sms.sms_id, 104)
    assert await smsru.status([sms.sms_id, "nope"]) == {sms.sms_id: UNDELIVERED, "nope": UNDELIVERED}


async def test_smsru_refusals_are_permanent_and_outages_transient(fake: FakeSmsServer, smsru: SmsRuSender) -> None:
    wrong = SmsRuSender("wrong", base_url=fake.base_url, timeout=1)
    with pytest.raises(SendError, match="200") as refused:
        await wrong.send("+79171234567", "x")
    assert refused.value.permanent
    await wrong.aclose()
    fake.unroutable.add("79171234567")
    with pytest.raises(SendError, match="207") as no_route:
        await smsru.send("+79171234567", "x")
    assert no_route.value.permanent
    fake.unroutable.clear()
    fake.smsru_error(220)
    with pytest.raises(SendError, match="220") as busy:
        await smsru.send("+79171234567", "x")
    assert not busy.value.permanent and busy.value.retry_after is None
    fake.fail(429, retry_after=7)
    with pytest.raises(SendError) as limited:
        await smsru.send("+79171234567", "x")
    assert limited.value.retry_after == 7
    fake.fail(503)
    with pytest.raises(SendError, match="503") as down:
        await smsru.send("+79171234567", "x")
    assert not down.value.permanent
    fake.delay(5)
    with pytest.raises(SendError, match="Timeout") as slow:
        await smsru.send("+79171234567", "x")
    assert not slow.value.permanent
    assert fake.sent == []  # nothing was taken by any of these


async def test_smsru_garbage_answer_is_transient(fake: FakeSmsServer) -> None:
    sender = SmsRuSender(API_ID, base_url=fake.base_url + "/nowhere", timeout=1)  # 404 page, not JSON
    with pytest.raises(SendError, match="404") as error:
        await sender.send("+79171234567", "x")
    assert error.value.permanent
    await sender.aclose()


def _gateway(fake: FakeSmsServer, **overrides: object) -> HttpSmsSender:
    data: dict[str, object] = {
        "url": fake.gateway_url, "method": "POST", "format": "json",
        "body": {"to": "{phone}", "message": "{text}", "from": "{sender}"},
        "auth_header": "Authorization", "success": "status=ok", "id_path": "messages.0.id",
    }  # fmt: skip
    data.update(overrides)
    return HttpSmsSender(HttpConfig.from_dict(data), secret="Bearer gw-secret", sender="SalonLen", timeout=1)


@pytest.mark.parametrize("form", ["json", "form"])
async def test_generic_gateway_json_and_form(fake: FakeSmsServer, form: str) -> None:
    sender = _gateway(fake, format=form)
    hostile = 'Hi "}{phone}{sender}\\u0000, ок'
    result = await sender.send("+79171234567", hostile)
    (sms,) = fake.sent
    assert (sms.to, sms.text, sms.sender, sms.via) == ("79171234567", hostile, "SalonLen", "gateway")
    assert result.provider_id == sms.sms_id  # the text's placeholders were not filled: one pass
    await sender.aclose()


async def test_generic_gateway_failures(fake: FakeSmsServer) -> None:
    sender = _gateway(fake)
    fake.unroutable.add("79171234567")
    with pytest.raises(SendError, match="status='rejected'") as rejected:
        await sender.send("+79171234567", "x")
    assert rejected.value.permanent
    unauthorised = HttpSmsSender(sender.config, secret="Bearer wrong", timeout=1)
    with pytest.raises(SendError, match="401") as denied:
        await unauthorised.send("+79171234568", "x")
    assert denied.value.permanent
    fake.fail(502)
    with pytest.raises(SendError, match="502") as down:
        await sender.send("+79171234568", "x")
    assert not down.value.permanent
    assert fake.sent == []
    await sender.aclose()
    await unauthorised.aclose()


def test_smsru_callback_parsing_skips_what_is_malformed() -> None:
    from urllib.parse import urlencode

    from otklik.platform.reach.senders import parse_smsru_callback

    body = urlencode({
        "data[0]": "sms_status\n000000-1\n103\n1450097500", "data[1]": "sms_status\n000000-2\n104\n1",
        "data[2]": "sms_status\n000000-3\n102\n1", "data[3]": "sms_status\n000000-4\nabc\n1",
        "data[4]": "sms_status", "data[5]": "callback_check\n1", "other": "sms_status\n000000-5\n103\n1",
    }).encode()  # fmt: skip
    assert parse_smsru_callback(body) == {"000000-1": DELIVERED, "000000-2": UNDELIVERED, "000000-3": PENDING}
    assert parse_smsru_callback(b"\xff\xfe\x00garbage=%%%") == {}
    many = "&".join(f"data[{n}]=sms_status%0A{n}%0A103%0A1" for n in range(500)).encode()
    assert parse_smsru_callback(many) == {}  # more fields than the limit: refused as a whole
