"""The 24-hour customer-service window: a reply to a message Meta delivers 25 h late is held (never sent to
be refused with 131047, never dropped) and goes when the buyer writes again; a message that names a template
goes as that template outside the window (its parameter count checked against the synced template); the
account's `window_template` covers the rest. Message nodes carry the template the flow names."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from otklik.adapters.db.models import Conversation, Message, OutboxRow
from otklik.clock import utcnow
from otklik.conversations.outbox import enqueue
from otklik.core.conversation import ContactView, ConversationState
from otklik.core.flows.engine import Engine
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.messages import EventKind, InboundEvent, OutboundMessage, TemplateRef
from otklik.core.packs import PackConfig
from otklik.core.understanding import KeywordClassifier
from tests.channels.whatsapp.conftest import USER, WA, body_text

DAY = 24 * 3600


async def _outbox(wa: WA) -> list[tuple[str, str, str | None]]:
    async with wa.app.db.read() as session:
        rows = (await session.execute(
            select(OutboxRow.status, Message.status, Message.error).join(Message, Message.id == OutboxRow.message_id)
            .order_by(OutboxRow.id))).all()  # fmt: skip
    return [(r[0], r[1], r[2]) for r in rows]


async def _enqueue(wa: WA, message: OutboundMessage) -> None:
    async with wa.app.db.write() as session:
        conversation = await session.scalar(select(Conversation.id))
        assert conversation is not None
        await enqueue(session, conversation, wa.account, USER, message, author="operator", now=utcnow())
    wa.app.ctx.notifier.outbox_changed()


async def test_a_reply_after_25_hours_is_held_then_sent_when_the_buyer_writes(wa: WA) -> None:
    fake = wa.fake
    late = fake.now() - 25 * 3600
    await wa.post(fake.text_message(USER, "/start", ts=late))  # Meta redelivers a day-old message
    for _ in range(200):
        rows = await _outbox(wa)
        if len(rows) == 2 and all(r[0] == "held" for r in rows):
            break
        await wa.app.dispatcher.run_once()
    rows = await _outbox(wa)
    assert [(o, m) for o, m, _ in rows] == [("held", "held"), ("held", "held")]
    assert all("24-hour" in (error or "") for _, _, error in rows)  # marked clearly
    assert fake.sent_to(USER) == [] and 131047 not in fake.state.refused  # never sent to be refused

    await wa.post(fake.text_message(USER, "алло"))  # the window opens again: the held replies go first, in order
    got = await wa.replies(USER, 0, 3)
    assert "помощник магазина" in body_text(got[0])
    assert [(o, m) for o, m, _ in await _outbox(wa)][:2] == [("sent", "sent"), ("sent", "sent")]


async def test_outside_the_window_the_named_template_goes(wa: WA) -> None:
    fake = wa.fake
    fake.add_template("pedido_listo", "ru", params=2)
    from otklik.channels.whatsapp.admin import sync_templates

    assert await sync_templates(wa.app, wa.account) == 1
    await wa.post(fake.text_message(USER, "/start", ts=fake.now() - 30 * 3600))
    await _until_held(wa, 2)
    ref = TemplateRef("pedido_listo", "ru", ("Ирина", "A-1001"))
    await _enqueue(wa, OutboundMessage(text="Ирина, заказ A-1001 готов", template=ref))
    (sent,) = await wa.replies(USER, 0, 1)
    assert sent["type"] == "template"
    template = sent["template"]
    assert template["name"] == "pedido_listo" and template["language"] == {"code": "ru"}
    assert [p["text"] for p in template["components"][0]["parameters"]] == ["Ирина", "A-1001"]

    await _enqueue(wa, OutboundMessage(template=TemplateRef("pedido_listo", "ru", ("только один",))))
    for _ in range(100):
        rows = await _outbox(wa)
        if rows[-1][0] == "failed":
            break
        await wa.app.dispatcher.run_once()
    status, message_status, error = (await _outbox(wa))[-1]
    assert (status, message_status) == ("failed", "failed")
    assert error is not None and "takes 2 parameter(s), the flow gave 1" in error
    assert len(fake.sent_to(USER)) == 1 and 132000 not in fake.state.refused  # refused before Meta saw it


async def _until_held(wa: WA, count: int) -> None:
    for _ in range(200):
        rows = await _outbox(wa)
        if len([r for r in rows if r[0] == "held"]) >= count:
            return
        await wa.app.dispatcher.run_once()
    raise AssertionError(await _outbox(wa))


async def test_inside_the_window_the_text_goes_and_a_template_only_message_is_a_template(wa: WA) -> None:
    fake = wa.fake
    fake.add_template("recordatorio", "es_AR", params=1)
    from otklik.channels.whatsapp.admin import sync_templates

    await sync_templates(wa.app, wa.account)
    await wa.post(fake.text_message(USER, "/start"))
    await wa.replies(USER, 0, 2)
    await _enqueue(wa, OutboundMessage(text="texto libre", template=TemplateRef("recordatorio", "es", ("x",))))
    (free,) = await wa.replies(USER, 2, 1)
    assert free["type"] == "text" and free["text"]["body"] == "texto libre"
    await _enqueue(wa, OutboundMessage(template=TemplateRef("recordatorio", "es", ("Ana",))))
    (tpl,) = await wa.replies(USER, 3, 1)
    assert tpl["type"] == "template" and tpl["template"]["language"] == {"code": "es_AR"}  # the synced language


async def test_an_unknown_template_is_held_not_sent(wa: WA) -> None:
    fake = wa.fake
    await wa.post(fake.text_message(USER, "/start", ts=fake.now() - 2 * DAY))
    await _until_held(wa, 2)
    await _enqueue(wa, OutboundMessage(text="hola", template=TemplateRef("no_such", "ru", ())))
    await _until_held(wa, 3)
    _, _, error = (await _outbox(wa))[-1]
    assert error is not None and "not among the synced templates" in error
    assert fake.sent_to(USER) == []


def test_a_message_node_names_its_template_with_flow_variables() -> None:
    flow = parse_flow_yaml(
        "id: t.main\nstart: set\nnodes:\n"
        "  set: {type: set, vars: {order: A-7}, next: hi}\n"
        "  hi: {type: message, text: 'Заказ {{ order }} готов', template: {name: order_ready, params: ['{{ order }}']}}\n"
    )
    engine = Engine(PackConfig(id="t", language="ru", default_flow="t.main"), {flow.id: flow}, KeywordClassifier({}))
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    result = engine.handle(
        ConversationState(), InboundEvent(1, "e1", "b", EventKind.TEXT, text="hi"), ContactView(), now
    )
    [message] = result.sent()
    assert message.text == "Заказ A-7 готов"
    assert message.template == TemplateRef("order_ready", "ru", ("A-7",))
    assert OutboundMessage.from_dict(message.to_dict()) == message  # survives the outbox row's payload
