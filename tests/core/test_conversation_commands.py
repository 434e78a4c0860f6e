"""The named commands that change a conversation state outside the engine (pure: each returns a new state)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otklik.core.conversation import (
    OPERATOR_ACKED,
    ContactView,
    ConversationState,
    Status,
    close,
    hand_back,
    is_idle,
    park,
    redact_var,
)
from otklik.core.flows.engine import Engine
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.messages import EventKind, InboundEvent
from otklik.core.packs import PackConfig
from otklik.core.understanding import KeywordClassifier


def test_only_a_conversation_with_the_bot_and_in_no_flow_is_idle() -> None:
    assert is_idle(ConversationState())
    assert not is_idle(ConversationState(flow="care.main", node="ask"))
    for status in (Status.WAITING_OPERATOR, Status.OPERATOR, Status.CLOSED):
        assert not is_idle(ConversationState(status=status))


def test_park_puts_an_idle_conversation_at_a_question_and_leaves_the_original_alone() -> None:
    before = ConversationState(retries=2, token="old", vars={"name": "Аня"})
    parked = park(before, "care.cashback", "wait", cb={"claim": 7})
    assert (parked.status, parked.flow, parked.node, parked.waiting) == (Status.BOT, "care.cashback", "wait", "input")
    assert parked.token is None and parked.retries == 0
    assert parked.vars == {"name": "Аня", "cb": {"claim": 7}}
    assert before == ConversationState(retries=2, token="old", vars={"name": "Аня"})


@pytest.mark.parametrize(
    "state",
    [
        ConversationState(flow="care.main", node="ask", waiting="input"),
        ConversationState(status=Status.WAITING_OPERATOR),
        ConversationState(status=Status.OPERATOR),
        ConversationState(status=Status.CLOSED),
    ],
)
def test_park_refuses_a_conversation_that_is_not_idle(state: ConversationState) -> None:
    with pytest.raises(ValueError, match="idle"):
        park(state, "care.cashback", "wait")


def test_redact_var_drops_one_variable_only() -> None:
    state = ConversationState(flow="care.cashback", node="wait", vars={"last_text": "4276 1234", "cb": {"claim": 1}})
    redacted = redact_var(state, "last_text")
    assert redacted.vars == {"cb": {"claim": 1}}
    assert (redacted.flow, redacted.node) == ("care.cashback", "wait")
    assert state.vars["last_text"] == "4276 1234"
    assert redact_var(redacted, "last_text") == redacted  # absent: nothing changes


def test_close_ends_the_wait_and_forgets_the_acknowledgement() -> None:
    state = ConversationState(
        status=Status.WAITING_OPERATOR, priority=True, waiting="input", token="t", vars={OPERATOR_ACKED: True, "x": 1}
    )
    closed = close(state)
    assert (closed.status, closed.priority, closed.waiting, closed.token) == (Status.CLOSED, False, None, None)
    assert closed.vars == {"x": 1}
    assert state.status == Status.WAITING_OPERATOR and OPERATOR_ACKED in state.vars


def test_hand_back_makes_the_conversation_idle_and_keeps_its_variables() -> None:
    state = ConversationState(
        status=Status.OPERATOR,
        flow="care.main",
        node="ask",
        waiting="input",
        token="t",
        retries=3,
        priority=True,
        vars={OPERATOR_ACKED: True, "name": "Аня"},
    )
    back = hand_back(state)
    assert is_idle(back) and back.node is None and back.waiting is None and back.token is None
    assert back.retries == 0 and back.priority is False and back.vars == {"name": "Аня"}
    assert park(back, "care.main", "ask").node == "ask"  # an operator may send it back to a question


def test_the_engine_acknowledges_a_waiting_buyer_under_the_public_key_once() -> None:
    flow = parse_flow_yaml("id: t.main\nstart: hi\nnodes:\n  hi: {type: end, text: 'привет'}\n")
    engine = Engine(PackConfig(id="t", language="ru", default_flow="t.main"), {flow.id: flow}, KeywordClassifier({}))
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    message = InboundEvent(1, "e1", "buyer", EventKind.TEXT, text="алло")
    first = engine.handle(ConversationState(status=Status.WAITING_OPERATOR), message, ContactView(), now)
    assert first.state.vars.get(OPERATOR_ACKED) is True and len(first.sent()) == 1
    again = engine.handle(first.state, message, ContactView(), now)
    assert again.sent() == []  # once per wait
    assert OPERATOR_ACKED not in close(again.state).vars  # the next wait acknowledges again
