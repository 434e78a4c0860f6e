"""Meta's webhook, hostile and odd input: the subscription check, forged / missing signatures (401, nothing
stored), bodies that are not JSON, 10 MB, 1 000 messages in one POST, unknown message types, a media id that
404s, redelivery."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import InboundEventRow, Message, OutboxRow
from otklik.channels.whatsapp.parse import verify_signature
from tests.channels.whatsapp.conftest import USER, VERIFY, WA, png


async def _count(wa: WA, table: type) -> int:
    async with wa.app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def test_the_subscription_check(hook: WA) -> None:
    path = hook.path
    ok = await hook.http.get(
        path, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    )
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert ok.headers["content-type"].startswith("text/plain")
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "x" * 5000},
    ):
        assert (await hook.http.get(path, params=params)).status_code == 403, params
    unknown = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}
    assert (await hook.http.get("/webhooks/whatsapp/999", params=unknown)).status_code == 403
    assert (await hook.http.get("/webhooks/whatsapp/not-digits", params=unknown)).status_code == 403


@pytest.mark.parametrize("signature", [None, "", "sha256=", "sha256=" + "0" * 64, "md5=abc", "sha256=zz"])
async def test_a_forged_or_missing_signature_is_401_and_nothing_is_stored(hook: WA, signature: str | None) -> None:
    body = json.dumps(hook.fake.text_message(USER, "привет")).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    response = await hook.http.post(hook.path, content=body, headers=headers)
    assert response.status_code == 401
    assert await _count(hook, InboundEventRow) == 0 and await _count(hook, Message) == 0


async def test_a_body_signed_with_another_secret_or_changed_after_signing_is_refused(hook: WA) -> None:
    payload = hook.fake.text_message(USER, "привет")
    body, headers = hook.fake.signed(payload, secret="0123456789abcdef0123456789abcdef")
    assert (await hook.http.post(hook.path, content=body, headers=headers)).status_code == 401
    body, headers = hook.fake.signed(payload)
    tampered = body.replace("привет".encode(), "пока!".encode())
    assert (await hook.http.post(hook.path, content=tampered, headers=headers)).status_code == 401
    assert (await hook.http.post("/webhooks/whatsapp/123", content=body, headers=headers)).status_code == 401
    assert await _count(hook, InboundEventRow) == 0


async def test_signed_garbage_is_400(hook: WA) -> None:
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe", b""):
        await hook.post(raw, status=400)
    assert await _count(hook, InboundEventRow) == 0


async def test_a_10_mb_body_is_413_before_any_work(hook: WA) -> None:
    big = json.dumps({"object": "whatsapp_business_account", "pad": "x" * (10 * 1024 * 1024)}).encode()
    response = await hook.fake.deliver(hook.http, hook.path, big)
    assert response.status_code == 413
    assert await _count(hook, InboundEventRow) == 0


async def test_a_redelivered_post_is_stored_and_answered_once(hook: WA) -> None:
    payload = hook.fake.text_message(USER, "/start")
    first = await hook.post(payload)
    again = await hook.post(payload)
    assert first.json()["events"] == 1 and again.json()["events"] == 0
    assert await _count(hook, InboundEventRow) == 1
    assert await _count(hook, OutboxRow) == 2  # the two replies of /start, once


async def test_1000_messages_in_one_post(hook: WA) -> None:
    fake = hook.fake
    messages = []
    for n in range(1000):
        one = fake.text_message(f"54911{n:08d}", f"сообщение {n}")
        messages += one["entry"][0]["changes"][0]["value"]["messages"]
    payload = fake.envelope({"messages": messages})
    response = await hook.post(payload)
    assert response.json()["events"] == 1000
    assert await _count(hook, InboundEventRow) == 1000
    assert (await hook.post(payload)).json()["events"] == 0  # Meta retries the batch: nothing twice
    assert await _count(hook, InboundEventRow) == 1000


async def test_unknown_types_become_events_the_flow_answers(hook: WA) -> None:
    fake = hook.fake
    odd = [
        {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]},
        {"type": "order", "order": {"catalog_id": "1", "product_items": []}},
        {"type": "interactive", "interactive": {"type": "nfm_reply"}},
        {"type": "brand_new_type", "brand_new_type": {"x": 1}, "unknown_field": [1, 2]},
    ]
    for n, content in enumerate(odd):
        await hook.post(fake.inbound(f"5491100000{n:03d}", content))
    async with hook.app.db.read() as session:
        rows = (await session.execute(select(Message.direction, Message.kind).order_by(Message.id))).all()
    assert sum(1 for d, _ in rows if d == "in") == 4
    assert sum(1 for d, _ in rows if d == "out") >= 4  # each buyer got an answer


async def test_a_media_id_that_404s_keeps_the_message(hook: WA) -> None:
    fake = hook.fake
    payload = fake.image_message(USER, png(), media_id="424242")  # Meta lists it; the Graph API does not have it
    await hook.post(payload)
    async with hook.app.db.read() as session:
        row = await session.scalar(select(Message).where(Message.direction == "in"))
    assert row is not None and row.kind == "photo"
    assert row.payload.get("upload_error") == "download_failed" and "attachments" not in row.payload
    assert await _count(hook, OutboxRow) >= 1  # the flow still answered


async def test_an_expired_media_url_is_fetched_again(hook: WA) -> None:
    fake = hook.fake
    photo = png()
    media_id = fake.store_media(photo, "image/png")
    fake.state.media[media_id].url_issued_at = fake.now() - 3600  # a URL handed out an hour ago
    await hook.post(fake.image_message(USER, photo, media_id=media_id, mime="image/png"))
    async with hook.app.db.read() as session:
        row = await session.scalar(select(Message).where(Message.direction == "in"))
    assert row is not None and len(row.payload["attachments"]) == 1  # a fresh URL was asked for


async def test_a_photo_over_the_size_limit_is_not_stored(hook: WA) -> None:
    fake = hook.fake
    big = b"\xff\xd8" + b"0" * (hook.app.settings.max_upload_bytes + 10)
    await hook.post(fake.image_message(USER, big))
    async with hook.app.db.read() as session:
        row = await session.scalar(select(Message).where(Message.direction == "in"))
    assert row is not None and row.payload.get("upload_error") == "too_large"


def test_the_signature_check_is_exact() -> None:
    secret, body = "abc123abc123abc123", b'{"a":1}'
    import hashlib
    import hmac

    good = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert verify_signature(secret, body, good)
    assert verify_signature(secret, body, good.upper().replace("SHA256=", "sha256="))
    assert not verify_signature(secret, body + b" ", good)
    assert not verify_signature("", body, good)
    assert not verify_signature(secret, body, good[:-1])
