"""Operator actions in the inbox: reply through the outbox, notes, tags, assign, close, return to bot,
canned responses; refusals (roles, bad input) and the audit trail. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from otklik.adapters.db.models import CannedResponse, Conversation, EventLog, Message, OutboxRow
from otklik.bootstrap import Otklik
from otklik.capabilities.inbox import queries as inbox
from otklik.platform.users import Role
from tests.capabilities.inbox.inbox_helpers import count, drain, remote_channel, say, waiting, webchat_id
from tests.fixtures.admin import Admin

JSON = {"accept": "application/json"}


async def act(admin: Admin, url: str, data: dict[str, str] | None = None) -> httpx.Response:
    return await admin.http.post(url, data=data or {}, headers={"X-CSRF-Token": admin.csrf, **JSON})


async def conversation(app: Otklik, cid: int) -> Conversation:
    async with app.db.read() as session:
        row = await session.get(Conversation, cid)
        assert row is not None
        return row


async def audit_kinds(app: Otklik, cid: int) -> list[str]:
    async with app.db.read() as session:
        rows = await session.execute(
            select(EventLog.kind, EventLog.actor)
            .where(EventLog.subject_type == "conversation", EventLog.subject_id == str(cid))
            .where(EventLog.kind.like("conversation.%"))
            .order_by(EventLog.id)
        )
        return [f"{kind} by {actor}" for kind, actor in rows.all()]


async def webchat_texts(app: Otklik, cid: int) -> list[tuple[str, str]]:
    """What the buyer's web chat shows (the same filter as its messages API)."""
    async with app.db.read() as session:
        rows = await session.execute(
            select(Message.author, Message.text)
            .where(Message.conversation_id == cid, Message.direction == "out")
            .where(Message.status.in_(("sent", "delivered", "read")))
            .order_by(Message.id)
        )
        return [(a, t) for a, t in rows.all()]


async def test_reply_in_the_web_chat_is_delivered_once_and_takes_the_conversation(
    otklik: Otklik, as_role, users
) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "r1")
    operator = await as_role(Role.OPERATOR)
    response = await act(
        operator, f"/admin/inbox/c/{cid}/reply", {"text": "  Здравствуйте, я Оля.  ", "client_id": "abcdef123"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["duplicate"] is False
    again = await act(
        operator, f"/admin/inbox/c/{cid}/reply", {"text": "Здравствуйте, я Оля.", "client_id": "abcdef123"}
    )
    assert again.json()["duplicate"] is True  # a resubmitted form sends nothing
    await drain(otklik)
    replies = [t for a, t in await webchat_texts(otklik, cid) if a == "operator"]
    assert replies == ["Здравствуйте, я Оля."]
    rows = await count(otklik, OutboxRow, OutboxRow.conversation_id == cid, OutboxRow.send_count == 1)
    assert rows == await count(otklik, OutboxRow, OutboxRow.conversation_id == cid)
    conv = await conversation(otklik, cid)
    assert conv.status == "operator" and conv.state["status"] == "operator" and conv.unread == 0
    async with otklik.db.read() as session:
        operator_id = await session.scalar(select(inbox.User.id).where(inbox.User.login == "operator"))
    assert conv.assigned_to == operator_id
    assert await audit_kinds(otklik, cid) == ["conversation.reply by user:operator"]
    # the bot stays quiet while the operator has the conversation
    await say(otklik, "r1", "спасибо")
    assert [a for a, _t in await webchat_texts(otklik, cid)][-1] == "operator"
    assert (await conversation(otklik, cid)).unread == 1


async def test_reply_on_a_remote_channel_goes_through_the_outbox_exactly_once(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    account, sender = await remote_channel(otklik)
    cid = await waiting(otklik, "chat-42", account=account)
    await drain(otklik)
    bot_texts = sender.texts()
    operator = await as_role(Role.OPERATOR)
    response = await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": "Проверим заказ", "client_id": "remote-1-x"})
    assert response.status_code == 200
    await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": "Проверим заказ", "client_id": "remote-1-x"})
    await drain(otklik)
    await drain(otklik)
    assert sender.texts()[len(bot_texts) :] == ["Проверим заказ"]
    assert sender.sent[-1].recipient == "chat-42"
    async with otklik.db.read() as session:
        row = (
            await session.execute(
                select(Message.status, Message.author).where(Message.id == response.json()["message_id"])
            )
        ).one()
    assert row.status == "sent" and row.author == "operator"


async def test_notes_are_shown_to_staff_and_never_sent(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    account, sender = await remote_channel(otklik)
    remote = await waiting(otklik, "chat-7", account=account)
    local = await waiting(otklik, "n1")
    await drain(otklik)
    before = len(sender.sent)
    operator = await as_role(Role.OPERATOR)
    for cid in (remote, local):
        response = await act(operator, f"/admin/inbox/c/{cid}/note", {"text": "покупатель грубит, <i>осторожно</i>"})
        assert response.status_code == 200
    await drain(otklik)
    assert len(sender.sent) == before
    assert await count(otklik, OutboxRow, OutboxRow.message_id == response.json()["message_id"]) == 0
    assert all("осторожно" not in t for _a, t in await webchat_texts(otklik, local))
    page = await operator.http.get(f"/admin/inbox/c/{local}")
    assert 'class="msg msg-out by-operator note"' in page.text
    assert "&lt;i&gt;осторожно&lt;/i&gt;" in page.text
    assert (await conversation(otklik, local)).status == "waiting_operator"  # a note changes nothing for the buyer
    assert await audit_kinds(otklik, local) == ["conversation.note by user:operator"]


async def test_empty_and_oversized_replies_are_refused_and_the_text_is_kept(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "e1")
    operator = await as_role(Role.OPERATOR)
    empty = await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": "   \n "})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    huge = "я" * (otklik.settings.max_text_chars + 1)
    too_long = await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": huge})
    assert too_long.status_code == 413 and "longer than" in too_long.json()["detail"]
    form = await operator.post(f"/admin/inbox/c/{cid}/reply", {"text": huge})  # a plain form post
    assert form.status_code == 413
    assert huge in form.text and "longer than" in form.text  # shown again, nothing lost
    bad_id = await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": "ok", "client_id": "<x>"})
    assert bad_id.status_code == 422
    nul = await act(operator, f"/admin/inbox/c/{cid}/reply", {"text": "a\x00b"})
    assert nul.status_code == 200
    assert await count(otklik, Message, Message.author == "operator") == 1


async def test_roles_that_only_view_get_403_on_every_action(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "ro1")
    for role in (Role.ANALYST, Role.MODERATOR):
        viewer = await as_role(role)
        page = await viewer.http.get(f"/admin/inbox/c/{cid}")
        assert page.status_code == 200 and 'data-testid="read-only"' in page.text
        assert 'data-testid="composer"' not in page.text
        for action, data in (
            ("reply", {"text": "hi"}),
            ("note", {"text": "n"}),
            ("tags", {"tag": "x"}),
            ("assign", {"user": "me"}),
            ("close", {}),
            ("bot", {}),
        ):
            response = await act(viewer, f"/admin/inbox/c/{cid}/{action}", data)
            assert response.status_code == 403, (role, action)
    assert await count(otklik, Message, Message.author == "operator") == 0
    assert (await conversation(otklik, cid)).status == "waiting_operator"


async def test_close_and_the_next_message_goes_to_the_bot(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "c1")
    operator = await as_role(Role.OPERATOR)
    assert (await act(operator, f"/admin/inbox/c/{cid}/close")).status_code == 200
    conv = await conversation(otklik, cid)
    assert conv.status == "closed" and conv.closed_at is not None and not conv.priority
    await say(otklik, "c1", "/start")
    assert (await conversation(otklik, cid)).status == "bot"
    assert (await webchat_texts(otklik, cid))[-1][0] == "bot"
    assert await audit_kinds(otklik, cid) == ["conversation.close by user:operator"]


async def test_return_to_bot_three_ways(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    # 1. no flow: the bot answers the next message
    plain = await waiting(otklik, "t1")
    await act(operator, f"/admin/inbox/c/{plain}/reply", {"text": "Решили?"})
    assert (await act(operator, f"/admin/inbox/c/{plain}/bot")).json() == {
        "ok": True,
        "status": "bot",
        "bot_messages": 0,
    }
    conv = await conversation(otklik, plain)
    assert conv.status == "bot" and conv.assigned_to is None and conv.state["status"] == "bot"
    before = len(await webchat_texts(otklik, plain))
    await say(otklik, "t1", "/start")
    after = await webchat_texts(otklik, plain)
    assert len(after) > before and after[-1][0] == "bot"
    # 2. a flow: it starts now
    started = await waiting(otklik, "t2")
    flows = await _flows(otklik, operator, started)
    flow = next(f for f in flows if f["id"] == "care.defective_item")  # starts with a message and a question
    response = await act(operator, f"/admin/inbox/c/{started}/bot", {"flow": flow["id"]})
    assert response.status_code == 200 and response.json()["bot_messages"] >= 1
    conv = await conversation(otklik, started)
    assert conv.status == "bot" and conv.flow == flow["id"]
    assert conv.last_text == "позовите оператора"  # the list keeps the buyer's words
    # 3. a flow and a question: the bot waits there for the buyer's answer
    parked = await waiting(otklik, "t3")
    node = flow["nodes"][0]
    assert (await act(operator, f"/admin/inbox/c/{parked}/bot", {"flow": flow["id"], "node": node})).status_code == 200
    conv = await conversation(otklik, parked)
    assert (conv.flow, conv.node, conv.state["waiting"]) == (flow["id"], node, "input")
    before = len(await webchat_texts(otklik, parked))
    await say(otklik, "t3", "12345678")
    assert len(await webchat_texts(otklik, parked)) > before  # the bot answered from that node
    kinds = await audit_kinds(otklik, parked)
    assert kinds == ["conversation.return_to_bot by user:operator"]
    # refused: unknown flow, a node that is not a question, a node without a flow
    for data, words in (
        ({"flow": "no.such"}, "no active flow"),
        ({"flow": flow["id"], "node": "zzz"}, "not a question"),
        ({"node": node}, "choose the flow"),
    ):
        refused = await act(operator, f"/admin/inbox/c/{parked}/bot", data)
        assert refused.status_code == 422 and words in refused.json()["detail"], data


async def _flows(app: Otklik, operator: Admin, cid: int) -> list[dict[str, Any]]:
    """The flows offered by the return-to-bot form, with their question nodes."""
    import re

    html = (await operator.http.get(f"/admin/inbox/c/{cid}")).text
    return [
        {"id": fid, "nodes": [n for n in nodes.split(" ") if n]}
        for fid, nodes in re.findall(r'<option value="([a-z0-9_.]+)" data-nodes="([^"]*)"', html)
    ]


async def test_tags_are_validated_added_and_removed(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "tg1")
    operator = await as_role(Role.OPERATOR)
    added = await act(operator, f"/admin/inbox/c/{cid}/tags", {"tag": "  Кешбэк  Одобрен "})
    assert added.json()["tags"] == ["кешбэк одобрен"]
    for bad in ("", "<script>", "x" * 65, "a;b"):
        refused = await act(operator, f"/admin/inbox/c/{cid}/tags", {"tag": bad})
        assert refused.status_code == 422, bad
    assert (await act(operator, f"/admin/inbox/c/{cid}/tags", {"tag": "x", "action": "zap"})).status_code == 422
    removed = await act(operator, f"/admin/inbox/c/{cid}/tags", {"tag": "кешбэк одобрен", "action": "remove"})
    assert removed.json()["tags"] == []
    assert await audit_kinds(otklik, cid) == [
        "conversation.tag_add by user:operator",
        "conversation.tag_remove by user:operator",
    ]


async def test_assign_and_unassign(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "as1")
    admin = await as_role(Role.ADMIN)
    async with otklik.db.read() as session:
        ids = dict((await session.execute(select(inbox.User.login, inbox.User.id))).all())
    assert (await act(admin, f"/admin/inbox/c/{cid}/assign", {"user": str(ids["operator"])})).status_code == 200
    assert (await conversation(otklik, cid)).assigned_to == ids["operator"]
    operator = await as_role(Role.OPERATOR)
    mine = await operator.http.get("/admin/inbox?view=mine")
    assert f'data-id="{cid}"' in mine.text
    for bad in (str(ids["analyst"]), "999999", "someone"):
        assert (await act(admin, f"/admin/inbox/c/{cid}/assign", {"user": bad})).status_code == 422, bad
    assert (await act(admin, f"/admin/inbox/c/{cid}/assign", {"user": ""})).status_code == 200
    conv = await conversation(otklik, cid)
    assert conv.assigned_to is None and conv.status == "waiting_operator"
    assert await audit_kinds(otklik, cid) == [
        "conversation.assign by user:admin",
        "conversation.unassign by user:admin",
    ]


async def test_canned_responses_are_managed_with_settings_and_filled_for_the_conversation(
    otklik: Otklik, as_role
) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "cn1", name="Ирина Ковалёва")
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/inbox/canned")).status_code == 403
    assert (await operator.post("/admin/inbox/canned", {"title": "x", "text": "y"})).status_code == 403
    admin = await as_role(Role.ADMIN)
    created = await admin.post(
        "/admin/inbox/canned",
        {"title": "Приветствие", "text": "Здравствуйте, {{ contact.first_name }}! Я {{ operator.name }}."},
    )
    assert created.status_code == 303
    bad = await admin.post("/admin/inbox/canned", {"title": "Плохой", "text": "{{ 1 + 1 }}"})
    assert bad.status_code == 422 and "unsupported placeholder" in bad.text and "{{ 1 + 1 }}" in bad.text
    assert (await admin.post("/admin/inbox/canned", {"title": "", "text": "y"})).status_code == 422
    assert (await admin.post("/admin/inbox/canned", {"title": "t", "text": "y", "language": "de"})).status_code == 422
    page = await operator.http.get(f"/admin/inbox/c/{cid}")
    assert 'data-text="Здравствуйте, Ирина! Я operator."' in page.text
    async with otklik.db.read() as session:
        canned_id = await session.scalar(select(CannedResponse.id))
    assert (
        await admin.post(f"/admin/inbox/canned/{canned_id}", {"title": "Привет", "text": "Добрый день"})
    ).status_code == 303
    assert (await admin.post(f"/admin/inbox/canned/{canned_id}/delete")).status_code == 303
    assert (await admin.post(f"/admin/inbox/canned/{canned_id}/delete")).status_code == 404
    async with otklik.db.read() as session:
        kinds = (
            (await session.execute(select(EventLog.kind).where(EventLog.kind.like("canned.%")).order_by(EventLog.id)))
            .scalars()
            .all()
        )
    assert kinds == ["canned.create", "canned.update", "canned.delete"]


async def test_media_is_served_to_signed_in_staff_only_for_its_conversation(otklik: Otklik, as_role, anon) -> None:  # type: ignore[no-untyped-def]
    from otklik.core.messages import Attachment, EventKind, InboundEvent

    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    stored = await otklik.ctx.media.save(png, "image/png", "defect.png")
    event = InboundEvent(
        webchat_id(otklik),
        "photo-1",
        "ph1",
        EventKind.PHOTO,
        attachments=(Attachment(kind="photo", media_id=stored.media_id, content_type="image/png"),),
    )
    cid = (await otklik.ingest(event)).conversation_id
    other = await waiting(otklik, "ph2")
    analyst = await as_role(Role.ANALYST)
    page = await analyst.http.get(f"/admin/inbox/c/{cid}")
    url = f"/admin/inbox/c/{cid}/media/{stored.media_id}"
    assert f'<img src="{url}"' in page.text
    image = await analyst.http.get(url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png" and image.content == png
    assert (await analyst.http.get(f"/admin/inbox/c/{other}/media/{stored.media_id}")).status_code == 404
    assert (await analyst.http.get(f"/admin/inbox/c/{cid}/media/..%2F..%2Fetc")).status_code == 404
    assert (await anon.get(url, headers=JSON)).status_code == 401
