"""Zenvia's webhook, hostile and odd input: a missing or wrong secret header (401, nothing stored), an unknown
hook, bodies that are not JSON, oversized bodies, redelivery, every content type, and the answer that comes
before the work."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import func, select

from otklik.adapters.db.models import Contact, ContactIdentity, InboundEventRow, Message, OutboxRow
from otklik.channels.zenvia.parse import SECRET_HEADER
from tests.channels.zenvia.conftest import USER, ZV


async def _count(zv: ZV, table: type) -> int:
    async with zv.app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _inbound(zv: ZV) -> list[Message]:
    async with zv.app.db.read() as session:
        return list((await session.execute(select(Message).where(Message.direction == "in").order_by(Message.id))).scalars())  # fmt: skip


async def test_connect_created_both_subscriptions_with_the_secret_header(zv: ZV) -> None:
    subs = list(zv.fake.state.subscriptions.values())
    assert sorted(s["eventType"] for s in subs) == ["MESSAGE", "MESSAGE_STATUS"]
    message = next(s for s in subs if s["eventType"] == "MESSAGE")
    assert message["criteria"] == {"channel": "whatsapp", "direction": "IN"}
    assert message["webhook"]["url"].startswith("https://bot.example.com/webhooks/zenvia/")
    secret = message["webhook"]["headers"][SECRET_HEADER]
    assert len(secret) >= 32 and all(s["webhook"]["headers"][SECRET_HEADER] == secret for s in subs)
    async with zv.app.db.read() as session:
        from otklik.adapters.db.models import ChannelAccount

        account = await session.get(ChannelAccount, zv.account)
    assert account is not None and secret not in json.dumps(account.config)  # stored encrypted


async def test_a_missing_or_wrong_secret_is_401_and_nothing_is_stored(zv: ZV) -> None:
    event = zv.fake.text_event(USER, "oi")
    for headers in ({}, {SECRET_HEADER: ""}, {SECRET_HEADER: "wrong-secret"}, {"X-Other": "x"}):
        await zv.post(event, status=401, headers={"Content-Type": "application/json", **headers})
    url = zv.fake.subscription_for(event)["webhook"]["url"]
    for path in ("/webhooks/zenvia/unknown-hook-id", "/webhooks/zenvia/<script>", "/webhooks/zenvia/" + "a" * 300):
        await zv.post(event, status=401, url=path)
    assert url.endswith(zv.channels.hooks[next(iter(zv.channels.hooks))].hook)
    assert await _count(zv, InboundEventRow) == 0 and await _count(zv, Message) == 0


async def test_garbage_and_oversized_bodies(zv: ZV) -> None:
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe", b"", b"[]", b'"text"'):
        await zv.post(raw, status=400)
    await zv.post(json.dumps({"type": "MESSAGE", "pad": "x" * (2 * 1024 * 1024)}).encode(), status=413)
    many = json.dumps([zv.fake.text_event(USER, "x")] * 1001).encode()
    await zv.post(many, status=400)
    # unknown fields and types are ignored; nothing stored, the answer is 200
    for odd in (
        {"type": "BRAND_NEW", "message": {"id": 1}, "extra": [1, 2]},
        {"type": "MESSAGE", "message": "not an object", "timestamp": "yesterday"},
        {"type": "MESSAGE", "message": {"id": "m1", "from": "<script>", "contents": [{"type": "text", "text": "x"}]}},
        {"type": "MESSAGE_STATUS", "messageId": "", "messageStatus": {"code": "READ"}},
    ):
        await zv.post(json.dumps(odd).encode())
    assert await _count(zv, InboundEventRow) == 0


async def test_the_answer_comes_before_the_work(zv: ZV) -> None:
    gate = asyncio.Event()
    real = zv.channels.ingest

    async def slow(event: Any) -> Any:
        await gate.wait()  # the kernel is slow (a lock, a big flow): Zenvia must not wait for it
        return await real(event)

    zv.channels.ingest = slow
    response = await zv.fake.deliver(zv.http, zv.fake.text_event(USER, "oi"))
    assert response.status_code == 200 and response.json() == {"ok": True, "queued": 1}
    assert await _count(zv, InboundEventRow) == 0  # answered, not yet ingested
    gate.set()
    await zv.channels.drain()
    assert await _count(zv, InboundEventRow) == 1


async def test_a_failing_ingest_is_retried_then_given_up_with_its_id(zv: ZV) -> None:
    calls: list[str] = []
    real = zv.channels.ingest

    async def flaky(event: Any) -> Any:
        calls.append(event.external_id)
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        return await real(event)

    zv.channels.ingest = flaky
    event = zv.fake.text_event(USER, "oi")
    await zv.post(event)
    assert len(calls) == 2 and await _count(zv, InboundEventRow) == 1 and zv.channels.failed == []


async def test_a_redelivered_event_is_stored_and_answered_once(zv: ZV) -> None:
    event = zv.fake.text_event(USER, "/start")
    await zv.post(event)
    await zv.post(event)
    assert await _count(zv, InboundEventRow) == 1
    assert await _count(zv, OutboxRow) == 2  # the two replies of /start, once


async def test_every_content_type(zv: ZV) -> None:
    fake = zv.fake
    await zv.post(fake.text_event(USER, "oi", name="Maria <b>"))
    await zv.post(fake.button_event(USER, "menu:track", "Rastrear"))
    await zv.post(fake.location_event(USER, -23.55, -46.63))
    await zv.post(fake.file_event(USER, b"\x89PNG fake image", "image/png", caption="o código"))
    await zv.post(fake.file_event(USER, b"%PDF-1.4", "application/pdf", filename="nota.pdf"))
    await zv.post(fake.message_event(USER, [{"type": "sticker", "stickerUrl": "x"}]))
    other = fake.text_event(USER, "to another sender")
    other["message"]["to"] = "someone-else"
    await zv.post(other)
    rows = await _inbound(zv)
    assert [r.kind for r in rows] == ["text", "button", "text", "photo", "file", "text"]
    assert rows[1].payload.get("payload") == "menu:track" or "menu:track" in json.dumps(rows[1].payload)
    assert rows[2].text == "Loja — Rua 1"
    assert len(rows[3].payload["attachments"]) == 1 and rows[3].text == "o código"
    assert rows[4].payload["attachments"][0]["filename"] == "nota.pdf"
    assert "unsupported" in json.dumps(rows[5].payload) or rows[5].text == ""
    async with zv.app.db.read() as session:
        ids = list((await session.execute(select(ContactIdentity.external_id))).scalars())
        names = list((await session.execute(select(Contact.display_name))).scalars())
    assert ids == [USER]  # the contact keeps its Zenvia id
    assert names == ["Maria <b>"]


async def test_a_file_that_404s_or_is_too_big_keeps_the_message(zv: ZV) -> None:
    fake = zv.fake
    gone = fake.file_event(USER, b"x", "image/jpeg")
    gone["message"]["contents"][0]["fileUrl"] = f"{fake.base_url}/files/nope"
    await zv.post(gone)
    await zv.post(fake.file_event(USER, b"0" * (zv.app.settings.max_upload_bytes + 10), "image/jpeg"))
    rows = await _inbound(zv)
    assert [r.payload.get("upload_error") for r in rows] == ["download_failed", "too_large"]
    assert all("attachments" not in r.payload for r in rows)
