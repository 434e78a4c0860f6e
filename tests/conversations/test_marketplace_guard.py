"""The marketplace guard in the kernel, on a real database (SQLite, and PostgreSQL when configured): bot and
template texts screened where they are written, the dispatcher's last check, action messages, buyers'
personal data masked in storage, the audit trail, and the LLM guardrails applying the guard."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from otklik.adapters.db.models import Conversation, EventLog, Message
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.conversations import repo
from otklik.conversations.llm.guardrails import check_reply
from otklik.conversations.outbox import enqueue
from otklik.conversations.timers import ACTION_MESSAGES
from otklik.core.guard import check, fallback
from otklik.core.messages import EventKind, InboundEvent, OutboundMessage
from otklik.testing.recording import RecordingSender

SAFE = fallback("ru")


async def marketplace_account(app: Otklik, *, marketplace: bool = True) -> tuple[int, RecordingSender]:
    """A remote account with the echo pack ("эхо: <what the buyer wrote>"); its kind is declared a
    marketplace for this container only (as `ChannelKind(marketplace=True)` does for Wildberries)."""
    sender = RecordingSender()
    account = await app.ensure_account(f"mp-{id(sender)}", "recording", "echo")
    await app.reload()
    app.ctx.senders[account] = sender
    app.ctx.marketplace_kinds = frozenset({"recording"}) if marketplace else frozenset()
    return account, sender


def ev(account: int, ext: str, text: str, sender: str = "buyer-1") -> InboundEvent:
    return InboundEvent(account, ext, sender, EventKind.TEXT, text=text)


async def drain(app: Otklik) -> None:
    for _ in range(50):
        if not await app.dispatcher.run_once():
            return


async def guard_rows(app: Otklik) -> list[tuple[str, dict[str, Any]]]:
    async with app.db.read() as session:
        rows = await session.execute(select(EventLog.kind, EventLog.data).where(EventLog.kind.like("guard.%")))
        return [(k, dict(d)) for k, d in rows.all()]


async def stored(app: Otklik, direction: str) -> list[str]:
    async with app.db.read() as session:
        rows = await session.execute(select(Message.text).where(Message.direction == direction).order_by(Message.id))
        return [t for (t,) in rows.all()]


async def test_bot_texts_that_break_the_rules_are_replaced_by_the_fallback_and_audited(otklik: Otklik) -> None:
    account, sender = await marketplace_account(otklik)
    await otklik.ingest(ev(account, "m1", "здравствуйте"))  # the pack answers "готов": a one-word answer
    await otklik.ingest(ev(account, "m2", "пишите в телеграм"))  # echoed: a messenger
    await otklik.ingest(ev(account, "m3", "спасибо, посмотрю размер"))  # echoed as it is
    await drain(otklik)
    assert sender.texts() == [SAFE, SAFE, "эхо: спасибо, посмотрю размер"]
    assert (await stored(otklik, "out")) == sender.texts()  # what is stored is what was sent
    rows = await guard_rows(otklik)
    assert [(kind, data["reasons"], data["author"]) for kind, data in rows] == [
        ("guard.blocked", ["one_word"], "bot"),
        ("guard.blocked", ["messenger"], "bot"),
    ]
    assert rows[1][1]["text"] == "эхо: пишите в телеграм" and rows[1][1]["sent"] == SAFE
    assert rows[1][1]["found"] == [{"reason": "messenger", "text": "телеграм"}]


async def test_on_other_channels_the_same_texts_go_unchanged(otklik: Otklik) -> None:
    account, sender = await marketplace_account(otklik, marketplace=False)
    await otklik.ingest(ev(account, "m1", "здравствуйте"))
    await otklik.ingest(ev(account, "m2", "пишите в телеграм, мой телефон 8 916 555 12 34"))
    await drain(otklik)
    assert sender.texts() == ["готов", "эхо: пишите в телеграм, мой телефон 8 916 555 12 34"]
    assert await guard_rows(otklik) == []


async def test_a_buyers_personal_data_is_masked_in_storage_on_a_marketplace_channel(otklik: Otklik) -> None:
    account, sender = await marketplace_account(otklik)
    await otklik.ingest(ev(account, "m1", "здравствуйте"))
    text = "мой телефон 8 916 555-12-34, почта ivan@mail.ru, карта 4111 1111 1111 1111"
    await otklik.ingest(ev(account, "m2", text))
    await drain(otklik)
    inbound = await stored(otklik, "in")
    assert inbound[0] == "здравствуйте"
    for secret in ("555-12-34", "ivan@mail.ru", "4111 1111 1111"):
        assert all(secret not in t for t in inbound), inbound
        assert all(secret not in t for t in sender.texts())
    async with otklik.db.read() as session:
        conv = (await session.execute(select(Conversation))).scalar_one()
        payloads = (await session.execute(select(Message.payload).where(Message.direction == "in"))).scalars().all()
    assert "555" not in conv.last_text and "ivan@" not in conv.last_text
    assert "555" not in str(conv.state) and "ivan@" not in str(conv.state)  # the flow's variables too
    assert all("sealed" not in str(p) for p in payloads)  # nothing kept encrypted for later either


async def test_the_dispatcher_checks_rows_written_by_any_other_path(otklik: Otklik) -> None:
    account, sender = await marketplace_account(otklik)
    result = await otklik.ingest(ev(account, "m1", "здравствуйте"))
    await drain(otklik)
    assert result.conversation_id is not None
    async with otklik.db.write() as session:  # a job writing straight to the outbox, unscreened
        bad = await enqueue(
            session, result.conversation_id, account, "buyer-1",
            OutboundMessage(text="Скидка 10% на нашем сайте shop.ru"), author="bot", now=utcnow(),
        )  # fmt: skip
        good = await enqueue(
            session, result.conversation_id, account, "buyer-1",
            OutboundMessage(text="Замену отправим сегодня, трек будет в приложении."), author="bot", now=utcnow(),
        )  # fmt: skip
    await drain(otklik)
    assert sender.texts()[-2:] == [SAFE, "Замену отправим сегодня, трек будет в приложении."]
    async with otklik.db.read() as session:
        texts = dict((await session.execute(select(Message.id, Message.text).where(Message.id.in_([bad, good])))).all())
    assert texts[bad] == SAFE
    blocked = [data for kind, data in await guard_rows(otklik) if data["author"] == "outbox"]
    assert len(blocked) == 1 and set(blocked[0]["reasons"]) == {"link", "offsite"}


async def test_messages_an_action_sends_are_screened_too(otklik: Otklik) -> None:
    account, sender = await marketplace_account(otklik)
    result = await otklik.ingest(ev(account, "m1", "здравствуйте"))
    await drain(otklik)
    data = {
        "result": {
            ACTION_MESSAGES: [{"text": "Ответ по ссылке wa.me/79165551234"}, {"text": "Ответили выше, посмотрите."}]
        }
    }
    async with otklik.db.write() as session:
        conv = await repo.load_conversation(session, conversation_id=result.conversation_id, lock=True)
        assert conv is not None
        assert await otklik.timers._action_messages(session, conv, data, utcnow()) == 2
    await drain(otklik)
    assert sender.texts()[-2:] == [SAFE, "Ответили выше, посмотрите."]
    assert any("link" in d["reasons"] for _k, d in await guard_rows(otklik))


async def test_a_message_with_an_attachment_and_no_text_is_not_refused(otklik: Otklik) -> None:
    from otklik.conversations.guard import check_message, fallback_message
    from otklik.core.messages import Attachment, Button

    photo = OutboundMessage(text="", attachments=(Attachment(kind="photo", media_id="m-1"),))
    assert check_message(photo) is None
    question = OutboundMessage(text="Напишите в вотсап", buttons=(Button("Да", "yes"), Button("Нет", "no")))
    verdict = check_message(question)
    assert verdict is not None and "messenger" in verdict.reasons
    safe = fallback_message(question, "ru")
    assert safe.text == SAFE and safe.buttons == question.buttons  # the buyer can still answer
    assert check_message(safe) is None


def test_generated_replies_on_marketplace_chats_get_every_guard_rule() -> None:
    verdict = check_reply("Напишите нам напрямую, договоримся о замене.", language="ru", channel_is_marketplace=True)
    assert not verdict.ok and "marketplace:offsite" in verdict.reasons
    elsewhere = check_reply("Напишите нам напрямую, договоримся о замене.", language="ru", channel_is_marketplace=False)
    assert "marketplace:offsite" not in elsewhere.reasons
    assert check("Напишите нам напрямую, договоримся о замене.").reasons == ("offsite",)
