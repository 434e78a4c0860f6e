"""`/api/v1/conversations` and `/api/v1/contacts` (but erase): read, page, send through the outbox, hand off,
close, update a contact — each change with its event webhook in the same transaction. SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from otklik.adapters.db.models import Contact, ContactTag, EventLog, Message, OutboxRow, WebhookEvent
from otklik.bootstrap import Otklik
from otklik.platform.webhooks import service as hooks
from tests.api.conftest import say


async def _events(app: Otklik) -> list[tuple[str, dict]]:
    async with app.db.read() as session:
        rows = (await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))).scalars().all()
    return [(r.type, r.payload["data"]) for r in rows]


async def test_list_page_and_read_messages(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    auth = await token("conversations.read")
    ids = [await say(otklik, "/start", sender=f"b{i}") for i in range(5)]
    first = await http.get("/api/v1/conversations?limit=2", headers=auth)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [c["id"] for c in body["data"]] == sorted(ids, reverse=True)[:2] and body["next_cursor"]
    seen = [c["id"] for c in body["data"]]
    cursor = body["next_cursor"]
    while cursor:
        more = (await http.get("/api/v1/conversations", params={"limit": 2, "cursor": cursor}, headers=auth)).json()
        seen += [c["id"] for c in more["data"]]
        cursor = more["next_cursor"]
    assert seen == sorted(ids, reverse=True)  # every one once, in order
    one = (await http.get(f"/api/v1/conversations/{ids[0]}", headers=auth)).json()
    assert one["channel"] == "webchat" and one["status"] == "bot" and one["created_at"].endswith("Z")
    messages = (await http.get(f"/api/v1/conversations/{ids[0]}/messages?limit=1", headers=auth)).json()
    assert messages["data"][0]["direction"] == "in" and messages["data"][0]["text"] == "/start"
    rest = (
        await http.get(
            f"/api/v1/conversations/{ids[0]}/messages", params={"cursor": messages["next_cursor"]}, headers=auth
        )
    ).json()
    assert rest["data"] and all(m["direction"] == "out" for m in rest["data"]) and rest["next_cursor"] is None
    waiting = (await http.get("/api/v1/conversations?status=closed", headers=auth)).json()
    assert waiting["data"] == []
    missing = await http.get("/api/v1/conversations/999999", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_send_hand_off_and_close_emit_their_events(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    await hooks.add_endpoint(
        otklik.db, otklik.vault, "http://127.0.0.1:9/hook", "conversation.*,message.*", actor="test"
    )
    auth = await token("conversations.read,conversations.write")
    conversation = await say(otklik, "/start")
    sent = await http.post(
        f"/api/v1/conversations/{conversation}/messages", json={"text": "Su pedido salió hoy"}, headers=auth
    )
    assert sent.status_code == 201, sent.text
    message = sent.json()["message"]
    assert message["author"] == "operator" and message["status"] == "sent"  # the web chat delivers in the claim
    assert sent.json()["conversation"]["status"] == "bot"  # no take_over: the bot goes on
    async with otklik.db.read() as session:
        outbox = await session.scalar(select(OutboxRow).where(OutboxRow.message_id == message["id"]))
    assert outbox is not None and outbox.status == "sent"
    handed = await http.post(
        f"/api/v1/conversations/{conversation}/handoff", json={"reason": "crm: refund", "priority": True}, headers=auth
    )
    assert handed.status_code == 200 and handed.json()["changed"] is True
    assert handed.json()["conversation"]["status"] == "waiting_operator" and handed.json()["conversation"]["priority"]
    again = await http.post(f"/api/v1/conversations/{conversation}/handoff", headers=auth)
    assert again.status_code == 200 and again.json()["changed"] is False
    closed = await http.post(f"/api/v1/conversations/{conversation}/close", headers=auth)
    assert closed.status_code == 200 and closed.json()["conversation"]["status"] == "closed"
    assert (await http.post(f"/api/v1/conversations/{conversation}/close", headers=auth)).json()["changed"] is False
    types = [t for t, _ in await _events(otklik)]
    assert types[:2] == ["conversation.started", "message.received"]
    assert types[2:].count("message.sent") >= 2  # the bot's replies and ours
    tail = [t for t in types if t.startswith("conversation.")]
    assert tail == ["conversation.started", "conversation.handoff", "conversation.closed"]
    data = dict(await _events(otklik))
    assert data["conversation.handoff"] == {
        "conversation_id": conversation, "channel": "webchat", "contact_id": data["conversation.started"]["contact_id"],
        "reason": "crm: refund", "priority": True, "by": "api:t1",
    }  # fmt: skip
    async with otklik.db.read() as session:
        kinds = (await session.execute(select(EventLog.kind).where(EventLog.subject_id == str(conversation)))).scalars()
        assert {"handoff", "conversation.close", "conversation.handoff", "conversation.reply"} <= set(kinds)
    # the buyer writes again: the conversation starts afresh, `reopened`
    await say(otklik, "привет")
    started = [d for t, d in await _events(otklik) if t == "conversation.started"]
    assert [d["reopened"] for d in started] == [False, True]


async def test_take_over_and_a_flow_hand_off(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    await hooks.add_endpoint(otklik.db, otklik.vault, "http://127.0.0.1:9/hook", "conversation.handoff", actor="test")
    auth = await token("conversations.write")
    conversation = await say(otklik, "/start")
    taken = await http.post(
        f"/api/v1/conversations/{conversation}/messages", json={"text": "Hola", "take_over": True}, headers=auth
    )
    assert taken.json()["conversation"]["status"] == "operator"
    other = await say(otklik, "/operator", sender="b2")  # the pack's operator word: the bot hands off
    handoffs = [d for t, d in await _events(otklik) if t == "conversation.handoff"]
    assert [d["conversation_id"] for d in handoffs] == [other] and handoffs[0]["by"] == "bot"
    assert [t for t, _ in await _events(otklik)] == ["conversation.handoff"]  # only what the endpoint asked for


async def test_contacts_list_get_and_update(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    read = await token("contacts.read")
    write = await token("contacts.read,contacts.write")
    await say(otklik, "/start", sender="a")
    await say(otklik, "/start", sender="b")
    listed = (await http.get("/api/v1/contacts", headers=read)).json()
    assert len(listed["data"]) == 2 and listed["next_cursor"] is None
    contact = listed["data"][0]["id"]
    one = (await http.get(f"/api/v1/contacts/{contact}", headers=read)).json()
    assert one["identities"][0]["channel"] == "webchat" and one["identities"][0]["external_id"] == "b"
    changed = await http.patch(
        f"/api/v1/contacts/{contact}",
        json={"fields": {"crm_id": "C-1", "city": "Córdoba"}, "tags": {"add": ["VIP", "lead"]}, "language": "es"},
        headers=write,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["fields"] == {"crm_id": "C-1", "city": "Córdoba"} and changed.json()["tags"] == [
        "vip",
        "lead",
    ]
    removed = await http.patch(
        f"/api/v1/contacts/{contact}", json={"fields": {"city": None}, "tags": {"remove": ["lead"]}}, headers=write
    )
    assert removed.json()["fields"] == {"crm_id": "C-1"} and removed.json()["tags"] == ["vip"]
    tagged = (await http.get("/api/v1/contacts", params={"tag": "vip"}, headers=read)).json()
    assert [c["id"] for c in tagged["data"]] == [contact]
    async with otklik.db.read() as session:
        tags = (await session.execute(select(ContactTag.tag).where(ContactTag.contact_id == contact))).scalars().all()
        row = await session.get(Contact, contact)
    assert tags == ["vip"] and row is not None and row.language == "es"
    assert (await http.patch(f"/api/v1/contacts/{contact}", json={"fields": {}}, headers=read)).status_code == 403
    for bad, code in (
        ({"fields": {"first_name": "x"}}, "fields"),
        ({"fields": {"Bad Key": "x"}}, "fields"),
        ({"fields": {"a": {"nested": 1}}}, "fields"),
        ({"fields": {"a": "x" * 1001}}, "fields"),
        ({"tags": {"add": ["<script>" * 20]}}, "tags"),
        ({"tags": ["vip"]}, "tags"),
        ({"language": "espanol"}, "language"),
        ({"nickname": "x"}, "invalid"),
    ):
        refused = await http.patch(f"/api/v1/contacts/{contact}", json=bad, headers=write)
        assert refused.status_code == 422 and refused.json()["error"] == code, (bad, refused.text)
    async with otklik.db.read() as session:
        row = await session.get(Contact, contact)
    assert row is not None and row.fields == {"crm_id": "C-1"}  # nothing of the refused bodies stored


async def test_export_holds_every_message_without_sealed_text(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    auth = await token("contacts.read")
    conversation = await say(otklik, "моя карта 4111 1111 1111 1111")
    async with otklik.db.read() as session:
        contact = await session.scalar(select(Message.conversation_id).where(Message.conversation_id == conversation))
        contact_id = (await session.execute(select(Contact.id))).scalar_one()
    assert contact == conversation
    data = (await http.get(f"/api/v1/contacts/{contact_id}/export", headers=auth)).json()
    texts = [m["text"] for c in data["conversations"] for m in c["messages"]]
    assert data["contact"]["id"] == contact_id and len(texts) >= 2
    assert "4111 1111 1111 1111" not in str(data)  # masked as stored; the sealed original is not exported
