"""Survey trees, pure: validation with clear messages (cycle, dangling option, option count, long titles,
hostile YAML) and compilation into a valid flow; the shipped examples are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from otklik.core import survey
from otklik.core.errors import FlowInvalid
from otklik.core.flows.model import ActionNode, EndNode, QuestionNode
from otklik.core.flows.validate import parse_flow_yaml

PACKS = Path(__file__).parents[2] / "otklik" / "packs"
TREE = """
id: demo
start: trade
thanks: "Thanks"
questions:
  trade:
    text: "Still in the trade?"
    options:
      - {id: y, title: "Yes", next: why}
      - {id: n, title: "No"}
  why:
    text: "Why did you leave us?"
    options:
      - {id: price, title: "Price"}
      - {id: call, title: "Call me", notify: contact}
    other: {title: "Other", text: "Tell us", next: null}
"""


def _issues(source: str) -> str:
    with pytest.raises(FlowInvalid) as caught:
        survey.parse_survey_yaml(source)
    return " | ".join(str(i) for i in caught.value.errors)


def test_a_tree_compiles_into_a_flow_that_validates() -> None:
    tree = survey.parse_survey_yaml(TREE)
    flow = survey.compile_survey(tree)
    assert flow.id == "survey.demo" and flow.start == "q_trade"
    q = flow.nodes["q_trade"]
    assert isinstance(q, QuestionNode) and q.kind == "choice" and [o.value for o in q.options] == ["y", "n"]
    yes = flow.nodes["a_trade__y"]
    assert isinstance(yes, ActionNode) and yes.action == "survey.answer" and yes.next == "q_why"
    assert yes.args == {"survey": "demo", "question": "trade", "option": "y", "attribute": "survey_demo_trade"}
    assert flow.nodes["a_trade__n"].next == "end"  # type: ignore[union-attr]
    call = flow.nodes["a_why__call"]
    assert isinstance(call, ActionNode) and call.args["notify"] == "contact"
    other = flow.nodes["o_why"]
    assert isinstance(other, QuestionNode) and other.kind == "text" and other.next == "a_why__other"
    assert flow.nodes["a_why__other"].args["text"] == "{{ vars.survey_why_other }}"  # type: ignore[union-attr]
    assert isinstance(flow.nodes["end"], EndNode)
    assert parse_flow_yaml(survey.flow_yaml(flow)) == flow  # what the flow store keeps reads back the same


@pytest.mark.parametrize("path", sorted(PACKS.glob("*/surveys/*.yaml")), ids=lambda p: p.parent.parent.name)
def test_the_shipped_examples_are_valid(path: Path) -> None:
    tree = survey.parse_survey_yaml(path.read_text(encoding="utf-8"))
    flow = survey.compile_survey(tree)
    notify = {n.args.get("notify") for n in flow.nodes.values() if isinstance(n, ActionNode)}
    assert {"contact", "intent"} <= notify  # both examples notify an executive


def test_a_cycle_is_refused() -> None:
    source = TREE.replace('{id: price, title: "Price"}', '{id: price, title: "Price", next: trade}')
    assert "cycle: why -> trade -> why" in _issues(source) or "cycle: trade -> why -> trade" in _issues(source)


def test_a_self_loop_is_refused() -> None:
    assert "cycle" in _issues(TREE.replace('{id: n, title: "No"}', '{id: n, title: "No", next: trade}'))


def test_a_dangling_option_is_refused() -> None:
    text = _issues(TREE.replace('{id: n, title: "No"}', '{id: n, title: "No", next: ghost}'))
    assert "option 'n' goes to unknown question 'ghost'" in text


def test_a_dangling_other_and_start_are_refused() -> None:
    assert "unknown question 'ghost'" in _issues(TREE.replace("next: null", "next: ghost"))
    assert "first question 'nope' does not exist" in _issues(TREE.replace("start: trade", "start: nope"))


def test_too_few_and_too_many_options_are_refused() -> None:
    one = TREE.replace('      - {id: n, title: "No"}\n', "")
    assert "1 option(s): a question needs at least 2" in _issues(one)
    many = "\n".join(f'      - {{id: o{i}, title: "O{i}"}}' for i in range(10))
    text = _issues(TREE.replace('      - {id: price, title: "Price"}', many))
    assert "12 options: at most 10" in text


def test_an_over_long_button_title_is_refused() -> None:
    text = _issues(TREE.replace('title: "Price"', 'title: "Price too high for my small shop"'))
    assert "button title" in text and "at most 24" in text and "why" in text


def test_an_unreachable_question_and_duplicate_ids_are_refused() -> None:
    orphan = TREE + '  lost:\n    text: "?"\n    options: [{id: a, title: A}, {id: b, title: B}]\n'
    assert "question 'lost' is never asked" in _issues(orphan)
    assert "option id 'y' is used twice" in _issues(TREE.replace("{id: n,", "{id: y,"))
    assert "reserved" in _issues(TREE.replace("{id: price,", "{id: other,"))


def test_an_unquoted_yes_no_id_gets_a_hint() -> None:
    assert "put it in quotes" in _issues(TREE.replace("{id: n,", "{id: no,"))


@pytest.mark.parametrize(
    "source",
    ["", "[1, 2]", "id: x\n", "a: &a [1]\nb: *a\n", "id: demo\nstart: a\nquestions: {a: {text: 1, options: 2}}\n",
     "{{{{", "id: Bad Id\nstart: a\nquestions: {}\n"],
)  # fmt: skip
def test_malformed_and_hostile_sources_get_a_clear_refusal(source: str) -> None:
    with pytest.raises(FlowInvalid) as caught:
        survey.parse_survey_yaml(source)
    assert caught.value.errors and all(str(i) for i in caught.value.errors)


def test_intro_and_first_question_together_fit_one_message() -> None:
    source = TREE.replace('thanks: "Thanks"', 'thanks: "Thanks"\nintro: "' + "i" * 1010 + '"')
    assert "intro and first question make" in _issues(source)
