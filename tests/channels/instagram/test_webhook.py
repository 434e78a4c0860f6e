"""Instagram's webhook, hostile and odd input: the subscription check, forged / missing signatures (401, nothing
stored), bodies that are not JSON or too big, redelivery, and every inbound kind (text, quick reply, image,
story reply, story mention, echo, read receipt)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import InboundEventRow, Message
from otklik.channels.instagram.parse import parse_webhook, verify_signature
from otklik.core.messages import EventKind
from otklik.testing.fake_instagram import FakeInstagramServer
from tests.channels.instagram.conftest import IG, USER, VERIFY


async def _count(ig: IG, table: type) -> int:
    async with ig.app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _inbound(ig: IG) -> list[Message]:
    async with ig.app.db.read() as session:
        return list((await session.execute(select(Message).where(Message.direction == "in").order_by(Message.id))).scalars())  # fmt: skip


async def test_the_subscription_check(ig: IG) -> None:
    ok = await ig.http.get(ig.path, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "42"})
    assert ok.status_code == 200 and ok.text == "42"
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "x" * 5000},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY},
    ):
        assert (await ig.http.get(ig.path, params=params)).status_code == 403, params
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}
    assert (await ig.http.get("/webhooks/instagram/999", params=good)).status_code == 403
    assert (await ig.http.get("/webhooks/instagram/not-digits", params=good)).status_code == 403


@pytest.mark.parametrize("signature", [None, "", "sha256=", "sha256=" + "0" * 64, "sha1=abc"])
async def test_a_forged_or_missing_signature_is_401_and_nothing_is_stored(ig: IG, signature: str | None) -> None:
    body = json.dumps(ig.fake.text_message(USER, "hola")).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    assert (await ig.http.post(ig.path, content=body, headers=headers)).status_code == 401
    body, headers = ig.fake.signed(ig.fake.text_message(USER, "hola"), secret="0123456789abcdef0123")
    assert (await ig.http.post(ig.path, content=body, headers=headers)).status_code == 401
    assert await _count(ig, InboundEventRow) == 0 and await _count(ig, Message) == 0


async def test_garbage_oversized_and_other_objects(ig: IG) -> None:
    for raw in (b"{not json", b"[1]", b"\xff", b""):
        await ig.post(raw, status=400)
    await ig.post(json.dumps({"object": "instagram", "pad": "x" * (4 * 1024 * 1024)}).encode(), status=413)
    page = {
        "object": "page",
        "entry": [{"messaging": [{"sender": {"id": USER}, "message": {"mid": "m", "text": "x"}}]}],
    }
    assert (await ig.post(page)).json()["events"] == 0
    odd = {"object": "instagram", "entry": [{"messaging": [
        {"sender": {"id": "<script>"}, "message": {"mid": "m1", "text": "x"}},
        {"sender": {"id": USER}, "message": "not an object"},
        {"sender": {"id": USER}, "timestamp": "soon", "message": {"text": "no mid"}},
        {"sender": {"id": USER}, "brand_new": {"x": 1}},
    ]}, "not an entry"]}  # fmt: skip
    assert (await ig.post(odd)).json()["events"] == 0
    assert await _count(ig, InboundEventRow) == 0


async def test_a_redelivered_post_is_stored_and_answered_once(ig: IG) -> None:
    payload = ig.fake.text_message(USER, "/start")
    assert (await ig.post(payload)).json()["events"] == 1
    assert (await ig.post(payload)).json()["events"] == 0
    assert await _count(ig, InboundEventRow) == 1


async def test_every_inbound_kind(ig: IG) -> None:
    fake = ig.fake
    await ig.post(fake.text_message(USER, "hola"))
    await ig.post(fake.quick_reply(USER, "menu:track", "Seguir pedido"))
    await ig.post(fake.image_message(USER, b"\xff\xd8 a photo", "image/jpeg"))
    await ig.post(fake.story_reply(USER, "¿tienen talle M?"))
    await ig.post(fake.story_mention(USER))
    await ig.post(fake.echo(USER, "our own message"))
    await ig.post(fake.item(USER, "message", {"mid": "m-unsup", "is_unsupported": True}))
    rows = await _inbound(ig)
    assert [r.kind for r in rows] == ["text", "button", "photo", "text", "text", "text"]
    assert "menu:track" in json.dumps(rows[1].payload)
    assert len(rows[2].payload["attachments"]) == 1
    assert rows[3].text == "¿tienen talle M?" and rows[4].text == "" and rows[5].text == ""
    assert all(r.text != "our own message" for r in rows)  # echoes of our sends are not buyer messages


def test_story_replies_mentions_and_unsupported_keep_what_they_are(fake: FakeInstagramServer) -> None:
    events = [
        parse_webhook(payload, 7)[0]
        for payload in (
            fake.story_reply(USER, "¿tienen talle M?", story_id="1801"),
            fake.story_mention(USER),
            fake.item(USER, "message", {"mid": "m-unsup", "is_unsupported": True}),
            fake.read(USER, "aWdfb3V0MQ", ts=1_700_000_000.5),
        )
    ]
    assert events[0].data["story_reply"]["id"] == "1801" and events[0].data["story_reply"]["url"].endswith("story1801")
    assert events[1].data["story_mention"].endswith("/cdn/mention") and "unsupported" not in events[1].data
    assert events[2].data["unsupported"] == "unsupported"
    read = events[3]
    assert (read.kind, read.payload, read.external_id) == (EventKind.STATUS, "read", "st:aWdfb3V0MQ:read")
    assert read.data == {"message_external_id": "aWdfb3V0MQ", "provider_ts": 1_700_000_000.5}
    assert parse_webhook(fake.echo(USER, "x"), 7) == []


async def test_an_attachment_that_404s_keeps_the_message(ig: IG) -> None:
    payload = ig.fake.image_message(USER, b"x")
    payload["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"] += "-gone"
    await ig.post(payload)
    (row,) = await _inbound(ig)
    assert row.kind == "photo" and row.payload.get("upload_error") == "download_failed"


def test_the_signature_check_is_exact() -> None:
    secret, body = "abc123abc123abc123", b'{"a":1}'
    good = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert verify_signature(secret, body, good)
    assert not verify_signature(secret, body + b" ", good)
    assert not verify_signature("", body, good)
    assert not verify_signature(secret, body, good[:-1])
