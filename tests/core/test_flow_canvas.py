"""The builder's core: pack flow -> canvas model -> document round trip, minimal text edits, the checks
marked on nodes, the automatic layout."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import pytest

from otklik.core.flows import canvas as builder
from otklik.core.flows.textpatch import PatchFailed, load, patch
from otklik.core.flows.validate import parse_flow_yaml

PACK_FLOWS = sorted(Path("otklik/packs").glob("*/flows/*.yaml"))
SOURCE = """\
id: demo.flow
name: Demo   # the seller's comment
start: hello
x-note: kept  # an unknown key a canvas edit must not drop
nodes:
  hello:
    type: message
    text: {ru: "Привет", en: "Hello"}
    buttons:
      - {title: "Да", payload: "yes"}
    next: ask
  # the question
  ask:
    type: question
    text: |
      Ваш номер?
    save_as: phone
    next: done
  done:
    type: end
"""


def changed_lines(old: str, new: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_there_are_pack_flows() -> None:
    assert len(PACK_FLOWS) >= 10


@pytest.mark.parametrize("path", PACK_FLOWS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_pack_flow_round_trips_through_the_canvas(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    doc = load(source)
    model = builder.canvas(doc)
    again = builder.document(model)
    assert again == doc and list(again) == list(doc) and list(again["nodes"]) == list(doc["nodes"])
    assert patch(source, again) == source  # byte for byte: nothing rewritten that did not change
    # every arrow the engine follows is drawn
    flow = parse_flow_yaml(source, known_flows={"care.main", doc["id"]} | _goto_targets(doc))
    drawn = {(e["from"], e["to"]) for e in model["edges"]}
    for node_id, node in flow.nodes.items():
        for _field, target in node.targets():
            assert (node_id, target) in drawn
    assert not [c for c in builder.lint(doc) if c["level"] == "error"]
    positions = builder.layout(model)
    assert set(positions) == set(doc["nodes"]) and len({tuple(p) for p in positions.values()}) == len(positions)


def _goto_targets(doc: dict) -> set[str]:  # type: ignore[type-arg]
    return {n["flow"] for n in doc["nodes"].values() if n.get("type") == "goto"}


def test_a_canvas_edit_changes_only_what_it_changed() -> None:
    doc = load(SOURCE)
    new = copy.deepcopy(doc)
    new["nodes"]["hello"]["text"]["en"] = 'Hi "there"'
    assert changed_lines(SOURCE, patch(SOURCE, new)) == [
        '-    text: {ru: "Привет", en: "Hello"}',
        '+    text: {ru: "Привет", en: "Hi \\"there\\""}',
    ]
    new["nodes"]["ask"]["next"] = "hello"
    out = patch(SOURCE, new)
    assert (
        "+    next: hello" in changed_lines(SOURCE, out) and "# the seller's comment" in out and "x-note: kept" in out
    )


def test_adding_and_removing_nodes_and_keys() -> None:
    doc = load(SOURCE)
    new = copy.deepcopy(doc)
    del new["nodes"]["done"]
    new["nodes"]["ask"]["next"] = "bye"
    new["nodes"]["bye"] = {"type": "end", "text": {"ru": "Пока", "en": "Bye"}}
    new["nodes"]["hello"]["buttons"].append({"title": "Нет", "payload": "no"})
    del new["nodes"]["ask"]["save_as"]
    out = patch(SOURCE, new)
    assert load(out) == new
    assert "# the question" in out and "Ваш номер?" in out and "x-note: kept  # an unknown key" in out
    assert '  bye:\n    type: end\n    text:\n      ru: "Пока"' in out
    assert "save_as" not in out


def test_a_block_text_replaced_keeps_the_following_keys() -> None:
    new = copy.deepcopy(load(SOURCE))
    new["nodes"]["ask"]["text"] = "Ваш телефон?\nС кодом страны."
    out = patch(SOURCE, new)
    assert load(out) == new
    assert "    save_as: phone\n" in out


@pytest.mark.parametrize(
    "value",
    ["yes", "null", "1e5", "- x", "a: b", "# no comment", "{x}", "\\", "tab\there", "🎁 emoji", "x" * 3000, True, 12],
)
def test_awkward_values_are_written_so_that_they_read_back(value: object) -> None:
    new = copy.deepcopy(load(SOURCE))
    new["nodes"]["done"]["text"] = value
    new["nodes"]["hello"]["buttons"][0]["payload"] = value
    assert load(patch(SOURCE, new)) == new


def test_a_patch_that_cannot_be_written_is_refused() -> None:
    with pytest.raises(PatchFailed):
        patch("id: [unclosed", {"id": "x"})
    with pytest.raises(PatchFailed):
        patch("", {"id": "x"})
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    with pytest.raises(PatchFailed):  # nested beyond the safe loader's limit: refused, nothing returned
        patch(SOURCE, {**load(SOURCE), "x-note": deep})


def test_the_checks_marked_on_nodes() -> None:
    doc = load(SOURCE)
    doc["nodes"]["hello"]["next"] = "nowhere"
    doc["nodes"]["lost"] = {"type": "message", "text": {"ru": "Пишите в телеграм @shop_help", "en": ""}}
    doc["nodes"]["hello"]["buttons"].append({"title": "Очень длинная надпись кнопки", "payload": "x"})
    checks = builder.lint(doc)
    by = {(c["node"], c["code"]) for c in checks}
    assert ("hello", "dangling") in by
    assert ("ask", "unreachable") in by  # hello no longer leads to ask
    assert ("lost", "missing_language") in by
    assert ("hello", "title_long") in by
    guard = [c for c in checks if c["code"] == "guard"]
    assert guard and guard[0]["node"] == "lost" and guard[0]["level"] == "error" and "handle" in guard[0]["reasons"]
    doc["marketplace"] = False  # a flow that never runs in a marketplace chat may mention messengers
    assert not [c for c in builder.lint(doc) if c["code"] == "guard"]


def test_the_checks_survive_a_broken_document() -> None:
    broken = {"id": "x", "start": 3, "nodes": {"a": "not a mapping", "b": {"type": "message", "branches": "x"}}}
    assert builder.canvas(broken)["edges"] == []
    assert {c["node"] for c in builder.lint(broken)} == {"a", "b"}  # both unreachable, nothing raised
    assert builder.canvas({"id": "x"})["nodes"] == []


def test_layout_keeps_stored_positions_and_drops_hostile_ones() -> None:
    model = builder.canvas(load(SOURCE))
    positions = builder.layout(model, keep={"ask": [500, 70]})
    assert positions["ask"] == [500, 70] and positions["hello"][1] < positions["done"][1]
    hostile = {"hello": [1e9, 0], "ask": ["1", 2], "done": [True, 3], "x" * 200: [1, 2], "ok": [1.6, -2]}
    assert builder.clean_layout(hostile) == {"ok": [1, -2]}
    assert builder.clean_layout([1, 2]) == {}
    assert builder.clean_layout({"ok": [1, 2], "gone": [3, 4]}, {"ok"}) == {"ok": [1, 2]}


def test_duplicate_keys_rewrite_only_their_mapping() -> None:
    source = "id: x  # top\nnodes:\n  a:\n    type: end\n    text: one\n    text: two\n"
    new = load(source)
    assert new["nodes"]["a"]["text"] == "two"
    new["nodes"]["a"]["text"] = "three"
    out = patch(source, new)
    assert load(out) == new and out.startswith("id: x  # top\nnodes:\n  a:")
