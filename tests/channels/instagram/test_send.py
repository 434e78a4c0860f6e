"""Sending on Instagram Direct: quick replies (≤ 13, else numbered text), long texts split at 1000, read
receipts, the 24-hour window (the bot's replies held, then released; operators' replies with the HUMAN_AGENT
tag up to 7 days when enabled, held when not), and Meta's errors classified."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import Conversation, Message
from otklik.channels.instagram.adapter import InstagramSender, render
from otklik.channels.instagram.graph import GraphClient, TokenRejected
from otklik.clock import utcnow
from otklik.conversations.outbox import enqueue
from otklik.core.channel import SendError
from otklik.core.messages import Attachment, Button, OutboundMessage
from otklik.testing.fake_instagram import DEFAULT_TOKEN, FakeInstagramServer
from tests.channels.instagram.conftest import IG, USER

DAY = 24 * 3600


async def _out(ig: IG) -> list[Message]:
    async with ig.app.db.read() as session:
        return list((await session.execute(select(Message).where(Message.direction == "out").order_by(Message.id))).scalars())  # fmt: skip


async def _enqueue(ig: IG, text: str, author: str) -> None:
    async with ig.app.db.write() as session:
        conversation = await session.scalar(select(Conversation.id))
        assert conversation is not None
        await enqueue(session, conversation, ig.account, USER, OutboundMessage(text=text), author=author, now=utcnow())


def test_render_quick_replies_splits_and_degrades() -> None:
    buttons = tuple(Button(f"Opción {n}", f"p{n}") for n in range(1, 14))
    (one,) = render(OutboundMessage(text="Elegí:", buttons=buttons))
    assert one["text"] == "Elegí:" and len(one["quick_replies"]) == 13
    assert one["quick_replies"][0] == {"content_type": "text", "title": "Opción 1", "payload": "p1"}
    (many,) = render(OutboundMessage(text="Elegí:", buttons=(*buttons, Button("Opción 14", "p14"))))
    assert "quick_replies" not in many and "14." in many["text"]  # numbered text beyond 13
    (long_title,) = render(OutboundMessage(text="x", buttons=(Button("Un título demasiado largo", "p"),)))
    assert "quick_replies" not in long_title
    parts = render(OutboundMessage(text="palabra " * 300, buttons=buttons[:2]))
    assert len(parts) == 3 and all(len(p["text"]) <= 1000 for p in parts)
    assert "quick_replies" in parts[-1] and "quick_replies" not in parts[0]
    photo, kept = render(OutboundMessage(attachments=(
        Attachment("photo", url="https://cdn.example.com/a.jpg"), Attachment("file", media_id="m1", filename="f.pdf"),
    )))  # fmt: skip
    assert photo == {"attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/a.jpg"}}}
    assert kept == {"text": "📎 f.pdf"}
    photo = Attachment("photo", media_id="m2", content_type="image/png")
    (linked,) = render(
        OutboundMessage(attachments=(photo,)), link=lambda media_id, kind: f"https://b/m/{media_id}?t={kind}"
    )
    assert linked == {"attachment": {"type": "image", "payload": {"url": "https://b/m/m2?t=image/png"}}}


async def test_replies_go_and_a_read_receipt_marks_them(ig: IG) -> None:
    fake = ig.fake
    await ig.post(fake.text_message(USER, "/start"))
    await ig.dispatch()
    sent = fake.sent_to(USER)
    assert len(sent) == 2 and all(b["messaging_type"] == "RESPONSE" and "tag" not in b for b in sent)
    first = (await _out(ig))[0]
    assert first.status == "sent" and first.external_id == fake.sent_ids(USER)[0]
    await ig.post(fake.read(USER, first.external_id or "", ts=fake.now() - 10))
    await ig.post(fake.read(USER, first.external_id or "", ts=fake.now() - 10))  # redelivered
    row = (await _out(ig))[0]
    assert row.status == "read" and row.read_at is not None and row.delivered_at is not None


async def test_the_window_and_the_human_agent_tag(ig: IG) -> None:
    fake = ig.fake
    await ig.post(fake.text_message(USER, "/start", ts=fake.now() - 2 * DAY))  # Meta delivers it two days late
    await ig.dispatch()
    rows = await ig.outbox()
    assert [(o, m) for o, m, _ in rows] == [("held", "held"), ("held", "held")]  # the bot's replies wait
    assert all("24-hour" in (e or "") for _, _, e in rows) and fake.sent_to(USER) == []
    await _enqueue(ig, "Hola, soy Ana del equipo", "operator")
    await ig.dispatch()
    assert (await ig.outbox())[2][0] == "held"  # human agent not enabled on this account

    await ig.configure(human_agent=True)
    await _enqueue(ig, "Hola, soy Ana del equipo", "operator")
    await _enqueue(ig, "Un mensaje del bot", "bot")
    await ig.dispatch()
    (tagged,) = fake.sent_to(USER)
    assert tagged["messaging_type"] == "MESSAGE_TAG" and tagged["tag"] == "HUMAN_AGENT"
    assert [o for o, _, _ in await ig.outbox()][3:] == ["sent", "held"]
    assert fake.state.refused == []  # nothing was sent to be refused

    await ig.post(fake.text_message(USER, "sigo acá"))  # the window opens: the held replies go, in order
    await ig.dispatch()
    assert all(o == "sent" for o, _, _ in await ig.outbox())


async def test_after_7_days_even_operators_wait(ig: IG) -> None:
    fake = ig.fake
    await ig.configure(human_agent=True)
    await ig.post(fake.text_message(USER, "hola", ts=fake.now() - 8 * DAY))
    await ig.dispatch()
    await _enqueue(ig, "Perdón la demora", "operator")
    await ig.dispatch()
    rows = await ig.outbox()
    assert rows[-1][0] == "held" and "7 days" in (rows[-1][2] or "") and fake.sent_to(USER) == []


@pytest.fixture
def sender(fake: FakeInstagramServer) -> InstagramSender:
    fake.state.last_inbound[USER] = fake.now()
    return InstagramSender(GraphClient(fake.base_url, DEFAULT_TOKEN, timeout=2.0), fake.page_id, max_inline_wait=0)


@pytest.mark.parametrize(
    ("code", "subcode", "status", "expect"),
    [
        (613, None, 400, "retry"),
        (4, None, 400, "retry"),
        (10, 2018278, 400, "held"),
        (551, None, 400, "permanent"),
        (2, None, 500, "transient"),
    ],
)
async def test_errors_are_classified(fake: FakeInstagramServer, sender: InstagramSender, code: int,
                                     subcode: int | None, status: int, expect: str) -> None:  # fmt: skip
    fake.fail(code, subcode=subcode, status=status)
    with pytest.raises(SendError) as refused:
        await sender.send(USER, OutboundMessage(text="hola"), idempotency_key="k")
    error = refused.value
    got = "retry" if error.retry_after else "held" if error.held else "permanent" if error.permanent else "transient"
    assert got == expect, error
    assert fake.sent_to(USER) == []
    assert (await sender.send(USER, OutboundMessage(text="hola"), idempotency_key="k")).external_id
    await sender.aclose()


async def test_a_refused_token_marks_the_account(fake: FakeInstagramServer) -> None:
    fake.state.last_inbound[USER] = fake.now()
    noted: list[str] = []

    async def note(what: str, _detail: str) -> None:
        noted.append(what)

    wrong = InstagramSender(GraphClient(fake.base_url, "EAAwrong-token-0000000000", timeout=2.0), fake.page_id,
                            on_account_event=note)  # fmt: skip
    with pytest.raises(TokenRejected):
        await wrong.send(USER, OutboundMessage(text="hola"), idempotency_key="k")
    with pytest.raises(SendError) as bad:
        await wrong.send("not-an-igsid", OutboundMessage(text="hola"), idempotency_key="k")
    assert bad.value.permanent and noted == ["token_rejected"]
    await wrong.aclose()
