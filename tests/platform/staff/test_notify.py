"""Staff notifications: written with the caller's transaction, delivered on Telegram (the fake Bot API) and
by e-mail (a local aiosmtpd server), retried after 429/5xx/SMTP down, never sent twice."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import StaffNotification
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.core.channel import SendError
from otklik.core.errors import InvalidInput
from otklik.platform.staff.assign import assign
from otklik.platform.staff.members import Member, add_member
from otklik.platform.staff.outbox import StaffMessage, StaffNotifier, notify, notify_pack, resend
from otklik.testing.fake_telegram import FakeTelegramServer

from .conftest import Smtp

ORDER = StaffMessage(
    subject="Pedido A-0012 confirmado — $ 58.900,00",
    text="Cliente: Seguridad Total SRL\n2 × DS-2CD1043G0-I  $ 29.450,00\nTotal: $ 58.900,00",
    link="/admin/sales/orders/12",
    about=("order", "A-0012"),
)


async def _rows(app: Otklik) -> list[StaffNotification]:
    async with app.db.read() as session:
        return list((await session.execute(select(StaffNotification).order_by(StaffNotification.id))).scalars())


async def _notify(app: Otklik, member: Member, message: StaffMessage = ORDER, dedupe: str | None = None) -> int:
    async with app.db.write() as session:
        return await notify(session, [member], message, dedupe=dedupe)


def _later(minutes: float) -> object:
    return utcnow() + timedelta(minutes=minutes)


async def test_telegram_notification_reaches_the_staff_chat_once(
    staff_app: Otklik, fake_tg: FakeTelegramServer
) -> None:
    await add_member(staff_app.db, "Ana", telegram_chat_id="-1001234567890", packs="sales-es", actor="test")
    async with staff_app.db.write() as session:
        assignee = await assign(session, "sales-es")
        assert assignee is not None
        assert await notify(session, [assignee], ORDER) == 1  # one transport: Telegram
    assert staff_app.staff is not None
    assert await staff_app.staff.run_once() == 1
    assert await staff_app.staff.run_once() == 0
    sent = fake_tg.sent_messages(-1001234567890)
    assert len(sent) == 1
    text = sent[0]["text"]
    assert text.startswith(ORDER.subject) and "Seguridad Total SRL" in text and "Total: $ 58.900,00" in text
    assert "https://shop.example/admin/sales/orders/12" in text  # the admin link, absolute
    (row,) = await _rows(staff_app)
    assert (row.status, row.attempts, row.subject_type, row.subject_id) == ("sent", 1, "order", "A-0012")


async def test_telegram_429_and_5xx_are_retried(staff_app: Otklik, fake_tg: FakeTelegramServer) -> None:
    ana = await add_member(staff_app.db, "Ana", telegram_chat_id="4242", actor="test")
    await _notify(staff_app, ana)
    assert staff_app.staff is not None
    fake_tg.rate_limit("sendMessage", retry_after=7)
    await staff_app.staff.run_once()
    (row,) = await _rows(staff_app)
    assert row.status == "pending" and row.attempts == 0  # a 429 is not the message's fault
    assert timedelta(seconds=5) < row.due_at - utcnow() <= timedelta(seconds=7)
    assert await staff_app.staff.run_once() == 0  # not due yet
    fake_tg.server_error("sendMessage", status=502)
    await staff_app.staff.run_once(now=_later(1))  # type: ignore[arg-type]
    (row,) = await _rows(staff_app)
    assert row.status == "pending" and row.attempts == 1 and "Bad Gateway" in (row.last_error or "")
    assert row.due_at > utcnow()  # backed off
    assert fake_tg.sent_messages(4242) == []
    await staff_app.staff.run_once(now=_later(60))  # type: ignore[arg-type]
    (row,) = await _rows(staff_app)
    assert row.status == "sent" and len(fake_tg.sent_messages(4242)) == 1
    assert [c.status for c in fake_tg.calls_of("sendMessage")] == [429, 502, 200]


async def test_chat_not_found_fails_and_can_be_resent(staff_app: Otklik, fake_tg: FakeTelegramServer) -> None:
    ana = await add_member(staff_app.db, "Ana", telegram_chat_id="555", actor="test")
    await _notify(staff_app, ana)
    assert staff_app.staff is not None
    fake_tg.chat_not_found(555)
    await staff_app.staff.run_once()
    (row,) = await _rows(staff_app)
    assert row.status == "failed" and "chat not found" in (row.last_error or "")
    fake_tg.reset()
    await resend(staff_app.db, row.id, actor="test")
    await staff_app.staff.run_once()
    (row,) = await _rows(staff_app)
    assert row.status == "sent" and len(fake_tg.sent_messages(555)) == 1
    with pytest.raises(InvalidInput):
        await resend(staff_app.db, row.id, actor="test")  # a sent one is not sent again


async def test_email_arrives_with_subject_body_and_link(staff_app: Otklik, smtp: Smtp) -> None:
    smtp.start()
    ana = await add_member(staff_app.db, "Ana", email="ana@microcom.example", actor="test")
    await _notify(staff_app, ana)
    assert staff_app.staff is not None
    await staff_app.staff.run_once()
    (envelope,) = smtp.inbox.envelopes
    assert envelope.mail_from == "bot@microcom.example" and envelope.rcpt_tos == ["ana@microcom.example"]
    message = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == ORDER.subject  # non-ASCII subject encoded and decoded intact
    body = message.get_content()
    assert "Seguridad Total SRL" in body and "2 × DS-2CD1043G0-I  $ 29.450,00" in body
    assert "https://shop.example/admin/sales/orders/12" in body
    (row,) = await _rows(staff_app)
    assert message["Message-ID"] == f"<otklik-staff-{row.id}@microcom.example>" and row.status == "sent"


async def test_smtp_down_is_retried_later_and_delivered_once(staff_app: Otklik, smtp: Smtp) -> None:
    ana = await add_member(staff_app.db, "Ana", email="ana@microcom.example", telegram_chat_id="9", actor="test")
    await _notify(staff_app, ana)
    assert staff_app.staff is not None
    await staff_app.staff.run_once()  # nothing listens on the SMTP port
    by_transport = {r.transport: r for r in await _rows(staff_app)}
    assert by_transport["telegram"].status == "sent"
    mail = by_transport["email"]
    assert mail.status == "pending" and mail.attempts == 1 and mail.last_error
    smtp.start()
    assert await staff_app.staff.run_once() == 0  # backing off: not due yet
    assert await staff_app.staff.run_once(now=_later(10)) == 1  # type: ignore[arg-type]
    assert await staff_app.staff.run_once(now=_later(20)) == 0  # type: ignore[arg-type]
    assert len(smtp.inbox.envelopes) == 1
    assert {r.transport: r.status for r in await _rows(staff_app)} == {"email": "sent", "telegram": "sent"}


async def test_attempts_run_out_then_failed(staff_app: Otklik) -> None:
    ana = await add_member(staff_app.db, "Ana", email="ana@microcom.example", actor="test")
    await _notify(staff_app, ana)
    assert staff_app.staff is not None
    for hours in range(1, 6):  # staff_notify_max_attempts=4 in the fixture; SMTP stays down
        await staff_app.staff.run_once(now=_later(60 * hours))  # type: ignore[arg-type]
    (row,) = await _rows(staff_app)
    assert row.status == "failed" and row.attempts == 4


async def test_expired_lease_resends_email_but_not_telegram(staff_app: Otklik, smtp: Smtp) -> None:
    smtp.start()
    ana = await add_member(staff_app.db, "Ana", email="ana@microcom.example", telegram_chat_id="9", actor="test")
    await _notify(staff_app, ana)
    assert staff_app.staff is not None
    claimed = await staff_app.staff.claim()  # a worker claims both, then dies before sending
    assert len(claimed) == 2
    await staff_app.staff.run_once(now=_later(60))  # type: ignore[arg-type]
    statuses = {r.transport: r.status for r in await _rows(staff_app)}
    assert statuses == {"email": "sent", "telegram": "uncertain"}
    assert len(smtp.inbox.envelopes) == 1


async def test_a_late_outcome_of_a_recovered_claim_is_not_recorded(staff_app: Otklik, smtp: Smtp) -> None:
    """Worker A claims and stalls; its lease expires; worker B recovers and claims it. A's late failure, arriving
    while B sends, must not put the row back to pending (it would be mailed twice)."""
    smtp.start()
    ana = await add_member(staff_app.db, "Ana", email="ana@microcom.example", actor="test")
    await _notify(staff_app, ana)
    assert staff_app.staff is not None
    stalled = staff_app.staff
    [late] = await stalled.claim()
    other = StaffNotifier(staff_app.db, staff_app.settings, stalled.transports)
    assert other.worker_id != stalled.worker_id
    assert await other.recover_expired(now=_later(60)) == 1  # type: ignore[arg-type]
    [mine] = await other.claim(now=_later(60))  # type: ignore[arg-type]
    await stalled._failed(late, SendError("smtp: connection reset"))  # while B is sending
    [row] = await _rows(staff_app)
    assert row.status == "sending" and row.worker == other.worker_id
    await other._send(mine)
    [row] = await _rows(staff_app)
    assert row.status == "sent" and row.last_error is None
    assert len(smtp.inbox.envelopes) == 1


async def test_dedupe_and_rollback(staff_app: Otklik) -> None:
    ana = await add_member(staff_app.db, "Ana", email="ana@microcom.example", telegram_chat_id="9", actor="test")
    assert await _notify(staff_app, ana, dedupe="order.confirmed:A-0012") == 2
    assert await _notify(staff_app, ana, dedupe="order.confirmed:A-0012") == 0  # a re-run writes nothing
    with pytest.raises(RuntimeError):
        async with staff_app.db.write() as session:
            await notify_pack(session, "sales-es", ORDER)
            raise RuntimeError("the order's transaction fails")
    assert len(await _rows(staff_app)) == 2  # nothing of the failed transaction


@pytest.mark.parametrize(
    "message",
    [
        StaffMessage(subject="  ", text="x"),
        StaffMessage(subject="ok", text="x", link="javascript:alert(1)"),
        StaffMessage(subject="ok", text="x", link="//evil.example/x"),
        StaffMessage(subject="ok", text="x", link="/admin/x y"),
    ],
)
async def test_bad_messages_are_refused(staff_app: Otklik, message: StaffMessage) -> None:
    ana = await add_member(staff_app.db, "Ana", email="ana@microcom.example", actor="test")
    with pytest.raises(InvalidInput):
        await _notify(staff_app, ana, message)
    assert await _rows(staff_app) == []


async def test_hostile_text_is_delivered_cleaned(staff_app: Otklik, smtp: Smtp, fake_tg: FakeTelegramServer) -> None:
    smtp.start()
    ana = await add_member(staff_app.db, "Ana", email="ana@microcom.example", telegram_chat_id="9", actor="test")
    hostile = StaffMessage(
        subject="Pedido\r\nBcc: victim@example.com <b>x</b> \u202e",
        text="línea 1\x00\x07\nЗаказ 🚀 " + "ж" * 30_000,
    )
    await _notify(staff_app, ana, hostile)
    assert staff_app.staff is not None
    await staff_app.staff.run_once()
    assert {r.status for r in await _rows(staff_app)} == {"sent"}
    (envelope,) = smtp.inbox.envelopes
    assert envelope.rcpt_tos == ["ana@microcom.example"]  # no header injection
    message = email.message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Bcc"] is None and message["Subject"].startswith("Pedido Bcc: victim@example.com <b>x</b>")
    assert "\x00" not in message.get_content() and "Заказ 🚀" in message.get_content()
    (sent,) = fake_tg.sent_messages(9)
    assert sent["text"].startswith("Pedido Bcc:") and len(sent["text"]) <= 4000 and "\x07" not in sent["text"]


def test_telegram_text_is_cut_by_utf16_units_not_characters() -> None:
    from otklik.platform.staff.transports import TELEGRAM_TEXT, cut_utf16

    emoji = "📦" * 3000  # 3000 characters, 6000 UTF-16 units: over Telegram's 4096 though under 4000 characters
    cut = cut_utf16(emoji, TELEGRAM_TEXT)
    assert cut.endswith("…") and len(cut.encode("utf-16-le")) // 2 <= TELEGRAM_TEXT
    assert set(cut[:-1]) == {"📦"}  # no half of a surrogate pair
    assert cut_utf16("Pedido PV-000001", TELEGRAM_TEXT) == "Pedido PV-000001"
