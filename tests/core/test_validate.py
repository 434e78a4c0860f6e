from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otklik.conversations.packs import available_packs, load_pack
from otklik.core.errors import FlowInvalid
from otklik.core.flows.diagram import mermaid
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.templates import render


def errors(source: str, **kwargs: object) -> list[str]:
    with pytest.raises(FlowInvalid) as info:
        parse_flow_yaml(source, **kwargs)  # type: ignore[arg-type]
    return [str(e) for e in info.value.errors]


def test_every_error_is_reported_with_flow_node_and_field() -> None:
    found = errors("""
id: shop.x
start: a
nodes:
  a: {type: message, text: hi, next: b}
  b: {type: question, kind: choice, text: q, next: zz}
  c: {type: bogus}
  f: {type: question, text: q, max_retries: 99, next: a}
  g: {type: goto, flow: nope}
""")
    assert "shop.x / node b / next: goes to unknown node 'zz'" in found
    assert "shop.x / node b / options: a choice question needs options" in found
    assert any(e.startswith("shop.x / node c / type: unknown node type") for e in found)
    assert any(e.startswith("shop.x / node f / max_retries:") for e in found)
    assert "shop.x / node g / flow: unknown flow 'nope'" in found
    assert len(found) == 5


def test_loop_without_pause_is_refused_but_a_loop_through_a_question_is_fine() -> None:
    found = errors("""
id: loop
start: a
nodes:
  a: {type: set, vars: {x: "1"}, next: b}
  b: {type: message, text: hi, next: a}
""")
    assert any("loop without a question or wait" in e for e in found)
    parse_flow_yaml("""
id: ok
start: a
nodes:
  a: {type: question, text: q, next: b}
  b: {type: message, text: hi, next: a}
""")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("id: x\nstart: a\nnodes: [1, 2", "YAML syntax error: line"),
        ("- just a list", "a flow must be a mapping"),
        ("id: x\nstart: a\nnodes: {}", "nodes"),
        ("id: Bad Id\nstart: a\nnodes: {a: {type: end}}", "id"),
        ("id: x\nstart: b\nnodes: {a: {type: end}}", "start node 'b' does not exist"),
        ("id: x\nstart: a\nnodes: {a: {type: wait, duration: soon, next: a}}", "not a duration"),
        ("id: x\nstart: a\nnodes: {a: {type: message, text: '{{ 1 + 1 }}'}}", "unsupported placeholder"),
        ("id: x\nstart: a\nnodes: {a: {type: message, text: hi, extra: 1}}", "extra"),
    ],
)
def test_malformed_flows_get_clear_errors(source: str, expected: str) -> None:
    assert any(expected.lower() in e.lower() for e in errors(source))


def test_oversized_source_is_refused_before_parsing() -> None:
    assert "the limit is" in errors("#" * 300_000)[0]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a: &x [1, 2]\nb: [*x, *x, *x]\n", "aliases"),
        ("id: x\nstart: a\nnodes: " + "[" * 40 + "]" * 40 + "\n", "nested deeper"),
        ("id: x\x00\nstart: a\n", "control character"),
    ],
)
def test_hostile_yaml_is_refused_before_yaml_builds_anything(source: str, expected: str) -> None:
    assert any(expected in e for e in errors(source))


def test_diagram_labels_carry_no_markup_or_mermaid_syntax() -> None:
    from otklik.core.flows.diagram import mermaid
    from otklik.core.flows.validate import parse_flow_yaml

    flow = parse_flow_yaml(
        "id: x\nstart: a\nnodes:\n"
        "  a: {type: question, kind: choice, text: hi, options: [{title: t, value: '<img src=x onerror=alert(1)>|\\\"', next: b}]}\n"
        "  b: {type: end}\n"
    )
    text = mermaid(flow)
    assert "<" not in text and ">|" not in text.replace("-->|", "").replace("-.->|", "") and "#60;img" in text


def test_unknown_intents_are_reported_when_the_pack_is_known() -> None:
    source = "id: x\nstart: r\nnodes:\n  r: {type: intent_router, routes: {nope: e}, fallback: e}\n  e: {type: end}\n"
    assert any("unknown intent 'nope'" in e for e in errors(source, known_intents=["greeting"]))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes_validation(source: str) -> None:
    try:
        parse_flow_yaml(source)
    except FlowInvalid as exc:
        assert exc.errors


def test_shipped_pack_flows_are_valid_and_draw_as_mermaid() -> None:
    for name in available_packs():
        pack = load_pack(name)
        for flow_id, source in pack.flow_sources.items():
            flow = parse_flow_yaml(source, known_flows=pack.flow_sources)
            diagram = mermaid(flow)
            assert diagram.startswith("flowchart TD") and f"n_{flow.start}" in diagram, flow_id


def test_templates_fill_known_values_and_defaults_and_never_run_code() -> None:
    scope = {"vars": {"name": "Анна", "empty": ""}, "contact": {"first_name": "А"}}
    assert render("{{ name }}/{{ contact.first_name }}/{{ missing }}/{{ empty | default('—') }}", scope) == "Анна/А//—"
    assert render("{{ __class__ }}", scope) == ""


def test_dotted_paths_read_conversation_variables_first_regression_answer_found() -> None:
    scope = {"vars": {"answer": {"found": True, "text": "ok"}}, "contact": {"first_name": "А"}}
    assert render("{{ answer.text }}/{{ answer.found }}/{{ contact.first_name }}", scope) == "ok/True/А"
