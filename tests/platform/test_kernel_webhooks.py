"""The kernel's event webhooks against a real receiver on loopback: conversation.started, message.received,
message.sent (by the dispatcher), message.status (a receipt, a send that failed for good), conversation.handoff
— signed, each conversation's events in order even when a delivery is retried, nothing for a rolled-back step.
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import WebhookEvent
from otklik.bootstrap import Otklik
from otklik.core.channel import SendError
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.webhooks.service import add_endpoint
from otklik.testing.fake_webhook_receiver import FakeWebhookReceiver
from otklik.testing.recording import RecordingSender
from tests.conftest import make_settings

SECRET = "whsec_kernel-events-0123456789"
FAST = {"webhook_backoff_base_seconds": 0.05, "webhook_backoff_max_seconds": 0.2, "webhook_timeout_seconds": 0.5,
        "webhook_poll_seconds": 0.05, "webhook_lease_seconds": 30.0}  # fmt: skip


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    otk = Otklik.build(make_settings(tmp_path, db_url, **FAST))
    await otk.start()
    try:
        yield otk
    finally:
        await otk.close()


async def _remote(app: Otklik, sender: RecordingSender) -> int:
    account = await app.ensure_account("recording-1", "recording", "echo")
    await app.reload()
    app.ctx.senders[account] = sender
    return account


async def _until(app: Otklik, receiver: FakeWebhookReceiver, accepted: int) -> None:
    deadline = time.monotonic() + 20
    while len(receiver.accepted) < accepted:
        assert time.monotonic() < deadline, f"{len(receiver.accepted)} of {accepted} events arrived"
        if not await app.webhooks.run_once():
            await asyncio.sleep(0.03)


async def test_a_conversations_events_arrive_signed_and_in_order(app: Otklik) -> None:
    async with FakeWebhookReceiver(SECRET) as receiver:
        await add_endpoint(app.db, app.vault, receiver.url, "conversation.*,message.*", secret=SECRET, actor="test")
        sender = RecordingSender()
        account = await _remote(app, sender)
        receiver.fail(500, times=1)  # the first event is retried; the others of the conversation wait for it
        await app.ingest(InboundEvent(account, "u1", "chat-7", EventKind.TEXT, text="привет"))
        while await app.dispatcher.run_once():
            pass
        assert sender.texts() == ["готов"]
        await app.ingest(
            InboundEvent(
                account, "r1", "chat-7", EventKind.STATUS, payload="read", data={"message_external_id": "ext-1"}
            )
        )
        await _until(app, receiver, 4)
        ok = [r for r in receiver.requests if r.answered is not None and 200 <= r.answered < 300]
        accepted = [r.json() for r in ok]
        types = ["conversation.started", "message.received", "message.sent", "message.status"]
        assert [e["type"] for e in accepted] == types
        assert all(r.signature_ok for r in ok)
        by_type = {e["type"]: e["data"] for e in accepted}
        assert by_type["message.received"]["message"]["text"] == "привет"
        assert by_type["message.received"]["channel"] == "recording"
        assert by_type["message.sent"]["message"]["text"] == "готов"
        assert by_type["message.status"]["status"] == "read"
        assert by_type["message.status"]["message"]["id"] == by_type["message.sent"]["message"]["id"]
        assert receiver.requests[0].answered == 500 and receiver.requests[0].event_id == ok[0].event_id  # same id


async def test_a_send_that_fails_for_good_is_a_message_status(app: Otklik) -> None:
    async with FakeWebhookReceiver(SECRET) as receiver:
        await add_endpoint(app.db, app.vault, receiver.url, "message.status", secret=SECRET, actor="test")
        sender = RecordingSender()
        account = await _remote(app, sender)
        sender.failures.append(SendError("Bad Request: chat not found", permanent=True))
        await app.ingest(InboundEvent(account, "u1", "chat-8", EventKind.TEXT, text="привет"))
        while await app.dispatcher.run_once():
            pass
        await _until(app, receiver, 1)
        data = receiver.requests[0].json()["data"]
        assert data["status"] == "failed" and "chat not found" in data["error"]


async def test_no_endpoint_no_rows_and_no_event_for_a_redelivery(app: Otklik) -> None:
    sender = RecordingSender()
    account = await _remote(app, sender)
    await app.ingest(InboundEvent(account, "u1", "chat-9", EventKind.TEXT, text="привет"))
    async with app.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    await add_endpoint(app.db, app.vault, "http://127.0.0.1:9/x", "message.received", secret=SECRET, actor="test")
    await app.ingest(InboundEvent(account, "u1", "chat-9", EventKind.TEXT, text="привет"))  # a redelivery
    await app.ingest(InboundEvent(account, "u2", "chat-9", EventKind.TEXT, text="ещё"))
    async with app.db.read() as session:
        types = (await session.execute(select(WebhookEvent.type))).scalars().all()
    assert types == ["message.received"]
