"""The API (webhook) channel: signed inbound webhooks, signed idempotent outbound deliveries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import InboundEventRow
from otklik.bootstrap import Otklik
from otklik.channels.api.adapter import sign
from otklik.platform.channel_accounts import add_account, new_secret
from otklik.web.app import create_app
from tests.integration.receiver import Receiver


@pytest.fixture
async def setup(otklik: Otklik) -> AsyncIterator[tuple[httpx.AsyncClient, Receiver, str]]:
    secret = new_secret()
    receiver = Receiver(secret=secret).serve()
    await add_account(
        otklik.db, otklik.vault, kind="webhook", name="crm", pack="echo", secret=secret, config={"url": receiver.url}
    )
    await otklik.reload()
    app = create_app(otklik, worker=False, manage_lifecycle=False)
    otklik.start_worker()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
            yield http, receiver, secret
    finally:
        receiver.stop()


async def post(
    http: httpx.AsyncClient, secret: str, payload: object, *, signature: str | None = None, account: str = "crm"
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await http.post(
        f"/webhooks/api/{account}",
        content=body,
        headers={
            "X-Otklik-Signature": sign(secret, body) if signature is None else signature,
            "Content-Type": "application/json",
        },
    )


async def events(otklik: Otklik) -> int:
    async with otklik.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundEventRow)) or 0)


async def test_signed_message_is_answered_through_the_receiver_once(
    setup: tuple[httpx.AsyncClient, Receiver, str],
    otklik: Otklik,
) -> None:
    http, receiver, secret = setup
    first = await post(http, secret, {"id": "m1", "sender": "client-7", "text": "привет"})
    again = await post(http, secret, {"id": "m1", "sender": "client-7", "text": "привет"})
    assert first.json() == {"accepted": True, "duplicate": False} and again.json()["duplicate"] is True
    for _ in range(100):
        if receiver.accepted:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert [b["message"]["text"] for b in receiver.accepted.values()] == ["готов"]
    assert all(b["recipient"] == "client-7" for b in receiver.accepted.values())


@pytest.mark.parametrize(
    ("payload", "signature", "account", "status"),
    [
        ({"id": "x", "sender": "s", "text": "hi"}, "sha256=" + "0" * 64, "crm", 401),
        ({"id": "x", "sender": "s", "text": "hi"}, "", "crm", 401),
        ({"id": "x", "sender": "s", "text": "hi"}, None, "nobody", 401),
        ({"id": "x", "sender": "s"}, None, "crm", 400),
        ({"id": "x", "sender": "s", "text": "  "}, None, "crm", 400),
        ({"id": "", "sender": "s", "text": "hi"}, None, "crm", 400),
        ({"id": "x", "sender": "s", "text": "x" * 5000}, None, "crm", 400),
        (["not", "an", "object"], None, "crm", 400),
    ],
)
async def test_bad_webhooks_are_refused_and_nothing_is_stored(
    setup: tuple[httpx.AsyncClient, Receiver, str],
    otklik: Otklik,
    payload: object,
    signature: str | None,
    account: str,
    status: int,
) -> None:
    http, _receiver, secret = setup
    before = await events(otklik)
    response = await post(http, secret, payload, signature=signature, account=account)
    assert response.status_code == status and response.json()["detail"]
    assert await events(otklik) == before
