"""Every status the kernel writes is a member of its enum (SQLite, and PostgreSQL when configured).

Real conversations: the web chat through its HTTP API (local delivery, the long-poll), a remote channel with
sends that succeed, are read, back off, fail and are left uncertain, an operator's note, and timers of each
kind. Then the tables are read back; a status outside the enums (a typo, a new literal) fails here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from otklik.adapters.db.models import Conversation, Message, OutboxRow, Timer
from otklik.bootstrap import Otklik
from otklik.capabilities.inbox import service as inbox_ops
from otklik.clock import utcnow
from otklik.conversations.statuses import MessageStatus, OutboxStatus, TimerKind, TimerStatus
from otklik.core.channel import SendError
from otklik.core.conversation import Status
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.users import Principal, Role
from otklik.testing.recording import RecordingSender
from otklik.web.app import create_app
from tests.conversations.test_ingest import drain, ev, remote_account, waiting_for_a_reminder

PAUSE_FLOW = """
id: echo.pause
start: pause
nodes:
  pause: {type: wait, duration: 1h, text: "Подождите", next: bye}
  bye: {type: end, text: "Готово"}
"""

ACTION_FLOW = """
id: echo.tagging
start: tag
nodes:
  tag: {type: action, action: test.slow_tag, args: {tag: "vip"}, save_as: tags, next: done, on_error: done}
  done: {type: end, text: "теги: {{ tags }}"}
"""


async def _values(app: Otklik, column: Any) -> set[str]:
    async with app.db.read() as session:
        return {str(v) for v in (await session.execute(select(column).distinct())).scalars()}


async def _web_chat_conversation(app: Otklik) -> None:
    web = create_app(app, worker=False, manage_lifecycle=False)  # web chat replies need no dispatcher
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
        created = await http.post("/api/webchat/sessions", json={})
        assert created.status_code == 201, created.text
        sid = created.json()["session_id"]
        seen: list[dict[str, Any]] = []
        cursor = 0
        for _ in range(20):  # the long-poll shows only outbound messages in a delivered state
            body = (await http.get(f"/api/webchat/sessions/{sid}/messages", params={"after": cursor, "wait": 1})).json()
            seen += body["messages"]
            cursor = body["cursor"]
            if len(seen) >= 2:
                break
        assert len(seen) >= 2 and seen[0]["text"].startswith("Здравствуйте")
        posted = await http.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "позовите оператора"})
        assert posted.status_code == 202


async def _remote_conversations(app: Otklik) -> None:
    sender = RecordingSender()
    account = await remote_account(app, sender)
    await app.ingest(ev(account, "ok-1", "привет", sender="chat-ok"))  # two replies sent: one delivered, one read
    await app.ingest(ev(account, "ok-2", "как дела", sender="chat-ok"))
    await drain(app)
    assert len(sender.sent) == 2
    for n, mark in enumerate(("delivered", "read")):
        external = f"ext-{n + 1}"
        data = {"message_external_id": external}
        await app.ingest(InboundEvent(account, f"st-{n}", "chat-ok", EventKind.STATUS, payload=mark, data=data))
    sender.failures.append(SendError("Bad Request: chat not found", permanent=True))
    await app.ingest(ev(account, "bad-1", "привет", sender="chat-bad"))  # failed for good
    await drain(app)
    sender.failures.append(SendError("Bad Gateway"))
    await app.ingest(ev(account, "later-1", "привет", sender="chat-later"))  # backs off: pending, message queued
    await drain(app)
    sender.failures.append(SendError("held: outside the 24-hour window", held=True))
    await app.ingest(ev(account, "held-1", "привет", sender="chat-held"))  # kept until the buyer writes
    await drain(app)
    plain = RecordingSender()
    unsure = await remote_account(app, plain)
    await app.ingest(ev(unsure, "lost-1", "привет", sender="chat-lost"))
    async with app.db.write() as session:  # a worker died while sending it (the provider call had begun)
        await session.execute(
            update(OutboxRow)
            .where(OutboxRow.channel_account_id == unsure)
            .values(
                status=OutboxStatus.SENDING,
                lease_until=utcnow() - timedelta(seconds=1),
                attempts=1,
                started_at=utcnow() - timedelta(seconds=2),
            )
        )
    assert await app.dispatcher.recover_expired() == 1


async def _timers(app: Otklik) -> None:
    await waiting_for_a_reminder(app, "buyer-timeout")  # a question's timeout, still pending
    await app.flows.save(PAUSE_FLOW, pack="echo", author="test")

    async def slow_tag(_ctx: object, args: dict[str, str]) -> list[str]:
        return [args["tag"]]

    app.actions.register("test.slow_tag", slow_tag)  # a slow action: a timer row that ends done
    await app.flows.save(ACTION_FLOW, pack="echo", author="test")
    await app._rebuild_engines()
    account = await remote_account(app, RecordingSender())
    await app.ingest(InboundEvent(account, "p-1", "chat-pause", EventKind.BUTTON, payload="flow:echo.pause"))
    await app.ingest(InboundEvent(account, "a-1", "chat-action", EventKind.BUTTON, payload="flow:echo.tagging"))
    for task in list(app.timers._running):  # the action runs after the commit, its timer ends done
        await task


async def _operator_note(app: Otklik) -> None:
    async with app.db.read() as session:
        conversation_id = await session.scalar(select(Conversation.id).order_by(Conversation.id).limit(1))
    assert conversation_id is not None
    operator = Principal(1, "op", "Оператор", Role.OPERATOR, "ru", "session", "csrf")
    await inbox_ops.note(app.ctx, operator, conversation_id, "перезвонить завтра")


async def test_every_status_written_is_a_member_of_its_enum(otklik: Otklik) -> None:
    await _web_chat_conversation(otklik)
    await _remote_conversations(otklik)
    await _timers(otklik)
    await _operator_note(otklik)

    outbox = await _values(otklik, OutboxRow.status)
    messages = await _values(otklik, Message.status)
    timer_status = await _values(otklik, Timer.status)
    timer_kind = await _values(otklik, Timer.kind)
    conversations = await _values(otklik, Conversation.status)

    assert outbox <= set(OutboxStatus), outbox - set(OutboxStatus)
    assert messages <= set(MessageStatus), messages - set(MessageStatus)
    assert timer_status <= set(TimerStatus), timer_status - set(TimerStatus)
    assert timer_kind <= set(TimerKind), timer_kind - set(TimerKind)
    assert conversations <= set(Status), conversations - set(Status)
    # the conversations above reached these values (so the checks above looked at real rows)
    assert outbox == set(OutboxStatus) - {OutboxStatus.SENDING}
    assert messages == set(MessageStatus)
    assert timer_status == {TimerStatus.PENDING, TimerStatus.DONE}
    assert timer_kind == set(TimerKind)
    assert {Status.BOT, Status.WAITING_OPERATOR} <= conversations


def test_the_model_defaults_are_the_enum_values() -> None:
    """The models keep the defaults of `outbox` and `timers` literal (adapters sit below conversations)."""
    assert OutboxRow.__table__.c.status.default.arg == OutboxStatus.PENDING
    assert Timer.__table__.c.status.default.arg == TimerStatus.PENDING
    assert Conversation.__table__.c.status.default.arg == Status.BOT
