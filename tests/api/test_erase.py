"""`POST /api/v1/contacts/{id}/erase`: the texts, files and channel ids are gone for real; the rows the
numbers are counted from stay; a second erase answers the same; the buyer writing again is a new contact."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from otklik.adapters.db.models import (
    Contact,
    ContactIdentity,
    ContactTag,
    Conversation,
    EventLog,
    Message,
    OutboxRow,
    WebhookEvent,
)
from otklik.bootstrap import Otklik
from otklik.core.messages import Attachment, EventKind, InboundEvent
from otklik.platform.webhooks import service as hooks
from tests.api.conftest import say, webchat_id


async def _count(app: Otklik, model: type, *where: object) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_erase_really_erases_and_keeps_the_counts(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    await hooks.add_endpoint(otklik.db, otklik.vault, "http://127.0.0.1:9/hook", "*", actor="test")
    auth = await token("contacts.read,contacts.write,contacts.erase")
    photo = await otklik.ctx.media.save(b"\x89PNG private photo of Ana", "image/png", "ana.png")
    shared = await otklik.ctx.media.save(b"\x89PNG a product photo", "image/png", "product.png")
    conversation = await say(otklik, "/start", sender="ana-session")
    await otklik.ingest(
        InboundEvent(webchat_id(otklik), "photo-1", "ana-session", EventKind.PHOTO, text="мой адрес Ленина 5",
                     attachments=(Attachment("photo", media_id=photo.media_id), Attachment("photo", media_id=shared.media_id)))
    )  # fmt: skip
    await say(otklik, "/operator", sender="ana-session")  # a hand-off: an event-log row the numbers count
    await otklik.ingest(
        InboundEvent(
            webchat_id(otklik),
            "other-1",
            "bob",
            EventKind.PHOTO,
            text="",
            attachments=(Attachment("photo", media_id=shared.media_id),),
        )
    )  # fmt: skip  (another buyer's message uses the same file)
    async with otklik.db.read() as session:
        contact = (
            await session.execute(select(Conversation.contact_id).where(Conversation.id == conversation))
        ).scalar_one()
    await http.patch(f"/api/v1/contacts/{contact}", json={"fields": {"phone": "+5493511234567"}, "tags": {"add": ["vip"]}},
                     headers=auth)  # fmt: skip
    messages_before = await _count(otklik, Message, Message.conversation_id == conversation)
    handoffs_before = await _count(
        otklik, EventLog, EventLog.kind == "handoff", EventLog.subject_id == str(conversation)
    )
    assert await _count(otklik, WebhookEvent, WebhookEvent.subject == f"conversation:{conversation}") > 0

    erased = await http.post(f"/api/v1/contacts/{contact}/erase", headers=auth)
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["erased"] is True and body["messages"] == messages_before and body["identities"] == 1
    assert body["media"] == 1  # the shared file stays for the other buyer

    async with otklik.db.read() as session:
        texts = (
            await session.execute(select(Message.text, Message.payload).where(Message.conversation_id == conversation))
        ).all()
        row = await session.get(Contact, contact)
        identity = (
            await session.execute(select(ContactIdentity.external_id).where(ContactIdentity.contact_id == contact))
        ).scalar_one()
        conv = await session.get(Conversation, conversation)
        logs = (await session.execute(select(EventLog.data).where(EventLog.subject_id == str(conversation),
                                                                    EventLog.subject_type == "conversation"))).scalars().all()  # fmt: skip
    assert all(text == "" and payload == {"erased": True} for text, payload in texts)
    assert row is not None and (row.display_name, row.fields, row.tags, row.subscribed) == ("", {}, {}, False)
    assert identity.startswith("erased:")
    assert conv is not None and conv.status == "closed" and conv.state == {} and conv.last_text == ""
    assert "Ленина" not in str(logs) and "ana" not in str(logs).lower()
    assert not otklik.ctx.media.path(photo.media_id).exists()
    assert otklik.ctx.media.path(shared.media_id).exists()
    assert await _count(otklik, ContactTag, ContactTag.contact_id == contact) == 0
    assert await _count(otklik, WebhookEvent, WebhookEvent.subject == f"conversation:{conversation}") == 0
    assert (
        await _count(otklik, OutboxRow, OutboxRow.conversation_id == conversation, OutboxRow.recipient != "erased") == 0
    )
    # what the numbers are made of stays
    assert await _count(otklik, Message, Message.conversation_id == conversation) == messages_before
    assert (
        await _count(otklik, EventLog, EventLog.kind == "handoff", EventLog.subject_id == str(conversation))
        == handoffs_before
    )
    exported = (await http.get(f"/api/v1/contacts/{contact}/export", headers=auth)).json()
    assert "Ленина" not in str(exported) and "ana-session" not in str(exported) and "+549" not in str(exported)
    # erasing again is harmless; an unknown contact is a 404
    again = await http.post(f"/api/v1/contacts/{contact}/erase", headers=auth)
    assert again.status_code == 200 and again.json()["media"] == 0
    missing = await http.post("/api/v1/contacts/999999/erase", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    # the buyer writes again: a new contact, nothing linked to the erased one
    later = await say(otklik, "/start", sender="ana-session")
    async with otklik.db.read() as session:
        new_contact = (
            await session.execute(select(Conversation.contact_id).where(Conversation.id == later))
        ).scalar_one()
    assert later != conversation and new_contact != contact
