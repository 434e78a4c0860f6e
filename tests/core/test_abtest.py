"""A/B tests, pure: stable, split-respecting assignment; Wilson intervals and the two-proportion test checked
against values computed here independently; the flow key `ab:` validated and run by the engine."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otklik.core import abtest
from otklik.core.abtest import AB_VAR, assign_variant, results, two_proportion_z, wilson
from otklik.core.conversation import ContactView, ConversationState, Record, Send
from otklik.core.errors import FlowInvalid
from otklik.core.flows.engine import Engine
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.messages import EventKind, InboundEvent
from otklik.core.packs import PackConfig
from otklik.core.understanding import KeywordClassifier

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

splits_st = st.lists(st.integers(min_value=1, max_value=97), min_size=2, max_size=4)


@given(key=st.text(min_size=1, max_size=40), contact=st.integers(min_value=1, max_value=10**12), splits=splits_st)
def test_assignment_is_stable_and_in_range(key: str, contact: int, splits: list[int]) -> None:
    first = assign_variant(key, contact, splits)
    assert 0 <= first < len(splits)
    assert all(assign_variant(key, contact, splits) == first for _ in range(3))
    assert assign_variant(key, str(contact), splits) == first  # the id's text form is the same contact


@settings(max_examples=25, deadline=None)
@given(key=st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True), splits=splits_st)
def test_assignment_respects_the_splits(key: str, splits: list[int]) -> None:
    n = 4000
    counts = [0] * len(splits)
    for contact in range(1, n + 1):
        counts[assign_variant(key, contact, splits)] += 1
    total = sum(splits)
    for count, weight in zip(counts, splits, strict=True):
        p = weight / total
        sd = math.sqrt(n * p * (1 - p))
        assert abs(count - n * p) <= 5 * sd + 1, (counts, splits)


def test_assignment_of_two_tests_is_independent() -> None:
    same = sum(assign_variant("t.a", c, [50, 50]) == assign_variant("t.b", c, [50, 50]) for c in range(2000))
    assert 850 < same < 1150  # about half, not all: a contact in A of one test is not always in A of another


@pytest.mark.parametrize("splits", [[100], [10, 20, 30, 20, 20], [50, 0], [50, -1], [float("nan"), 50]])
def test_bad_splits_are_refused(splits: list[float]) -> None:
    with pytest.raises(ValueError):
        assign_variant("t", 1, splits)


def _wilson_reference(x: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    z = NormalDist().inv_cdf(1 - (1 - conf) / 2)
    p = x / n
    a, b = 2 * n * p + z * z, z * math.sqrt(z * z + 4 * n * p * (1 - p))
    return (a - b) / (2 * (n + z * z)), (a + b) / (2 * (n + z * z))


@pytest.mark.parametrize(("x", "n"), [(0, 10), (10, 10), (30, 200), (1, 3), (512, 1000)])
def test_wilson_matches_the_closed_form(x: int, n: int) -> None:
    low, high = wilson(x, n)
    ref_low, ref_high = _wilson_reference(x, n)
    assert low == pytest.approx(max(0.0, ref_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, ref_high), abs=1e-12)
    assert low <= x / n <= high


def test_wilson_of_an_empty_sample_and_of_nonsense() -> None:
    assert wilson(0, 0) == (0.0, 0.0)
    with pytest.raises(ValueError):
        wilson(5, 3)


def test_two_proportion_z_on_a_known_fixture() -> None:
    # 200/1000 against 250/1000: pooled 0.225, se = sqrt(.225*.775*(2/1000))
    se = math.sqrt(0.225 * 0.775 * 0.002)
    expected_z = 0.05 / se
    expected_p = 2 * (1 - NormalDist().cdf(expected_z))
    z, p = two_proportion_z(200, 1000, 250, 1000)
    assert z == pytest.approx(expected_z, rel=1e-12)
    assert p == pytest.approx(expected_p, rel=1e-9)
    assert two_proportion_z(0, 0, 1, 2) == (0.0, 1.0)
    assert two_proportion_z(0, 10, 0, 10) == (0.0, 1.0)


def test_results_compare_each_variant_with_the_control() -> None:
    out = results([("a", 1000, 200), ("b", 1000, 250), ("c", 1000, 205)])
    assert [r.variant for r in out] == ["a", "b", "c"]
    assert out[0].z is None and not out[0].significant
    assert out[1].significant and out[1].p_value is not None and out[1].p_value < 0.05
    assert not out[2].significant  # 20.5 % against 20 % on 1000: noise
    assert out[1].rate == 0.25 and out[1].low < 0.25 < out[1].high


AB_FLOW = """
id: t.ab
start: offer
nodes:
  offer:
    type: message
    text: "control"
    buttons: [{title: "Buy", payload: "buy"}]
    ab:
      id: offer_test
      variants:
        - {key: a, split: 50, text: "Offer A"}
        - {key: b, split: 50, text: "Offer B", buttons: [{title: "Buy now", payload: "buy"}]}
      goal: {kind: clicked, button: buy, window: 2d}
    next: ask
  ask: {type: question, kind: text, text: "Anything else?", save_as: x, next: done}
  done: {type: end, text: "Bye"}
"""


def _engine(source: str = AB_FLOW) -> Engine:
    flow = parse_flow_yaml(source)
    pack = PackConfig(id="t", language="en", default_flow=flow.id)
    return Engine(pack, {flow.id: flow}, KeywordClassifier({}))


def _event(kind: EventKind, text: str = "", payload: str | None = None, ext: str = "e1") -> InboundEvent:
    return InboundEvent(1, ext, "u1", kind, text=text, payload=payload)


def test_the_engine_sends_the_assigned_variant_and_records_the_exposure() -> None:
    engine = _engine()
    seen = {}
    for contact in (1, 2, 3, 4, 5, 6, 7, 8):
        result = engine.handle(ConversationState(), _event(EventKind.TEXT, "/start"), ContactView(id=contact), NOW)
        variant = ["a", "b"][assign_variant("offer_test", contact, [50, 50])]
        sent = [e.message for e in result.effects if isinstance(e, Send)]
        assert sent[0].text == {"a": "Offer A", "b": "Offer B"}[variant]
        assert [b.title for b in sent[0].buttons] == (["Buy"] if variant == "a" else ["Buy now"])
        exposure = next(e for e in result.effects if isinstance(e, Record) and e.kind == "ab_exposure")
        assert exposure.data["test"] == "offer_test" and exposure.data["variant"] == variant
        assert exposure.data["variants"] == [["a", 50], ["b", 50]]
        assert result.state.vars[AB_VAR]["offer_test"]["variant"] == variant
        seen[variant] = True
    assert set(seen) == {"a", "b"}  # eight contacts see both variants


def test_a_click_on_the_goal_button_converts_once_and_other_input_does_not() -> None:
    engine = _engine()
    first = engine.handle(ConversationState(), _event(EventKind.TEXT, "/start"), ContactView(id=42), NOW)
    variant = ["a", "b"][assign_variant("offer_test", 42, [50, 50])]
    typed = engine.handle(first.state, _event(EventKind.TEXT, "hm", ext="e2"), ContactView(id=42), NOW)
    assert not [e for e in typed.effects if isinstance(e, Record) and e.kind == "ab_conversion"]
    assert "offer_test" in typed.state.vars[AB_VAR]
    restarted = engine.handle(typed.state, _event(EventKind.TEXT, "/start", ext="e3"), ContactView(id=42), NOW)
    clicked = engine.handle(restarted.state, _event(EventKind.BUTTON, payload="buy", ext="e4"), ContactView(id=42), NOW)
    conversions = [e for e in clicked.effects if isinstance(e, Record) and e.kind == "ab_conversion"]
    assert [c.data for c in conversions] == [{"test": "offer_test", "variant": variant, "goal": "clicked"}]
    assert AB_VAR not in clicked.state.vars
    again = engine.handle(clicked.state, _event(EventKind.BUTTON, payload="buy", ext="e5"), ContactView(id=42), NOW)
    assert not [e for e in again.effects if isinstance(e, Record) and e.kind == "ab_conversion"]


def test_a_goal_after_its_window_does_not_convert() -> None:
    engine = _engine()
    first = engine.handle(ConversationState(), _event(EventKind.TEXT, "/start"), ContactView(id=7), NOW)
    late = NOW + timedelta(days=2, seconds=1)
    clicked = engine.handle(first.state, _event(EventKind.BUTTON, payload="buy", ext="e2"), ContactView(id=7), late)
    assert not [e for e in clicked.effects if isinstance(e, Record) and e.kind == "ab_conversion"]
    assert AB_VAR not in clicked.state.vars


def test_reaching_the_goal_node_converts() -> None:
    source = AB_FLOW.replace("goal: {kind: clicked, button: buy, window: 2d}", "goal: {kind: reached, node: done}")
    engine = _engine(source)
    first = engine.handle(ConversationState(), _event(EventKind.TEXT, "/start"), ContactView(id=9), NOW)
    assert not [e for e in first.effects if isinstance(e, Record) and e.kind == "ab_conversion"]
    done = engine.handle(first.state, _event(EventKind.TEXT, "no", ext="e2"), ContactView(id=9), NOW)
    conversions = [e.data for e in done.effects if isinstance(e, Record) and e.kind == "ab_conversion"]
    assert conversions and conversions[0]["goal"] == "reached"


def test_an_unknown_contact_sees_the_first_variant_and_nothing_is_recorded() -> None:
    result = _engine().handle(ConversationState(), _event(EventKind.TEXT, "/start"), ContactView(), NOW)
    assert [e.message.text for e in result.effects if isinstance(e, Send)][0] == "Offer A"
    assert not [e for e in result.effects if isinstance(e, Record) and e.kind.startswith("ab_")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('split: 50, text: "Offer B"', 'split: 40, text: "Offer B"'), "add up to 90"),
        (("{key: b,", "{key: a,"), "used twice"),
        (("goal: {kind: clicked, button: buy, window: 2d}", "goal: {kind: clicked}"), "needs `button`"),
        (("goal: {kind: clicked, button: buy, window: 2d}", "goal: {kind: reached, node: nowhere}"), "unknown node"),
        (("goal: {kind: clicked, button: buy, window: 2d}", "goal: {kind: sold}"), "goal.kind"),
        (("goal: {kind: clicked, button: buy, window: 2d}", "goal: {kind: replied, window: forever}"), "duration"),
        (('text: "Offer A"', 'text: "Offer {{ a + b }}"'), "variants.0.text"),
    ],
)
def test_bad_ab_keys_are_refused_with_a_clear_message(change: tuple[str, str], message: str) -> None:
    with pytest.raises(FlowInvalid) as caught:
        parse_flow_yaml(AB_FLOW.replace(*change))
    text = " | ".join(str(i) for i in caught.value.errors)
    assert message in text and "offer" in text


def test_too_many_variants_are_refused() -> None:
    extra = "\n".join(f'        - {{key: v{i}, split: 20, text: "V{i}"}}' for i in range(5))
    source = AB_FLOW.replace(
        '        - {key: a, split: 50, text: "Offer A"}\n'
        '        - {key: b, split: 50, text: "Offer B", buttons: [{title: "Buy now", payload: "buy"}]}',
        extra,
    )
    with pytest.raises(FlowInvalid) as caught:
        parse_flow_yaml(source)
    assert any("ab.variants" in str(i) for i in caught.value.errors)


def test_bucket_is_uniform_enough() -> None:
    buckets = [abtest.bucket("k", c) for c in range(10_000)]
    assert min(buckets) >= 0 and max(buckets) < abtest.BUCKETS
    assert 4_700 < sum(b < abtest.BUCKETS // 2 for b in buckets) < 5_300


def test_the_diagram_shows_the_test_and_its_goal_node() -> None:
    from otklik.core.flows.diagram import mermaid

    source = AB_FLOW.replace("goal: {kind: clicked, button: buy, window: 2d}", "goal: {kind: reached, node: done}")
    text = mermaid(parse_flow_yaml(source))
    assert "A/B offer_test: a 50/b 50 → reached" in text
    assert 'n_offer -.->|"goal"| n_done' in text
