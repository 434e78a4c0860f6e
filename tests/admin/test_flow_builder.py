"""The visual builder's API on SQLite and PostgreSQL: the canvas model of a source, canvas edits written
into the YAML minimally, node positions beside the flow (no version, no YAML change), publishing refused
for errors marked on nodes, roles, CSRF and hostile input."""

from __future__ import annotations

import copy
import json
import re

from otklik.bootstrap import Otklik
from otklik.core.flows import canvas, gallery
from otklik.core.flows.textpatch import load
from otklik.platform.users import Role

KEY = "care.main"


async def test_the_canvas_model_and_a_canvas_edit_written_into_the_yaml(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    page = await admin.http.get(f"/admin/flows/{KEY}")
    assert 'data-testid="builder-canvas"' in page.text and "/static/admin-flows-builder.js" in page.text
    source = await otklik.flows.source(KEY)
    view = (await admin.post_json("/admin/flows/_canvas", {"source": source})).json()
    assert view["ok"] and view["source"] == source and view["errors"] == []
    ids = [n["id"] for n in view["model"]["nodes"]]
    assert ids[:3] == ["greet", "hello", "hello_marketplace"]
    assert {"from": "hello", "to": "menu", "field": "next", "label": "next"} in view["model"]["edges"]
    doc = load(source)
    edited = copy.deepcopy(doc)
    edited["nodes"]["hello"]["text"] = "Привет с холста!"
    done = (await admin.post_json("/admin/flows/_canvas", {"source": source, "document": edited})).json()
    assert done["ok"] and load(done["source"]) == edited
    assert done["source"] == source.replace(doc["nodes"]["hello"]["text"], "Привет с холста!")
    assert "# in a marketplace's own chat" in done["source"]  # comments survive
    # an edit that breaks a reference is drawn and marked, not refused
    edited["nodes"]["hello"]["next"] = "nowhere"
    marked = (await admin.post_json("/admin/flows/_canvas", {"source": source, "document": edited})).json()
    assert marked["ok"] and any(c["node"] == "hello" and c["code"] == "dangling" for c in marked["checks"])
    assert any(e["node"] == "hello" and e["field"] == "next" for e in marked["errors"])
    assert await otklik.flows.versions(KEY) and len(await otklik.flows.versions(KEY)) == 1  # nothing saved


async def test_unreadable_and_hostile_sources_get_a_clear_message(as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    for source, words in (
        ("id: [unclosed\n", "YAML"),
        ("- a list\n", "mapping"),
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("x: " + "[" * 60 + "]" * 60 + "\n", "nested"),
    ):
        body = (await admin.post_json("/admin/flows/_canvas", {"source": source})).json()
        assert body["ok"] is False and words in body["failed"], (source[:20], body)
    refused = await admin.post_json("/admin/flows/_canvas", {"source": "id: [x", "document": {"id": "x"}})
    assert refused.status_code == 422 and refused.json()["ok"] is False
    wrong = await admin.post_json("/admin/flows/_canvas", {"source": "id: x\n", "document": [1]})
    assert wrong.status_code == 422
    deep = await admin.http.post(
        "/admin/flows/_canvas",
        content=b'{"source": "id: x", "document": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        headers={"X-CSRF-Token": admin.csrf, "Content-Type": "application/json"},
    )
    assert deep.status_code == 422 and "JSON" in deep.json()["detail"]


async def test_positions_are_stored_beside_the_flow_without_a_new_version(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    source = await otklik.flows.source(KEY)
    saved = await admin.post_json(
        f"/admin/flows/{KEY}/layout",
        {"positions": {"hello": [300, 40], "menu": [10.7, 99], "ghost": [1, 1], "greet": ["x", 1], "bad": 5}},
    )
    assert saved.status_code == 200 and saved.json() == {"ok": True, "kept": 2}
    assert (await admin.http.get(f"/admin/flows/{KEY}/layout")).json() == {
        "positions": {"hello": [300, 40], "menu": [10, 99]}
    }
    assert await otklik.flows.source(KEY) == source and len(await otklik.flows.versions(KEY)) == 1
    page = await admin.http.get(f"/admin/flows/{KEY}")
    assert '"layout": {"hello": [300, 40], "menu": [10, 99]}' in page.text
    again = await admin.post_json(f"/admin/flows/{KEY}/layout", {"positions": {"hello": [1, 2]}})
    assert again.json()["kept"] == 1 and await otklik.flows.layout(KEY) == {"hello": [1, 2]}
    missing = await admin.post_json("/admin/flows/care.nothing/layout", {"positions": {}})
    assert missing.status_code == 404
    analyst = await as_role(Role.ANALYST)
    assert (await analyst.post_json(f"/admin/flows/{KEY}/layout", {"positions": {"hello": [5, 5]}})).status_code == 403
    assert (await analyst.http.get(f"/admin/flows/{KEY}/layout")).status_code == 200
    no_csrf = await admin.http.post(f"/admin/flows/{KEY}/layout", json={"positions": {"hello": [9, 9]}})
    assert no_csrf.status_code == 403
    assert await otklik.flows.layout(KEY) == {"hello": [1, 2]}


async def test_publishing_is_refused_for_an_error_marked_on_a_node(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    source = await otklik.flows.source(KEY)
    hello = load(source)["nodes"]["hello"]["text"]
    forbidden = source.replace(hello, "Пишите нам в телеграм @shop_help", 1)
    refused = await admin.post_json(f"/admin/flows/{KEY}/save", {"source": forbidden, "publish": True})
    assert refused.status_code == 422
    errors = refused.json()["errors"]
    assert errors and errors[0]["node"] == "hello" and "marketplace" in errors[0]["message"]
    assert len(await otklik.flows.versions(KEY)) == 1
    draft = await admin.post_json(f"/admin/flows/{KEY}/save", {"source": forbidden, "publish": False})
    assert draft.status_code == 200 and draft.json()["version"] == 2  # a draft may hold work in progress
    publish = await admin.post_json(f"/admin/flows/{KEY}/publish", {"version": 2})
    assert publish.status_code == 422 and publish.json()["errors"][0]["node"] == "hello"
    assert [(v.version, v.active) for v in await otklik.flows.versions(KEY)] == [(1, True), (2, False)]


async def test_new_flow_from_a_template_is_an_editable_copy(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/flows/_new")
    assert page.status_code == 200 and 'data-testid="flow-template"' in page.text
    entries = json.loads(
        re.search(r'<script type="application/json" id="flows-page">(.*?)</script>', page.text, re.S)[1]
    )["gallery"]
    keys = {e["key"] for e in entries}
    assert {
        "ready:nps",
        "ready:collect_phone",
        "ready:welcome_privacy",
        "ready:handoff_summary",
        "pack:care.main",
    } <= keys
    known = await otklik.flows.keys()
    for entry in entries:
        doc = load(entry["source"])
        assert doc["id"] not in known  # a copy never overwrites the original
        assert not [c for c in canvas.lint(doc) if c["level"] == "error"], entry["key"]
    main = next(e for e in entries if e["key"] == "pack:care.main")
    assert load(main["source"])["id"] == "care.main_copy" and "# in a marketplace's own chat" in main["source"]
    nps = next(e for e in entries if e["key"] == "ready:nps")
    created = await admin.post_json("/admin/flows", {"source": nps["source"], "pack": "care-ru", "publish": True})
    assert created.status_code == 201 and created.json()["key"] == "my.nps"
    again = (await admin.http.get("/admin/flows/_new")).text
    assert "my.nps_2" in again  # the next copy gets a free id
    analyst = await as_role(Role.ANALYST)
    assert (await analyst.http.get("/admin/flows/_new")).status_code == 403


def test_a_copy_keeps_the_text_and_ids_are_free() -> None:
    source = "id: a.b\nname: Demo  # kept\nstart: x\nnodes:\n  x: {type: end}\n"
    assert (
        gallery.copy_of(source, "a.c") == 'id: a.c\nname: "Demo (copy)"  # kept\nstart: x\nnodes:\n  x: {type: end}\n'
    )
    assert gallery.free_id("a", {"a", "a_2"}) == "a_3" and gallery.free_id("b", {"a"}) == "b"
