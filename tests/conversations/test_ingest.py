"""Ingest, outbox and timers on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from otklik.adapters.db.models import Contact, EventLog, InboundEventRow, Message, OutboxRow, Timer
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.core.errors import FlowInvalid
from otklik.core.messages import EventKind, InboundEvent
from otklik.testing.recording import RecordingSender


def webchat_id(app: Otklik) -> int:
    return next(a.id for a in app.ctx.accounts.values() if a.kind == "webchat")


def ev(account: int, ext: str, text: str, sender: str = "buyer-1", kind: EventKind = EventKind.TEXT) -> InboundEvent:
    return InboundEvent(
        account,
        ext,
        sender,
        kind,
        text=text if kind == EventKind.TEXT else None,
        payload=text if kind == EventKind.BUTTON else None,
    )


async def count(app: Otklik, model: type, *where: object) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_redelivered_event_gets_one_reply(otklik: Otklik) -> None:
    account = webchat_id(otklik)
    first = await otklik.ingest(ev(account, "m1", "/start"))
    replies = await count(otklik, OutboxRow)
    again = await otklik.ingest(ev(account, "m1", "/start"))
    assert not first.duplicate and first.replies == 2
    assert again.duplicate and again.replies == 0
    assert await count(otklik, OutboxRow) == replies == 2
    assert await count(otklik, InboundEventRow) == 1
    assert await count(otklik, Message, Message.direction == "in") == 1


async def test_web_chat_replies_are_delivered_locally_exactly_once_and_in_order(otklik: Otklik) -> None:
    account = webchat_id(otklik)
    await otklik.ingest(ev(account, "m1", "/start"))
    await otklik.ingest(ev(account, "m2", "intent:delivery_issue", kind=EventKind.BUTTON))  # no action first
    while await otklik.dispatcher.run_once():
        pass
    async with otklik.db.read() as session:
        rows = (await session.execute(select(OutboxRow.status, OutboxRow.send_count).order_by(OutboxRow.id))).all()
        texts = (
            (
                await session.execute(
                    select(Message.text)
                    .where(Message.direction == "out", Message.status == "sent")
                    .order_by(Message.id)
                )
            )
            .scalars()
            .all()
        )
    assert rows and all(r.status == "sent" and r.send_count == 1 for r in rows)
    assert texts[0].startswith("Здравствуйте") and texts[-1].startswith("Этого достаточно")


async def remote_account(app: Otklik, sender: RecordingSender, pack: str = "echo") -> int:
    account = await app.ensure_account(f"rec-{id(sender)}", "recording", pack)
    await app.reload()
    app.ctx.senders[account] = sender
    return account


async def drain(app: Otklik, rounds: int = 50) -> None:
    for _ in range(rounds):
        if not await app.dispatcher.run_once():
            return


async def test_remote_sends_keep_conversation_order_and_honour_retry_after(otklik: Otklik) -> None:
    from otklik.core.channel import SendError

    sender = RecordingSender()
    account = await remote_account(otklik, sender)
    for i in range(1, 4):
        await otklik.ingest(ev(account, f"a{i}", f"привет {i}"))
    sender.failures.append(SendError("Too Many Requests", retry_after=30))
    await drain(otklik)
    assert sender.texts() == []  # the first reply must wait 30 s, and nothing overtakes it
    async with otklik.db.write() as session:
        due = await session.scalar(select(OutboxRow.due_at).order_by(OutboxRow.id).limit(1))
        assert due is not None and due > utcnow() + timedelta(seconds=25)
        await session.execute(update(OutboxRow).values(due_at=utcnow()))
    await drain(otklik)
    assert sender.texts() == ["готов", "эхо: привет 2", "эхо: привет 3"]
    assert [r.idempotency_key for r in sender.sent] == sorted(r.idempotency_key for r in sender.sent)


async def test_transient_failures_back_off_and_permanent_ones_fail(otklik: Otklik) -> None:
    from otklik.core.channel import SendError

    sender = RecordingSender()
    account = await remote_account(otklik, sender)
    await otklik.ingest(ev(account, "b1", "hi", sender="chat-1"))
    sender.failures.append(SendError("Bad Gateway"))
    await drain(otklik)
    async with otklik.db.read() as session:
        row = (await session.execute(select(OutboxRow))).scalar_one()
    assert row.status == "pending" and row.attempts == 1 and row.due_at > utcnow()
    await otklik.ingest(ev(account, "b2", "hi", sender="chat-2"))
    sender.failures.append(SendError("Bad Request: chat not found", permanent=True))
    await drain(otklik)
    async with otklik.db.read() as session:
        statuses = dict((await session.execute(select(OutboxRow.recipient, OutboxRow.status))).all())
        failed_msg = await session.scalar(select(Message.error).where(Message.status == "failed"))
    assert statuses["chat-2"] == "failed" and "chat not found" in (failed_msg or "")


async def test_a_blocked_buyer_is_marked_unreachable_and_not_retried(otklik: Otklik) -> None:
    sender = RecordingSender(unreachable={"chat-9"})
    account = await remote_account(otklik, sender)
    await otklik.ingest(ev(account, "c1", "hi", sender="chat-9"))
    await drain(otklik)
    async with otklik.db.read() as session:
        reachable = await session.scalar(select(Contact.reachable))
        status = await session.scalar(select(OutboxRow.status))
    assert reachable is False and status == "failed" and sender.calls == 1


async def test_expired_leases_resend_only_through_idempotent_channels(otklik: Otklik) -> None:
    plain, idempotent = RecordingSender(), RecordingSender(supports_idempotency=True)
    a1 = await remote_account(otklik, plain)
    a2 = await remote_account(otklik, idempotent)
    await otklik.ingest(ev(a1, "d1", "hi", sender="x"))
    await otklik.ingest(ev(a2, "d2", "hi", sender="y"))
    async with otklik.db.write() as session:  # as if a worker died while calling the provider for both rows
        await session.execute(
            update(OutboxRow).values(
                status="sending", lease_until=utcnow() - timedelta(seconds=1), attempts=1, started_at=utcnow()
            )
        )
    assert await otklik.dispatcher.recover_expired() == 2
    await drain(otklik)
    async with otklik.db.read() as session:
        statuses = dict((await session.execute(select(OutboxRow.channel_account_id, OutboxRow.status))).all())
    assert statuses == {a1: "uncertain", a2: "sent"}
    assert plain.calls == 0 and idempotent.texts() == ["готов"]


async def test_an_expired_lease_never_handed_to_the_provider_is_sent_again(otklik: Otklik) -> None:
    """A row claimed but still waiting for its pace slot when the worker died (no `started_at`) never left:
    it goes back to pending and is sent once, even on a channel without idempotency keys."""
    plain = RecordingSender()
    account = await remote_account(otklik, plain)
    await otklik.ingest(ev(account, "e1", "hi", sender="z"))
    async with otklik.db.write() as session:
        await session.execute(
            update(OutboxRow).values(status="sending", lease_until=utcnow() - timedelta(seconds=1), attempts=1)
        )
    assert await otklik.dispatcher.recover_expired() == 1
    await drain(otklik)
    async with otklik.db.read() as session:
        row = (await session.execute(select(OutboxRow.status, OutboxRow.send_count, OutboxRow.started_at))).one()
    assert row.status == "sent" and row.send_count == 1 and row.started_at is not None
    assert plain.texts() == ["готов"]


REMINDER_FLOW = """
id: echo.reminder
start: ask
nodes:
  ask:
    type: question
    kind: photo
    text: "Пришлите скриншот"
    save_as: shot
    timeout: 48h
    on_timeout: nudge
    next: thanks
  nudge: {type: question, kind: photo, text: "Напоминаю: пришлите скриншот", save_as: shot, next: thanks}
  thanks: {type: end, text: "Спасибо"}
"""


async def waiting_for_a_reminder(app: Otklik, sender_id: str) -> int:
    """A conversation at a question with a durable 48 h timeout (a test flow, independent of any pack)."""
    await app.flows.save(REMINDER_FLOW, pack="echo", author="test")
    await app._rebuild_engines()
    account = await remote_account(app, RecordingSender())
    await app.ingest(InboundEvent(account, f"{sender_id}-1", sender_id, EventKind.BUTTON, payload="flow:echo.reminder"))
    return account


async def test_wait_timers_survive_and_fire_once(otklik: Otklik) -> None:
    await waiting_for_a_reminder(otklik, "buyer-w")
    async with otklik.db.read() as session:
        timer = (await session.execute(select(Timer).where(Timer.kind == "timeout"))).scalar_one()
    assert timedelta(hours=47) < timer.due_at - utcnow() <= timedelta(hours=48)
    assert await otklik.timers.run_once() == 0  # not due yet
    async with otklik.db.write() as session:
        await session.execute(update(Timer).values(due_at=utcnow() - timedelta(seconds=1)))
    assert await otklik.timers.run_once() == 1
    assert await otklik.timers.run_once() == 0
    async with otklik.db.read() as session:
        last = await session.scalar(select(Message.text).where(Message.direction == "out").order_by(Message.id.desc()))
        status = await session.scalar(select(Timer.status))
    assert last is not None and last.startswith("Напоминаю") and status == "done"
    assert await count(otklik, Message, Message.text.like("Напоминаю%")) == 1


async def test_a_timer_claimed_by_a_dead_worker_is_fired_after_its_lease(otklik: Otklik) -> None:
    await waiting_for_a_reminder(otklik, "buyer-k")
    async with otklik.db.write() as session:  # claimed by another worker that still holds the lease
        await session.execute(
            update(Timer).values(
                status="running", due_at=utcnow() - timedelta(minutes=5), lease_until=utcnow() + timedelta(minutes=1)
            )
        )
    assert await otklik.timers.run_once() == 0
    async with otklik.db.write() as session:  # that worker died: its lease runs out
        await session.execute(update(Timer).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert await otklik.timers.run_once() == 1
    assert await otklik.timers.run_once() == 0
    assert await count(otklik, Message, Message.text.like("Напоминаю%")) == 1


async def test_stop_unsubscribes_and_status_events_mark_delivery(otklik: Otklik) -> None:
    sender = RecordingSender()
    account = await remote_account(otklik, sender)
    await otklik.ingest(ev(account, "s1", "hi", sender="chat-s"))
    await drain(otklik)
    await otklik.ingest(
        InboundEvent(account, "s2", "chat-s", EventKind.STATUS, payload="read", data={"message_external_id": "ext-1"})
    )
    await otklik.ingest(ev(account, "s3", "стоп", sender="chat-s"))
    async with otklik.db.read() as session:
        read_at = await session.scalar(select(Message.read_at).where(Message.external_id == "ext-1"))
        subscribed = await session.scalar(select(Contact.subscribed))
        logged = await session.scalar(select(func.count()).select_from(EventLog).where(EventLog.kind == "subscription"))
    assert read_at is not None and subscribed is False and logged == 1


async def test_a_quick_action_resumes_the_flow_in_the_same_step(otklik: Otklik) -> None:
    """`contact.add_tag` is quick: no timer row, no task; the reply is written by the ingest step itself
    (slow actions and their timer rows: tests/conversations/test_quick_actions.py)."""
    source = """
id: echo.tagging
start: tag
nodes:
  tag: {type: action, action: contact.add_tag, args: {tag: "vip"}, save_as: tags, next: done, on_error: bad}
  done: {type: end, text: "теги: {{ tags }}"}
  bad: {type: end, text: "ошибка {{ action_error }}"}
"""
    await otklik.flows.save(source, pack="echo", author="test")
    await otklik._rebuild_engines()
    sender = RecordingSender()
    account = await remote_account(otklik, sender)
    result = await otklik.ingest(InboundEvent(account, "t1", "chat-t", EventKind.BUTTON, payload="flow:echo.tagging"))
    assert result.replies == 1 and not otklik.timers._running
    await drain(otklik)
    assert sender.texts() == ["теги: ['vip']"]
    async with otklik.db.read() as session:
        tags = await session.scalar(select(Contact.tags))
    assert tags == {"list": ["vip"]} and await count(otklik, Timer) == 0


async def test_an_invalid_flow_is_never_saved_and_a_valid_one_goes_live(otklik: Otklik) -> None:
    sender = RecordingSender()
    account = await remote_account(otklik, sender)
    before = await otklik.flows.versions("echo.main")
    assert [v.version for v in before] == [1]
    try:
        await otklik.flows.save("id: echo.main\nstart: nowhere\nnodes: {a: {type: end}}", pack="echo", author="t")
    except FlowInvalid as exc:
        assert "start node 'nowhere' does not exist" in str(exc.errors[0])
    else:
        raise AssertionError("an invalid flow was accepted")
    assert await otklik.flows.versions("echo.main") == before
    new = "id: echo.main\nstart: ask\nnodes:\n  ask: {type: question, text: 'v2 готов', next: ask}\n"
    info = await otklik.flows.save(new, pack="echo", author="t")
    await otklik._rebuild_engines()
    await otklik.ingest(ev(account, "v1", "hi", sender="chat-v"))
    await drain(otklik)
    assert info.version == 2 and sender.texts() == ["v2 готов"]
    await otklik.flows.activate("echo.main", 1, author="t")
    assert [v.active for v in await otklik.flows.versions("echo.main")] == [True, False]
