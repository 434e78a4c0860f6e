"""Sending through Zenvia: replies as contents, statuses applied monotonically with Zenvia's timestamps, the
24-hour window (held, then released; a named template goes with its fields), and Zenvia's errors (429 with
Retry-After, 5xx, 4xx, a refused token, timeouts) — the sender against the fake directly where no database is
needed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount, Conversation, Message
from otklik.channels.zenvia.adapter import ZenviaSender, render
from otklik.channels.zenvia.admin import sync_templates
from otklik.channels.zenvia.api import TokenRejected, ZenviaClient
from otklik.clock import utcnow
from otklik.conversations.outbox import enqueue
from otklik.core.channel import SendError
from otklik.core.messages import Attachment, Button, OutboundMessage, TemplateRef
from otklik.testing.fake_zenvia import DEFAULT_SENDER, DEFAULT_TOKEN, FakeZenviaServer
from tests.channels.zenvia.conftest import USER, ZV


async def _out(zv: ZV) -> list[Message]:
    async with zv.app.db.read() as session:
        return list((await session.execute(select(Message).where(Message.direction == "out").order_by(Message.id))).scalars())  # fmt: skip


async def test_a_reply_goes_as_contents_and_statuses_only_move_forward(zv: ZV) -> None:
    fake = zv.fake
    await zv.post(fake.text_event(USER, "/start"))
    await zv.dispatch()
    sent = fake.sent_to(USER)
    assert len(sent) == 2 and all(c["type"] == "text" for c in sent)
    first = (await _out(zv))[0]
    assert first.status == "sent" and first.external_id == fake.sent_ids(USER)[0]
    t0 = fake.now() - 60  # receipt times are Zenvia's (never later than our clock)
    await zv.post(fake.status_event(first.external_id, "READ", ts=t0 + 5))
    await zv.post(fake.status_event(first.external_id, "DELIVERED", ts=t0 + 2))  # late, out of order
    await zv.post(fake.status_event(first.external_id, "NOT_DELIVERED", ts=t0 + 9))  # after read: ignored
    await zv.post(fake.status_event(first.external_id, "CLICKED"))  # not a receipt we keep
    await zv.post(fake.status_event(first.external_id, "READ", ts=t0 + 5))  # redelivered
    row = (await _out(zv))[0]
    assert row.status == "read" and row.error is None
    assert row.delivered_at is not None and row.read_at is not None and row.delivered_at < row.read_at
    second = (await _out(zv))[1]
    causes = [{"reason": "INVALID_NUMBER", "details": "not a WhatsApp user"}]
    await zv.post(fake.status_event(second.external_id or "", "REJECTED", causes=causes))
    row = (await _out(zv))[1]
    assert row.status == "failed" and "INVALID_NUMBER" in (row.error or "")


def test_render_degrades_buttons_splits_text_and_keeps_files() -> None:
    buttons = tuple(Button(f"Opção {n}", f"p{n}") for n in range(1, 5))
    contents = render(OutboundMessage(text="Escolha:", buttons=buttons))
    assert len(contents) == 1 and "1." in contents[0]["text"] and "Opção 4" in contents[0]["text"]
    long = render(OutboundMessage(text="palavra " * 1200))
    assert len(long) == 3 and all(len(c["text"]) <= 4096 for c in long)
    files = render(OutboundMessage(attachments=(
        Attachment("file", url="https://cdn.example.com/nota.pdf", filename="nota.pdf", content_type="application/pdf"),
        Attachment("photo", media_id="abc", caption="o recibo"),
    )))  # fmt: skip
    assert files[0] == {"type": "file", "fileUrl": "https://cdn.example.com/nota.pdf",
                        "fileMimeType": "application/pdf", "fileName": "nota.pdf"}  # fmt: skip
    assert files[1] == {"type": "text", "text": "📎 o recibo"}  # never dropped silently


async def test_outside_the_window_held_then_released_and_templates_go_with_their_fields(zv: ZV) -> None:
    fake = zv.fake
    fake.add_template("pedido_pronto", "pt_BR", "Olá {{name}}, o pedido {{order}} está pronto, {{name}}")
    assert await sync_templates(zv.app, zv.account) == 1
    await zv.post(fake.text_event(USER, "/start", ts=fake.now() - 25 * 3600))  # delivered a day late
    await zv.dispatch()
    rows = await zv.outbox()
    assert [(o, m) for o, m, _ in rows] == [("held", "held"), ("held", "held")]
    assert all("24-hour" in (e or "") for _, _, e in rows) and fake.sent_to(USER) == []

    async with zv.app.db.write() as session:
        conversation = await session.scalar(select(Conversation.id))
        assert conversation is not None
        ref = TemplateRef("pedido_pronto", "pt", ("Maria", "A-17"))
        await enqueue(session, conversation, zv.account, USER, OutboundMessage(text="pronto", template=ref),
                      author="operator", now=utcnow())  # fmt: skip
    await zv.dispatch()
    (template,) = fake.sent_to(USER)
    assert template["type"] == "template" and template["fields"] == {"name": "Maria", "order": "A-17"}
    assert template["templateId"] == next(iter(fake.state.templates))

    await zv.post(fake.text_event(USER, "oi"))  # the window opens: the held replies go, in order
    await zv.dispatch()
    assert [o for o, _, _ in await zv.outbox()][:2] == ["sent", "sent"]
    assert len(fake.sent_to(USER)) >= 3


async def test_the_account_window_template_covers_messages_that_name_none(zv: ZV) -> None:
    fake = zv.fake
    fake.add_template("retomar", "pt_BR", "Olá! Podemos continuar?")
    await sync_templates(zv.app, zv.account)
    async with zv.app.db.write() as session:
        account = await session.get(ChannelAccount, zv.account)
        assert account is not None
        account.config = {**account.config, "window_template": {"name": "retomar", "language": "pt_BR"}}
    await zv.app.reload()
    await zv.post(fake.text_event(USER, "/start", ts=fake.now() - 30 * 3600))
    await zv.dispatch()
    sent = fake.sent_to(USER)
    assert sent and all(c["type"] == "template" and c["fields"] == {} for c in sent)


@pytest.fixture
def sender(fake: FakeZenviaServer) -> ZenviaSender:
    fake.state.last_inbound[USER] = fake.now()
    return ZenviaSender(ZenviaClient(fake.base_url, DEFAULT_TOKEN, timeout=2.0), DEFAULT_SENDER, max_inline_wait=0)


async def test_errors_are_classified(fake: FakeZenviaServer, sender: ZenviaSender) -> None:
    message = OutboundMessage(text="olá")
    fake.fail(429)
    with pytest.raises(SendError) as busy:
        await sender.send(USER, message, idempotency_key="k1")
    assert busy.value.retry_after == 1.0 and not busy.value.permanent
    fake.fail(503)
    with pytest.raises(SendError) as down:
        await sender.send(USER, message, idempotency_key="k2")
    assert not down.value.permanent and down.value.retry_after is None
    with pytest.raises(SendError) as bad:
        await sender.send("5511000000000", message, idempotency_key="k3")  # never wrote: Zenvia passes 131047 on
    assert bad.value.permanent and "131047" in str(bad.value)
    assert fake.sent_to(USER) == []
    result = await sender.send(USER, message, idempotency_key="k4")
    assert result.external_id == fake.sent_ids(USER)[0]
    await sender.aclose()


async def test_a_refused_token_marks_the_account_and_a_timeout_is_transient(fake: FakeZenviaServer) -> None:
    fake.state.last_inbound[USER] = fake.now()
    events: list[tuple[str, str]] = []

    async def note(what: str, detail: str) -> None:
        events.append((what, detail))

    wrong = ZenviaSender(ZenviaClient(fake.base_url, "FAKEwrongTokenNotReal000", timeout=2.0), DEFAULT_SENDER,
                         on_account_event=note)  # fmt: skip
    with pytest.raises(TokenRejected) as refused:
        await wrong.send(USER, OutboundMessage(text="olá"), idempotency_key="k")
    assert refused.value.retry_after and events == [("token_rejected", "Invalid API token")]
    fake.hang(0.5)
    slow = ZenviaSender(ZenviaClient(fake.base_url, DEFAULT_TOKEN, timeout=0.1), DEFAULT_SENDER)
    with pytest.raises(SendError) as timeout:
        await slow.send(USER, OutboundMessage(text="olá"), idempotency_key="k")
    assert not timeout.value.permanent and "Timeout" in str(timeout.value)
    for client in (wrong, slow):
        await client.aclose()


async def test_a_later_part_is_retried_in_place_not_the_whole_message(fake: FakeZenviaServer) -> None:
    fake.state.last_inbound[USER] = fake.now()
    sender = ZenviaSender(ZenviaClient(fake.base_url, DEFAULT_TOKEN, timeout=2.0), DEFAULT_SENDER)
    fake.fail(429, after=1, retry_after="0.01")  # the second part is refused once
    result = await sender.send(USER, OutboundMessage(text="palavra " * 600), idempotency_key="k1")
    parts = fake.sent_to(USER)
    assert len(parts) == 2 and fake.state.refused == [429]  # each part once, the first never repeated
    assert result.external_id == fake.sent_ids(USER)[1]
    fake.fail(400, after=1)  # a permanent refusal of a later part says how far the message got
    with pytest.raises(SendError) as stopped:
        await sender.send(USER, OutboundMessage(text="palavra " * 600), idempotency_key="k2")
    assert stopped.value.permanent and "after 1 of 2 parts" in str(stopped.value)
    await sender.aclose()
