"""The flow editor's API on SQLite and PostgreSQL: validation, hostile input, drafts, publishing, history,
diff, rollback, the test console and the role checks."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import Conversation, EventLog, FlowVersion, Message, OutboxRow, Timer
from otklik.bootstrap import Otklik
from otklik.core.flows.validate import parse_flow_yaml
from otklik.platform.users import Role
from otklik.web.admin.flows import diagram_text

KEY = "care.main"
GREETING = (
    "Здравствуйте! Я помощник магазина. Помогу получить бонус за отзыв, решу проблему с товаром или отвечу на вопрос."
)


@pytest.fixture
async def chat(app, otklik: Otklik):  # type: ignore[no-untyped-def]
    otklik.start_worker()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chat") as http:
        yield http


async def greeting_of(chat: httpx.AsyncClient) -> str:
    """A new buyer opens the web chat; the first reply is the entry flow's greeting."""
    created = await chat.post("/api/webchat/sessions", json={})
    assert created.status_code == 201, created.text
    sid = created.json()["session_id"]
    for _ in range(20):
        body = (await chat.get(f"/api/webchat/sessions/{sid}/messages", params={"after": 0, "wait": 1})).json()
        if body["messages"]:
            return str(body["messages"][0]["text"])
    raise AssertionError("no greeting")


async def live_source(otklik: Otklik) -> str:
    return await otklik.flows.source(KEY)


async def versions(otklik: Otklik) -> list[tuple[int, bool]]:
    return [(v.version, v.active) for v in await otklik.flows.versions(KEY)]


async def audit_kinds(otklik: Otklik) -> list[str]:
    async with otklik.db.read() as session:
        rows = await session.execute(select(EventLog.kind).where(EventLog.kind.like("flow.%")).order_by(EventLog.id))
        return list(rows.scalars())


async def row_counts(otklik: Otklik) -> tuple[int, ...]:
    async with otklik.db.read() as session:
        counts = []
        for table in (Message, OutboxRow, EventLog, Conversation, Timer):
            counts.append(int(await session.scalar(select(func.count()).select_from(table)) or 0))
        return tuple(counts)


def with_greeting(source: str, text: str) -> str:
    return source.replace(GREETING, text, 1)


async def test_the_list_and_the_editor_show_every_flow(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    listing = await admin.http.get("/admin/flows")
    assert listing.status_code == 200
    assert 'data-flow="care.main"' in listing.text and "care-ru" in listing.text
    assert "Content-Security-Policy" in listing.headers
    editor = await admin.http.get(f"/admin/flows/{KEY}")
    assert editor.status_code == 200
    assert "hello:" in editor.text and 'id="flow-source"' in editor.text
    assert "/static/vendor/mermaid.min.js" in editor.text and "flowchart TD" in editor.text
    assert "save-publish" in editor.text
    missing = await admin.http.get("/admin/flows/no.such.flow", headers={"accept": "application/json"})
    assert missing.status_code == 404


async def test_roles_analysts_view_only_operators_not_at_all(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    analyst = await as_role(Role.ANALYST)
    page = await analyst.http.get(f"/admin/flows/{KEY}")
    assert page.status_code == 200 and 'data-testid="read-only"' in page.text and "save-publish" not in page.text
    source = with_greeting(await live_source(otklik), "Аналитик был здесь.")
    refused = await analyst.post_json(f"/admin/flows/{KEY}/save", {"source": source, "publish": True})
    assert refused.status_code == 403
    for url, body in (
        (f"/admin/flows/{KEY}/publish", {"version": 1}),
        (f"/admin/flows/{KEY}/rollback", {"version": 1}),
        ("/admin/flows", {"source": source, "pack": "care-ru"}),
    ):
        assert (await analyst.post_json(url, body)).status_code == 403, url
    tried = await analyst.post_json(f"/admin/flows/{KEY}/console", {"version": 1, "action": "start"})
    assert tried.status_code == 200  # trying a flow changes nothing
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/flows", headers={"accept": "text/html"})).status_code == 403
    assert (
        await operator.post_json(f"/admin/flows/{KEY}/console", {"version": 1, "action": "start"})
    ).status_code == 403
    assert await versions(otklik) == [(1, True)]
    assert await audit_kinds(otklik) == []


async def test_an_invalid_flow_lists_every_error_with_node_field_and_line_and_is_not_saved(
    as_role, otklik: Otklik
) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    source = await live_source(otklik)
    broken = source.replace("    next: menu\n", "    next: nowhere\n    colour: red\n", 1)
    response = await admin.post_json(f"/admin/flows/{KEY}/save", {"source": broken, "publish": True})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {(e["node"], e["field"]) for e in errors} >= {("hello", "colour")}
    colour = next(e for e in errors if e["field"] == "colour")
    assert colour["flow"] == KEY and colour["line"] == broken.splitlines().index("    colour: red") + 1
    syntax = await admin.post_json(f"/admin/flows/{KEY}/save", {"source": "id: care.main\nnodes: [\n"})
    assert syntax.status_code == 422 and "YAML syntax error" in syntax.json()["errors"][0]["message"]
    assert syntax.json()["errors"][0]["line"] is not None
    unknown = await admin.post_json(
        f"/admin/flows/{KEY}/save", {"source": source.replace("next: menu", "next: nowhere", 1)}
    )
    err = unknown.json()["errors"][0]
    assert (err["node"], err["field"]) == ("hello", "next") and "nowhere" in err["message"]
    renamed = await admin.post_json(
        f"/admin/flows/{KEY}/save", {"source": source.replace("id: care.main", "id: care.other")}
    )
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["field"] == "id"
    checked = await admin.post_json("/admin/flows/_check", {"source": broken})
    assert checked.status_code == 422 and checked.json()["errors"]
    assert await versions(otklik) == [(1, True)]
    assert await audit_kinds(otklik) == []


BOMB = (
    "id: care.main\nstart: hello\nx:\n  a: &a [l, l, l, l, l, l, l, l, l]\n"
    + "".join(f"  {n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True))
    + "nodes:\n  hello: {type: action, action: contact.add_tag, args: {tag: *h}}\n"
)


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        (
            "2 MB",
            "id: care.main\nstart: hello\nnodes:\n  hello: {type: end, text: '" + "я" * 1_000_000 + "'}\n",
            "limit",
        ),
        ("YAML bomb", BOMB, "aliases"),
        ("deep nesting", "id: care.main\nx: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
        ("binary", "id: care.main\x00\x01\x02\nstart: hello\n", "binary"),
        ("not a mapping", "- just\n- a list\n", "mapping"),
        ("empty", "", "mapping"),
    ],
)
async def test_hostile_sources_get_a_clear_error_and_nothing_is_saved(
    as_role, otklik: Otklik, name: str, source: str, expected: str
) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    response = await admin.post_json(f"/admin/flows/{KEY}/save", {"source": source, "publish": True})
    assert response.status_code == 422, (name, response.text[:300])
    assert expected in response.json()["errors"][0]["message"], response.json()["errors"]
    checked = await admin.post_json("/admin/flows/_check", {"source": source})
    assert checked.status_code == 422
    assert await versions(otklik) == [(1, True)]
    assert await audit_kinds(otklik) == []


async def test_malformed_and_oversized_requests_are_refused(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    headers = {"X-CSRF-Token": admin.csrf, "Content-Type": "application/json"}
    url = f"/admin/flows/{KEY}/save"
    huge = await admin.http.post(url, content=b'{"source": "' + b"x" * (5 * 1024 * 1024) + b'"}', headers=headers)
    assert huge.status_code == 413 and "larger" in huge.json()["detail"]
    binary = await admin.http.post(url, content=b"\xff\xfe\x00garbage", headers=headers)
    assert binary.status_code == 422 and "JSON" in binary.json()["detail"]
    wrong_type = await admin.http.post(url, content=b'["source"]', headers=headers)
    assert wrong_type.status_code == 422
    no_source = await admin.post_json(url, {"text": "hi"})
    assert no_source.status_code == 422 and "source" in no_source.json()["detail"]
    form = await admin.post(url, {"source": "id: care.main"})
    assert form.status_code == 422 and "JSON" in form.json()["detail"]
    no_csrf = await admin.http.post(url, json={"source": await live_source(otklik)})
    assert no_csrf.status_code == 403
    assert await versions(otklik) == [(1, True)]


async def test_a_draft_is_tried_in_the_console_while_buyers_get_the_published_flow(
    as_role, otklik: Otklik, chat
) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    source = await live_source(otklik)
    draft = with_greeting(source, "Черновик: привет из новой версии!")
    saved = await admin.post_json(f"/admin/flows/{KEY}/save", {"source": draft, "publish": False})
    assert saved.status_code == 200 and saved.json() == {"ok": True, "key": KEY, "version": 2, "active": False}
    assert await versions(otklik) == [(1, True), (2, False)]
    assert (await greeting_of(chat)).startswith(GREETING)  # live conversations: the published v1

    stored = await row_counts(otklik)
    console = await admin.post_json(f"/admin/flows/{KEY}/console", {"version": 2, "action": "start"})
    assert console.status_code == 200, console.text
    body = console.json()
    assert body["replies"][0]["text"] == "Черновик: привет из новой версии!"
    assert body["waiting"] == "input" and body["node"] == "menu"
    step = await admin.post_json(
        f"/admin/flows/{KEY}/console",
        {"version": 2, "action": "text", "text": "пришёл брак", "state": body["state"], "step": 2},
    )
    replies = step.json()["replies"]
    assert any(r["kind"] == "note" and "defective_item" in r["text"] for r in replies)
    assert any(r["kind"] == "note" and "care.record_incident" in r["text"] for r in replies)  # case opened
    done = await admin.post_json(
        f"/admin/flows/{KEY}/console",
        {"version": 2, "action": "action_ok", "state": step.json()["state"], "step": 3},
    )
    assert any(r["kind"] == "bot" and "фото" in r["text"] for r in done.json()["replies"])
    old = await admin.post_json(f"/admin/flows/{KEY}/console", {"version": 1, "action": "start"})
    assert old.json()["replies"][0]["text"].startswith(GREETING)
    assert await row_counts(otklik) == stored  # the console stored nothing and sent nothing

    published = await admin.post_json(f"/admin/flows/{KEY}/publish", {"version": 2})
    assert published.status_code == 200 and published.json()["version"] == 2
    assert await versions(otklik) == [(1, False), (2, True)]
    assert await greeting_of(chat) == "Черновик: привет из новой версии!"
    assert await audit_kinds(otklik) == ["flow.saved", "flow.published"]


async def test_save_and_publish_in_one_step_then_roll_back(as_role, otklik: Otklik, chat) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    source = await live_source(otklik)
    v2 = with_greeting(source, "Версия два <b>жирно</b>")
    response = await admin.post_json(f"/admin/flows/{KEY}/save", {"source": v2, "publish": True})
    assert response.json()["active"] is True and response.json()["version"] == 2
    assert await greeting_of(chat) == "Версия два <b>жирно</b>"
    revision = await otklik.flows.revision()

    same = await admin.post_json(f"/admin/flows/{KEY}/save", {"source": v2, "publish": True})
    assert same.json()["version"] == 2  # nothing changed: no new version

    rolled = await admin.post_json(f"/admin/flows/{KEY}/rollback", {"version": 1})
    assert rolled.status_code == 200 and rolled.json()["version"] == 3
    assert await versions(otklik) == [(1, False), (2, False), (3, True)]
    assert await live_source(otklik) == source
    assert await otklik.flows.revision() > revision  # other processes' watchers reload
    assert (await greeting_of(chat)).startswith(GREETING)
    assert await audit_kinds(otklik) == ["flow.saved", "flow.published", "flow.rolled_back"]
    async with otklik.db.read() as session:
        entry = (await session.execute(select(EventLog).where(EventLog.kind == "flow.rolled_back"))).scalar_one()
    assert entry.actor == "user:admin" and entry.subject_id == KEY
    assert entry.data == {"version": 3, "from_version": 1}

    missing = await admin.post_json(f"/admin/flows/{KEY}/rollback", {"version": 99})
    assert missing.status_code == 404
    history = await admin.http.get(f"/admin/flows/{KEY}")
    assert re.search(r'data-version="3"', history.text) and "flow-rollback" in history.text


async def test_the_diff_between_two_versions_is_escaped(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    source = await live_source(otklik)
    hostile = with_greeting(source, "<script>alert('x')</script> & привет")
    assert (await admin.post_json(f"/admin/flows/{KEY}/save", {"source": hostile})).status_code == 200
    page = await admin.http.get(f"/admin/flows/{KEY}/diff", params={"a": 1, "b": 2})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "+    text: &#34;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; привет" in page.text
    assert '<span class="del">-    text: &#34;Здравствуйте!' in page.text
    assert "--- care.main v1" in page.text and "+++ care.main v2" in page.text
    default = await admin.http.get(f"/admin/flows/{KEY}/diff")  # live vs newest
    assert default.status_code == 200 and "+++ care.main v2" in default.text
    same = await admin.http.get(f"/admin/flows/{KEY}/diff", params={"a": 2, "b": 2})
    assert 'data-testid="flow-diff-same"' in same.text
    editor = await admin.http.get(f"/admin/flows/{KEY}", params={"version": 2})
    assert "<script>alert" not in editor.text and "&lt;script&gt;alert" in editor.text


HOSTILE_NODE = '<img src=x onerror=alert(1)>"]; click n_a call alert(1) %%{init: {"securityLevel": "loose"}}%%'


def test_the_diagram_cannot_carry_markup_or_mermaid_syntax() -> None:
    source = (
        "id: shop.evil\nstart: a\nnodes:\n"
        f"  a: {{type: question, kind: choice, text: q, options: [{{title: t, value: '<b>v</b>|x', next: {_q(HOSTILE_NODE)}}}]}}\n"
        f"  {_q(HOSTILE_NODE)}: {{type: intent_router, routes: {{'<svg onload=alert(2)>': b}}, fallback: b}}\n"
        "  b: {type: end}\n"
    )
    text = diagram_text(parse_flow_yaml(source))
    assert text is not None
    for line in text.splitlines()[1:]:
        assert re.fullmatch(
            r'    (start\(\(\(start\)\)\) --> n_\w+|n_\w+\S*"[\w #;:./→-]*"\S*|n_\w+ -->\|"[\w #;:./→-]*"\| n_\w+'
            r'|n_\w+ -\.->\|"interrupt"\| digression\(\(\(other intent\)\)\)|digression -\.->\|"resume"\| n_\w+)',
            line,
        ), line
    assert "<" not in text and ">" not in text.replace("-->", "").replace("-.->", "").replace("n_a>", "")
    assert "#60;img src#61;x onerror#61;alert#40;1#41;#62;" in text and "%%" not in text


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def test_a_new_flow_is_created_in_a_loaded_pack(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/flows/_new")
    assert page.status_code == 200 and '<option value="care-ru">' in page.text
    source = "id: care.hello\nstart: hi\nnodes:\n  hi: {type: end, text: Привет}\n"
    bad_pack = await admin.post_json("/admin/flows", {"source": source, "pack": "nope"})
    assert bad_pack.status_code == 422
    created = await admin.post_json("/admin/flows", {"source": source, "pack": "care-ru", "publish": False})
    assert created.status_code == 201 and created.json()["version"] == 1 and created.json()["active"] is False
    again = await admin.post_json("/admin/flows", {"source": source, "pack": "care-ru"})
    assert again.status_code == 422 and "already exists" in again.json()["errors"][0]["message"]
    listing = await admin.http.get("/admin/flows")
    assert 'data-flow="care.hello"' in listing.text
    async with otklik.db.read() as session:
        row = (await session.execute(select(FlowVersion).where(FlowVersion.flow_key == "care.hello"))).scalar_one()
    assert row.pack == "care-ru" and row.created_by == "user:admin" and row.active is False


async def test_the_console_fires_timers_and_fakes_action_results(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    source = (
        "id: care.timed\nstart: pause\nnodes:\n"
        "  pause: {type: wait, duration: 2d, text: 'Подождём', next: tag}\n"
        "  tag: {type: action, action: contact.add_tag, args: {tag: vip}, next: done, on_error: oops}\n"
        "  done: {type: end, text: 'Готово'}\n"
        "  oops: {type: end, text: 'Ошибка: {{ action_error }}'}\n"
    )
    assert (await admin.post_json("/admin/flows", {"source": source, "pack": "care-ru"})).status_code == 201
    url = "/admin/flows/care.timed/console"
    stored = await row_counts(otklik)

    async def step(action: str, state: Any = None) -> dict[str, Any]:
        response = await admin.post_json(url, {"version": 1, "action": action, "state": state})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    start = await step("start")
    assert start["replies"][0]["text"] == "Подождём" and start["waiting"] == "timer"
    fired = await step("timer", start["state"])
    assert fired["waiting"] == "action" and any("contact.add_tag" in r["text"] for r in fired["replies"])
    failed = await step("action_error", fired["state"])
    assert failed["replies"][0]["text"] == "Ошибка: failed in the test console"
    ok = await step("action_ok", fired["state"])
    assert ok["replies"][0]["text"] == "Готово"
    assert await row_counts(otklik) == stored
    damaged = await admin.post_json(url, {"version": 1, "action": "text", "text": "hi", "state": {"retries": [1]}})
    assert damaged.status_code == 422 and "restart" in damaged.json()["detail"]
    too_big = await admin.post_json(
        url, {"version": 1, "action": "text", "text": "hi", "state": {"vars": {"x": "y" * 90_000}}}
    )
    assert too_big.status_code in (413, 422)
    nothing = await admin.post_json(url, {"version": 7, "action": "start"})
    assert nothing.status_code == 404
