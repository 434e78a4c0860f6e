"""The inbox's lists and conversation view through the real app (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from otklik.adapters.db.models import Conversation
from otklik.bootstrap import Otklik
from otklik.capabilities.inbox import queries as inbox
from otklik.clock import utcnow
from otklik.platform.users import Role
from tests.capabilities.inbox.inbox_helpers import press, remote_channel, row_ids, say, waiting


async def test_waiting_view_lists_priority_first_then_the_longest_wait(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    old = await waiting(otklik, "b-old", name="Анна")
    new = await waiting(otklik, "b-new", name="Борис")
    urgent = await waiting(otklik, "b-urgent", name="Вера")
    await say(otklik, "b-bot", "привет")  # stays with the bot
    now = utcnow()
    async with otklik.db.write() as session:
        for cid, minutes in ((old, 90), (new, 5), (urgent, 1)):
            await session.execute(
                update(Conversation)
                .where(Conversation.id == cid)
                .values(waiting_since=now - timedelta(minutes=minutes))
            )
        await session.execute(update(Conversation).where(Conversation.id == urgent).values(priority=True))
    operator = await as_role(Role.OPERATOR)
    page = await operator.http.get("/admin/inbox")
    assert page.status_code == 200
    assert row_ids(page.text) == [urgent, old, new]
    assert "waiting 1 h" in page.text and "waiting 5 min" in page.text
    assert 'data-testid="priority"' in page.text
    assert 'data-testid="count-waiting">3<' in page.text
    analyst = await as_role(Role.ANALYST)
    assert row_ids((await analyst.http.get("/admin/inbox?view=waiting")).text) == [urgent, old, new]


async def test_views_filters_and_search(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    remote, _sender = await remote_channel(otklik)
    mine = await waiting(otklik, "b1", name="Галина")
    other = await waiting(otklik, "b2", account=remote, name="Дмитрий")
    bot = await say(otklik, "b3", "у меня вопрос про крем", name="Елена")
    closed = await waiting(otklik, "b4", name="Жанна")
    operator = await as_role(Role.OPERATOR)
    assert (await operator.post(f"/admin/inbox/c/{mine}/assign", {"user": "me"})).status_code == 303
    assert (await operator.post(f"/admin/inbox/c/{closed}/close")).status_code == 303
    assert (await operator.post(f"/admin/inbox/c/{other}/tags", {"tag": "VIP"})).status_code == 303

    async def ids(query: str) -> list[int]:
        response = await operator.http.get(f"/admin/inbox?{query}")
        assert response.status_code == 200, response.text
        return row_ids(response.text)

    assert set(await ids("view=waiting")) == {mine, other}
    assert await ids("view=mine") == [mine]
    assert set(await ids("view=all")) == {mine, other, bot, closed}
    assert await ids("view=closed") == [closed]
    assert await ids(f"view=all&account={remote}") == [other]
    assert await ids("view=all&tag=vip") == [other]
    assert await ids("view=all&status=bot") == [bot]
    assert await ids("view=all&q=крем") == [bot]  # message text
    assert await ids("view=all&q=дмитр") == [other]  # contact name, any case
    assert await ids(f"view=all&q=%23{closed}") == [closed]  # #id
    assert await ids("view=all&q=100%25_") == []  # LIKE wildcards are literal


async def test_bad_filters_get_a_clear_answer(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    for query, words in (
        ("view=everything", "view: waiting"),
        ("view=all&status=nope", "status:"),
        ("view=all&tag=%3Cb%3E", "a tag is"),
        ("view=all&account=x", "account:"),
        ("view=all&cursor=%21%21garbage", "bad cursor"),
    ):
        response = await operator.http.get(f"/admin/inbox?{query}")
        assert response.status_code == 422, query
        assert words in response.text, query
    fragment = await operator.http.get("/admin/inbox/list?view=all&cursor=eyJ4Ijox")
    assert fragment.status_code == 422 and "bad cursor" in fragment.json()["detail"]


async def test_cursor_pages_are_stable_while_new_conversations_arrive(otklik: Otklik, users) -> None:  # type: ignore[no-untyped-def]
    ids = [await say(otklik, f"p{i}", f"вопрос {i}") for i in range(7)]
    expected = list(reversed(ids))  # newest activity first
    seen: list[int] = []
    cursor = None
    for round_ in range(5):
        async with otklik.db.read() as session:
            flt = inbox.ListFilter(view=inbox.View.ALL, cursor=cursor)
            page = await inbox.list_conversations(session, otklik.ctx, flt, user_id=1, limit=3)
        seen += [item.id for item in page.items]
        await say(otklik, f"late{round_}", "новый вопрос")  # arrives between pages, on top of the list
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected


async def test_waiting_cursor_crosses_from_priority_to_the_rest(otklik: Otklik, users) -> None:  # type: ignore[no-untyped-def]
    ids = [await waiting(otklik, f"w{i}") for i in range(5)]
    async with otklik.db.write() as session:
        await session.execute(update(Conversation).where(Conversation.id.in_(ids[3:])).values(priority=True))
    seen: list[int] = []
    cursor = None
    while True:
        async with otklik.db.read() as session:
            flt = inbox.ListFilter(view=inbox.View.WAITING, cursor=cursor)
            page = await inbox.list_conversations(session, otklik.ctx, flt, user_id=1, limit=2)
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [ids[3], ids[4], ids[0], ids[1], ids[2]]


async def test_http_more_pages_follow_the_cursor(otklik: Otklik, as_role, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(inbox, "PAGE", 2)
    ids = [await say(otklik, f"m{i}", f"текст {i}") for i in range(5)]
    operator = await as_role(Role.OPERATOR)
    first = await operator.http.get("/admin/inbox?view=all")
    assert row_ids(first.text) == [ids[4], ids[3]]
    cursor = first.text.split('data-query="')[1].split('"')[0].replace("&amp;", "&")
    seen = row_ids(first.text)
    while cursor:
        page = await operator.http.get(f"/admin/inbox/list?{cursor}")
        assert page.status_code == 200
        seen += row_ids(page.text)
        nxt = page.headers["x-next-cursor"]
        cursor = f"view=all&cursor={nxt}" if nxt else ""
    assert seen == list(reversed(ids))


async def test_unread_counts_buyer_messages_and_resets_when_an_operator_opens(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "u1")
    await say(otklik, "u1", "алло")
    await say(otklik, "u1", "вы тут?")
    analyst = await as_role(Role.ANALYST)
    await analyst.http.get(f"/admin/inbox/c/{cid}")
    async with otklik.db.read() as session:
        assert (await inbox.head(session, cid)).unread == 3  # type: ignore[union-attr]  # analysts only look
    operator = await as_role(Role.OPERATOR)
    listing = await operator.http.get("/admin/inbox")
    assert 'data-testid="unread">3<' in listing.text
    await operator.http.get(f"/admin/inbox/c/{cid}")
    async with otklik.db.read() as session:
        assert (await inbox.head(session, cid)).unread == 0  # type: ignore[union-attr]
    await say(otklik, "u1", "ещё вопрос")
    poll = await operator.http.get(f"/admin/inbox/c/{cid}/messages?after=0")
    assert poll.status_code == 200 and "ещё вопрос" in poll.json()["html"]
    async with otklik.db.read() as session:
        assert (await inbox.head(session, cid)).unread == 0  # type: ignore[union-attr]  # the open page saw it


async def test_conversation_view_shows_history_buttons_marks_and_contact_card(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    cid = await say(otklik, "v1", "/start", name="Зоя Петрова", language="ru")
    await press(otklik, "v1", "intent:defective_item")
    operator = await as_role(Role.OPERATOR)
    await operator.post(f"/admin/inbox/c/{cid}/tags", {"tag": "брак"})
    page = await operator.http.get(f"/admin/inbox/c/{cid}")
    assert page.status_code == 200
    html = page.text
    assert "Здравствуйте" in html  # the bot's greeting
    assert "Брак или повреждение" in html  # a button offered and the one pressed
    assert 'data-testid="pressed">Pressed: 🔧 Брак или повреждение<' in html
    assert 'data-status="sent"' in html and 'data-testid="mark"' in html
    assert "Зоя Петрова" in html and "брак" in html and "webchat" in html
    assert 'data-testid="composer"' in html


async def test_unknown_conversation_is_404(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/inbox/c/999999")).status_code == 404
    assert (await operator.http.get("/admin/inbox/c/999999/messages")).status_code == 404
    assert (await operator.http.get("/admin/inbox/c/999999/history?before=5")).status_code == 404
    for action, data in (("reply", {"text": "hi"}), ("note", {"text": "n"}), ("close", {}), ("bot", {})):
        response = await operator.http.post(
            f"/admin/inbox/c/999999/{action}",
            data=data,
            headers={"X-CSRF-Token": operator.csrf, "accept": "application/json"},
        )
        assert response.status_code == 404, action
        assert response.json()["detail"] == "no such conversation"


async def test_buyer_html_is_escaped_everywhere(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)> & "quotes"'
    cid = await say(otklik, "x1", ASK, name="<b>Mallory</b>")
    await say(otklik, "x1", hostile)
    operator = await as_role(Role.OPERATOR)
    for url in ("/admin/inbox", f"/admin/inbox/c/{cid}", "/admin/inbox/list?view=waiting"):
        html = (await operator.http.get(url)).text
        assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>Mallory" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url
    poll = (await operator.http.get(f"/admin/inbox/c/{cid}/messages?after=0")).json()["html"]
    assert "<script>" not in poll and "&lt;script&gt;" in poll


async def test_pulse_changes_when_a_buyer_writes(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    before = (await operator.http.get("/admin/inbox/pulse")).json()
    await waiting(otklik, "pl1")
    after = (await operator.http.get("/admin/inbox/pulse")).json()
    assert before["version"] != after["version"]
    assert before["waiting"] == "0" and after["waiting"] == "1"


ASK = "позовите оператора"


async def test_history_pages_backwards_from_the_latest(
    otklik: Otklik, as_role, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    cid = await waiting(otklik, "h1")
    for i in range(6):
        await say(otklik, "h1", f"сообщение {i}")
    async with otklik.db.read() as session:
        latest, has_older = await inbox.history(session, cid, limit=3)
    assert [m.text for m in latest] == ["сообщение 3", "сообщение 4", "сообщение 5"] and has_older
    operator = await as_role(Role.OPERATOR)
    older = (await operator.http.get(f"/admin/inbox/c/{cid}/history?before={latest[0].id}")).json()
    assert "сообщение 2" in older["html"] and "сообщение 3" not in older["html"]
    assert older["has_older"] is False and older["first"] < latest[0].id
    assert (await operator.http.get(f"/admin/inbox/c/{cid}/history?before=0")).status_code == 422
