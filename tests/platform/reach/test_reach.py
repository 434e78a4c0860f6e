"""`reach`: a durable message outside the chat, on SQLite and PostgreSQL — the first route that reaches the
person, a row per attempt, retries with back-off, never twice for one dedup key, delivery status polled."""

from __future__ import annotations

import email
import json
from datetime import timedelta
from email import policy

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import Contact, Conversation, Message, OutboxRow, ReachAttempt, Setting
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.core.channel import SendError
from otklik.core.errors import InvalidInput, NotFound
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.channel_accounts import add_account
from otklik.platform.reach import config
from otklik.platform.reach.service import ReachWorker, attempts_of, reach
from otklik.testing.fake_sms import FakeSmsServer
from otklik.testing.fake_telegram import DEFAULT_TOKEN

from ..staff.conftest import Smtp
from .conftest import API_ID, add_contact

TEXT = "Напоминаем: завтра в 15:00 стрижка у Айгуль. Салон «Лён», ул. Баумана 5"


def worker(app: Otklik, **kwargs: object) -> ReachWorker:
    assert app.reach is not None
    if kwargs:
        return ReachWorker(app.db, app.vault, app.settings, **kwargs)  # type: ignore[arg-type]
    return app.reach


async def _reach(app: Otklik, contact_id: int, key: str, text: str = TEXT, **kwargs: object) -> int:
    async with app.db.write() as tx:
        return await reach(tx, contact_id, text, dedup_key=key, **kwargs)  # type: ignore[arg-type]


def _routes(rows: list[ReachAttempt]) -> list[tuple[str, str]]:
    return [(r.route, r.status) for r in rows]


async def test_sms_goes_once_and_is_marked_delivered(reach_app: Otklik, fake_sms: FakeSmsServer) -> None:
    contact = await add_contact(reach_app, phone="8 917 123-45-67")
    first = await _reach(reach_app, contact, "booking:7:24h", routes=("sms", "email"))
    assert await _reach(reach_app, contact, "booking:7:24h", routes=("sms", "email")) == first  # dedup: nothing new
    now = utcnow()
    assert await worker(reach_app).run_once(now) == 1
    assert await worker(reach_app).run_once(now) == 0
    (sms,) = fake_sms.sent
    assert (sms.to, sms.text, sms.sender) == ("79171234567", TEXT, "SalonLen")
    (row,) = await attempts_of(reach_app.db, "booking:7:24h")
    assert (row.id, row.route, row.status, row.provider, row.provider_id) == (first, "sms", "sent", "smsru", sms.sms_id)
    assert row.address == "+7******4567" and row.parts == 2  # masked; Cyrillic: 2 UCS-2 segments
    assert await _reach(reach_app, contact, "booking:7:24h") == first  # still nothing new once sent
    # the status poll: on its way, then delivered
    await worker(reach_app).run_once(now + timedelta(seconds=61))
    (row,) = await attempts_of(reach_app.db, "booking:7:24h")
    assert row.status == "sent" and row.check_at is not None
    fake_sms.set_status(sms.sms_id, 103)
    await worker(reach_app).run_once(now + timedelta(seconds=61 * 2))
    (row,) = await attempts_of(reach_app.db, "booking:7:24h")
    assert (row.status, row.check_at) == ("delivered", None) and row.delivered_at is not None
    assert len(fake_sms.sent) == 1


async def test_channel_that_cannot_reach_falls_back_to_sms(reach_app: Otklik, fake_sms: FakeSmsServer) -> None:
    contact = await add_contact(reach_app, phone="+79171234567")
    await _reach(reach_app, contact, "booking:8:2h")
    now = utcnow()
    await worker(reach_app).run_once(now)  # no conversation: the channel route fails at once, SMS queued
    await worker(reach_app).run_once(now)
    rows = await attempts_of(reach_app.db, "booking:8:2h")
    assert _routes(rows) == [("channel", "failed"), ("sms", "sent")]
    assert "no conversation" in (rows[0].error or "") and rows[1].next_routes == "email"
    assert len(fake_sms.to("+79171234567")) == 1

    calls: list[tuple[int, str, str]] = []

    async def channel(contact_id: int, text: str, key: str) -> str | None:
        calls.append((contact_id, text, key))
        if key.endswith("left"):
            raise SendError("webchat: the visitor left", permanent=True)
        return "outbox-91"

    with_channel = worker(reach_app, channel=channel)
    await _reach(reach_app, contact, "booking:9:ok")
    await _reach(reach_app, contact, "booking:9:left")
    now = utcnow()
    await with_channel.run_once(now)
    await with_channel.run_once(now)
    assert _routes(await attempts_of(reach_app.db, "booking:9:ok")) == [("channel", "sent")]
    assert (await attempts_of(reach_app.db, "booking:9:ok"))[0].provider_id == "outbox-91"
    assert _routes(await attempts_of(reach_app.db, "booking:9:left")) == [("channel", "failed"), ("sms", "sent")]
    assert len(calls) == 2 and len(fake_sms.sent) == 2
    await with_channel.aclose()


async def test_429_and_5xx_are_retried_then_email(reach_app: Otklik, fake_sms: FakeSmsServer, smtp: Smtp) -> None:
    contact = await add_contact(reach_app, phone="+79171234567", email="gulnara@mail.example")
    await _reach(reach_app, contact, "booking:10:24h", routes=("sms", "email"))
    w, now = worker(reach_app), utcnow()
    fake_sms.fail(429, retry_after=30)
    await w.run_once(now)
    (row,) = await attempts_of(reach_app.db, "booking:10:24h")
    assert (row.status, row.attempts) == ("queued", 0)  # a 429 is not counted
    assert timedelta(seconds=29) < row.due_at - now <= timedelta(seconds=30)
    assert await w.run_once(now + timedelta(seconds=5)) == 0  # not due yet
    fake_sms.fail(503, times=3)
    now += timedelta(seconds=31)
    await w.run_once(now)
    (row,) = await attempts_of(reach_app.db, "booking:10:24h")
    assert (row.status, row.attempts) == ("queued", 1) and "503" in (row.error or "")
    assert row.due_at - now == timedelta(seconds=10)  # reach_backoff_base · 2^0
    now += timedelta(seconds=10)
    await w.run_once(now)
    (row,) = await attempts_of(reach_app.db, "booking:10:24h")
    assert row.due_at - now == timedelta(seconds=20)  # doubled
    now += timedelta(seconds=20)
    await w.run_once(now)  # the third attempt: reach_max_attempts reached → failed, e-mail queued
    await w.run_once(now)
    assert _routes(await attempts_of(reach_app.db, "booking:10:24h")) == [("sms", "failed"), ("email", "sent")]
    assert fake_sms.sent == []
    (envelope,) = smtp.inbox.envelopes
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    assert envelope.rcpt_tos == ["gulnara@mail.example"] and message["From"] == "salon@len.example"
    # the words of the first line (Python's header folding drops a space between two encoded words; see docs)
    assert message["Subject"].replace("«", " «").split() == TEXT[:78].split() and TEXT in message.get_content()
    email_row = (await attempts_of(reach_app.db, "booking:10:24h"))[1]
    assert email_row.address == "g***@mail.example" and email_row.provider == "smtp"


async def test_unreachable_contact_fails_clearly_on_every_route(reach_app: Otklik, fake_sms: FakeSmsServer) -> None:
    contact = await add_contact(reach_app, phone="not a phone", email="gulnara@")
    await _reach(reach_app, contact, "lead:3", routes=("sms", "email"))
    now = utcnow()
    for _ in range(3):
        await worker(reach_app).run_once(now)
    rows = await attempts_of(reach_app.db, "lead:3")
    assert _routes(rows) == [("sms", "failed"), ("email", "failed")]
    assert "no valid phone number" in (rows[0].error or "") and "no valid e-mail" in (rows[1].error or "")
    assert fake_sms.sent == []


async def test_text_too_long_for_sms_goes_by_email(reach_app: Otklik, fake_sms: FakeSmsServer, smtp: Smtp) -> None:
    contact = await add_contact(reach_app, phone="+79171234567", email="g@mail.example")
    long_text = "я" * 300  # 5 UCS-2 segments > sms_max_parts (4)
    await _reach(reach_app, contact, "long:1", text=long_text, routes=("sms", "email"))
    now = utcnow()
    await worker(reach_app).run_once(now)
    await worker(reach_app).run_once(now)
    rows = await attempts_of(reach_app.db, "long:1")
    assert _routes(rows) == [("sms", "failed"), ("email", "sent")]
    assert "takes 5 SMS, more than 4" in (rows[0].error or "")
    assert fake_sms.sent == [] and len(smtp.inbox.envelopes) == 1


async def test_undelivered_sms_falls_back_to_email(reach_app: Otklik, fake_sms: FakeSmsServer, smtp: Smtp) -> None:
    contact = await add_contact(reach_app, phone="+79171234567", email="g@mail.example")
    await _reach(reach_app, contact, "booking:11:24h", routes=("sms", "email"))
    now = utcnow()
    await worker(reach_app).run_once(now)
    fake_sms.set_status(fake_sms.sent[0].sms_id, 106)  # phone switched off / failure
    await worker(reach_app).run_once(now + timedelta(seconds=60))
    await worker(reach_app).run_once(now + timedelta(seconds=60))
    rows = await attempts_of(reach_app.db, "booking:11:24h")
    assert _routes(rows) == [("sms", "failed"), ("email", "sent")] and rows[0].error == "smsru: not delivered"
    assert len(smtp.inbox.envelopes) == 1


async def test_worker_dying_mid_send_never_repeats_an_sms(reach_app: Otklik, fake_sms: FakeSmsServer) -> None:
    contact = await add_contact(reach_app, phone="+79171234567", email="g@mail.example")
    await _reach(reach_app, contact, "crash:sms", routes=("sms", "email"))
    await _reach(reach_app, contact, "crash:mail", routes=("email",))
    now = utcnow()
    claimed = await worker(reach_app).claim(now)  # claimed, then the process dies before sending
    assert len(claimed) == 2
    later = now + timedelta(hours=1)
    assert await worker(reach_app).recover_expired(later) == 2
    assert _routes(await attempts_of(reach_app.db, "crash:sms")) == [("sms", "uncertain")]
    assert _routes(await attempts_of(reach_app.db, "crash:mail")) == [("email", "queued")]  # same Message-ID again
    await worker(reach_app).run_once(later)
    assert _routes(await attempts_of(reach_app.db, "crash:mail")) == [("email", "sent")]
    assert fake_sms.sent == []


async def test_hostile_and_malformed_calls_store_nothing(reach_app: Otklik) -> None:
    contact = await add_contact(reach_app, phone="+79171234567")
    bad = [
        ({"text": "   \x00\x07 "}, "text: required"),
        ({"text": "x" * 2001}, "at most 2000"),
        ({"routes": ()}, "routes"),
        ({"routes": ("sms", "sms")}, "routes"),
        ({"routes": ("pigeon",)}, "routes"),
        ({"key": ""}, "dedup_key"),
        ({"key": "k" * 201}, "dedup_key"),
        ({"key": "a\nb"}, "dedup_key"),
    ]
    for args, message in bad:
        kwargs = {"routes": args["routes"]} if "routes" in args else {}
        with pytest.raises(InvalidInput, match=message):
            await _reach(reach_app, contact, str(args.get("key", "k1")), text=str(args.get("text", TEXT)), **kwargs)
    with pytest.raises(NotFound):
        await _reach(reach_app, contact + 999, "k2")
    async with reach_app.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ReachAttempt)) == 0


async def test_erasing_the_contact_erases_its_attempts(reach_app: Otklik) -> None:
    contact = await add_contact(reach_app, phone="+79171234567")
    await _reach(reach_app, contact, "erase:1")
    async with reach_app.db.write() as session:
        await session.delete(await session.get(Contact, contact))
    assert await attempts_of(reach_app.db, "erase:1") == []


async def test_settings_seal_the_secret_and_refuse_bad_input(reach_app: Otklik, fake_sms: FakeSmsServer) -> None:
    async with reach_app.db.read() as session:
        stored = await session.get(Setting, config.KEY)
    assert stored is not None and API_ID not in str(stored.value)  # sealed with the Vault
    bad = [
        ({"provider": "twilio"}, "provider"),
        ({"provider": "smsru", "sender": "A very long sender"}, "sender"),
        ({"provider": "smsru", "secret": "a\nb"}, "secret"),
        ({"provider": "http", "http": "{"}, "not JSON"),
        ({"provider": "http", "http": "[]"}, "JSON object"),
        ({"provider": "http", "http": '{"url": "ftp://x"}'}, "http.url"),
        ({"provider": "http", "http": '{"url": "https://gw.example", "body": {"to": "{phone}"}}'}, "text"),
        ({"provider": "http", "http": '{"url": "https://gw.example", "evil": 1}'}, "unknown field"),
        ({"provider": "http", "http": "x" * 5000}, "at most"),
    ]
    for kwargs, message in bad:
        with pytest.raises(InvalidInput, match=message):
            await config.save(reach_app.db, reach_app.vault, actor="test", **kwargs)  # type: ignore[arg-type]
    assert (await config.load(reach_app.db)).provider == "smsru"  # unchanged
    # the generic connector, its secret kept encrypted; an empty secret keeps it
    http = json.dumps({
        "url": fake_sms.gateway_url, "body": {"to": "{phone}", "message": "{text}"},
        "auth_header": "Authorization", "success": "status=ok", "id_path": "messages.0.id",
    })  # fmt: skip
    await config.save(reach_app.db, reach_app.vault, provider="http", secret="Bearer gw-secret", http=http, actor="t")
    contact = await add_contact(reach_app, phone="+79171234567")
    await _reach(reach_app, contact, "gw:1", routes=("sms",))
    await worker(reach_app).run_once(utcnow())
    (row,) = await attempts_of(reach_app.db, "gw:1")
    assert (row.status, row.provider, row.provider_id) == ("sent", "http", fake_sms.sent[0].sms_id)
    assert fake_sms.sent[0].via == "gateway"


@pytest.mark.pg
async def test_two_workers_send_each_message_once(reach_app: Otklik, fake_sms: FakeSmsServer) -> None:
    import asyncio

    contact = await add_contact(reach_app, phone="+79171234567")
    for n in range(20):
        await _reach(reach_app, contact, f"bulk:{n}", text=f"#{n}", routes=("sms",))
    a, b = worker(reach_app, batch=7), worker(reach_app, batch=7)
    now = utcnow()
    for _ in range(3):
        await asyncio.gather(a.run_once(now), b.run_once(now))
    assert sorted(s.text for s in fake_sms.sent) == sorted(f"#{n}" for n in range(20))
    await a.aclose()
    await b.aclose()


async def test_the_channel_route_uses_the_outbox_except_on_the_web_chat(
    reach_app: Otklik, fake_sms: FakeSmsServer
) -> None:
    tg = await add_account(
        reach_app.db, reach_app.vault, kind="telegram", name="salonbot", pack="care-ru", secret=DEFAULT_TOKEN, config={}
    )
    await reach_app.refresh_accounts()
    webchat = next(a.id for a in reach_app.ctx.accounts.values() if a.kind == "webchat")
    await reach_app.ingest(InboundEvent(int(tg), "t1", "5550001", EventKind.TEXT, text="/start"))
    await reach_app.ingest(InboundEvent(webchat, "w1", "visitor-1", EventKind.TEXT, text="/start"))
    async with reach_app.db.write() as session:
        ids = {
            r.channel_account_id: r.contact_id
            for r in (await session.execute(select(Conversation.channel_account_id, Conversation.contact_id)))
        }
        for contact_id in ids.values():
            contact = await session.get(Contact, contact_id)
            assert contact is not None
            contact.fields = {**contact.fields, "phone": "+79171234567"}
    await _reach(reach_app, ids[int(tg)], "tg:1")
    await _reach(reach_app, ids[webchat], "web:1")
    now = utcnow()
    await worker(reach_app).run_once(now)
    await worker(reach_app).run_once(now)
    (on_tg,) = await attempts_of(reach_app.db, "tg:1")
    assert (on_tg.route, on_tg.status) == ("channel", "sent") and (on_tg.provider_id or "").startswith("message:")
    async with reach_app.db.read() as session:
        message = await session.get(Message, int((on_tg.provider_id or "").split(":")[1]))
        queued = await session.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.message_id == message.id)
        )
    assert message is not None and message.text == TEXT and message.direction == "out" and queued == 1
    web = await attempts_of(reach_app.db, "web:1")
    assert _routes(web) == [("channel", "failed"), ("sms", "sent")] and "webchat" in (web[0].error or "")
    assert len(fake_sms.sent) == 1


async def test_a_gateway_that_takes_the_sms_then_answers_5xx_gets_a_copy(
    reach_app: Otklik, fake_sms: FakeSmsServer
) -> None:
    """The documented limit (docs/reach.md): SMS.ru takes no idempotency key, so an answer lost after the
    message was taken is retried like an outage — one row, sent once in our books, two SMS at the phone."""
    contact = await add_contact(reach_app, phone="+79171234567")
    await _reach(reach_app, contact, "dup:1", routes=("sms",))
    fake_sms.accept_then_fail(502)
    now = utcnow()
    await worker(reach_app).run_once(now)
    (row,) = await attempts_of(reach_app.db, "dup:1")
    assert (row.status, row.attempts) == ("queued", 1) and len(fake_sms.sent) == 1
    await worker(reach_app).run_once(now + timedelta(seconds=10))
    (row,) = await attempts_of(reach_app.db, "dup:1")
    assert row.status == "sent" and row.provider_id == fake_sms.sent[1].sms_id
    assert [s.text for s in fake_sms.sent] == [TEXT, TEXT]
