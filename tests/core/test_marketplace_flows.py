"""No flow can offer or start a reward for reviews in a marketplace's own chat (WB rules): every built-in
flow that runs a cashback action is declared `marketplace: false`, and the engine neither enters such a
flow nor shows a button or an option leading to it there — whatever the path (a typed request, a menu
button, a `flow:` button, a deep link, the number of a degraded option, a goto). Elsewhere it still works."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from otklik.conversations.packs import available_packs, load_pack
from otklik.core.conversation import ContactView, ConversationState, Send, StepResult
from otklik.core.flows.engine import Engine
from otklik.core.flows.model import ActionNode
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.messages import EventKind, InboundEvent, degrade_buttons
from otklik.core.understanding import KeywordClassifier

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
_seq = itertools.count(1)
MARKETPLACE = ContactView(first_name="Ира", language="ru", marketplace=True)
TELEGRAM = ContactView(first_name="Ира", language="ru")
REWARD_WORDS = ("бонус", "кэшб", "кешб", "вознагражд", "за отзыв")


def engine_of(pack_id: str) -> Engine:
    pack = load_pack(pack_id)
    ids = list(pack.flow_sources)
    flows = {f.id: f for f in (parse_flow_yaml(src, ids) for src in pack.flow_sources.values())}
    return Engine(pack.config, flows, KeywordClassifier(pack.keywords))


def event(text: str = "", *, kind: EventKind = EventKind.TEXT, payload: str | None = None) -> InboundEvent:
    return InboundEvent(1, f"e{next(_seq)}", "chat-1", kind, text=text, payload=payload)


def sent(result: StepResult) -> list[str]:
    """What the buyer reads, buttons degraded to numbered text as in WB chat."""
    return [degrade_buttons(e.message).text for e in result.effects if isinstance(e, Send)]


def entered(result: StepResult) -> str | None:
    return result.state.flow


@pytest.mark.parametrize("pack_id", available_packs())
def test_every_flow_running_a_cashback_action_is_refused_on_marketplaces(pack_id: str) -> None:
    eng = engine_of(pack_id)
    for flow in eng.flows.values():
        rewards = [n for n in flow.nodes.values() if isinstance(n, ActionNode) and n.action.startswith("cashback.")]
        if rewards:
            assert flow.marketplace is False, f"{pack_id}: {flow.id} runs {rewards[0].action} on marketplaces"


def _paths() -> list[tuple[str, InboundEvent, ConversationState | None]]:
    clarify = ConversationState(flow="care.main", node="clarify", waiting="input")
    return [
        ("typed", event("Хочу бонус за отзыв, кэшбэк"), None),
        ("menu button", event(kind=EventKind.BUTTON, payload="intent:cashback_request"), None),
        ("flow button", event(kind=EventKind.BUTTON, payload="flow:care.cashback"), None),
        ("deep link", event("/start cb_summer"), None),
        ("option number", event("1"), clarify),  # "1" was «Бонус за отзыв» before it was hidden
    ]


@pytest.mark.parametrize(("how", "ev", "state"), _paths(), ids=[p[0] for p in _paths()])
def test_no_path_starts_a_reward_in_a_marketplace_chat(
    how: str, ev: InboundEvent, state: ConversationState | None
) -> None:
    eng = engine_of("care-ru")
    start = state or ConversationState()
    if state is None and how != "deep link":  # the menu first, as a buyer meets it
        start = eng.handle(ConversationState(), event(""), MARKETPLACE, NOW).state
    result = eng.handle(start, ev, MARKETPLACE, NOW)
    assert entered(result) != "care.cashback", how
    assert not any(e.name.startswith("cashback.") for e in result.effects if hasattr(e, "name")), how
    for text in sent(result):
        assert not any(w in text.lower() for w in REWARD_WORDS), (how, text)


def test_the_marketplace_menu_and_choices_leave_the_reward_out_and_numbers_still_match() -> None:
    eng = engine_of("care-ru")
    first = eng.handle(ConversationState(), event(""), MARKETPLACE, NOW)  # e.g. the card alone opens the chat
    menu = [e.message for e in first.effects if isinstance(e, Send)]
    payloads = [b.payload for m in menu for b in m.buttons]
    assert "intent:cashback_request" not in payloads and "intent:wrong_item" in payloads
    assert not any(w in t.lower() for t in sent(first) for w in REWARD_WORDS)
    clarify = ConversationState(flow="care.main", node="clarify", waiting="input")
    asked = eng.handle(clarify, event("что-то непонятное"), MARKETPLACE, NOW)  # the question again
    options = [b.title for e in asked.effects if isinstance(e, Send) for b in e.message.buttons]
    assert options and options[0] == "Проблема с товаром" and "Бонус за отзыв" not in options
    picked = eng.handle(clarify, event("1"), MARKETPLACE, NOW)  # 1 = the first option shown
    assert entered(picked) == "care.problem"


def test_outside_marketplaces_the_reward_is_still_offered() -> None:
    eng = engine_of("care-ru")
    first = eng.handle(ConversationState(), event(""), TELEGRAM, NOW)
    assert "intent:cashback_request" in [
        b.payload for e in first.effects if isinstance(e, Send) for b in e.message.buttons
    ]
    chose = eng.handle(first.state, event(kind=EventKind.BUTTON, payload="intent:cashback_request"), TELEGRAM, NOW)
    assert entered(chose) == "care.cashback"


def test_the_channel_context_becomes_variables_but_never_the_engines_own() -> None:
    eng = engine_of("care-ru")
    card = {"nm_id": 101, "order_id": "r-1", "size": "44"}
    ev = InboundEvent(
        1, "e-ctx", "chat-1", EventKind.TEXT, text="Привет", data={"context": {"wb_card": card, "last_text": "x"}}
    )
    result = eng.handle(ConversationState(), ev, MARKETPLACE, NOW)
    assert result.state.vars["wb_card"] == card and result.state.vars.get("last_text") == "Привет"
