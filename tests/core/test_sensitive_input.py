"""Issue 13, "payout details reach the disk in plain text": a `sensitive: true` question keeps only a masked
answer in the conversation state; card numbers are masked in any buyer text before it is stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otklik.conversations.llm.privacy import holds_personal_numbers
from otklik.core.conversation import ContactView, ConversationState
from otklik.core.errors import FlowInvalid
from otklik.core.flows.engine import Engine
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.messages import EventKind, InboundEvent
from otklik.core.packs import PackConfig
from otklik.core.redact import mask_cards, mask_sensitive
from otklik.core.understanding import KeywordClassifier

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FLOW = """
id: t.pay
start: ask
nodes:
  ask: {type: question, kind: text, text: "Реквизиты?", save_as: details, sensitive: true, next: note}
  note: {type: question, kind: text, text: "Комментарий?", save_as: note, next: bye}
  bye: {type: end}
"""
CARD = "5536 9138 2345 6781"  # Luhn-valid
DIGITS = CARD.replace(" ", "")


def engine() -> Engine:
    flow = parse_flow_yaml(FLOW)
    pack = PackConfig(id="t", language="ru", default_flow="t.pay")
    return Engine(pack, {flow.id: flow}, KeywordClassifier({}))


def event(n: int, value: str) -> InboundEvent:
    return InboundEvent(1, f"e{n}", "buyer", EventKind.TEXT, text=value)


def test_payout_details_reach_the_disk_in_plain_text_sensitive_answer_is_masked_in_state() -> None:
    eng = engine()
    first = eng.handle(ConversationState(), event(1, "привет"), ContactView(), NOW)
    assert first.state.node == "ask" and eng.sensitive_input(first.state)
    answered = eng.handle(first.state, event(2, f"карта {CARD}"), ContactView(), NOW)
    stored = str(answered.state.to_dict())
    assert DIGITS not in stored.replace(" ", "") and "5536" not in stored
    assert answered.state.vars["details"] == "карта •••• 6781"
    assert answered.state.vars["last_text"] == "карта •••• 6781"
    assert answered.state.node == "note" and not eng.sensitive_input(answered.state)
    # not sensitive: the text is kept, only a card number in it is hidden (the safety net)
    noted = eng.handle(answered.state, event(3, f"заказ 123456789, карта {CARD}"), ContactView(), NOW)
    assert noted.state.vars["note"] == "заказ 123456789, карта •••• 6781"


def test_sensitive_is_for_typed_answers_only() -> None:
    with pytest.raises(FlowInvalid) as info:
        parse_flow_yaml(FLOW.replace('kind: text, text: "Реквизиты?"', 'kind: photo, text: "Реквизиты?"'))
    assert any("node ask / sensitive" in str(e) for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CARD, "•••• 6781"),
        (f"карта {DIGITS}!", "карта •••• 6781!"),
        ("5536-9138-2345-6781", "•••• 6781"),
        ("+7 926 555 12 34 " + CARD, "+7 926 555 12 •••• 6781"),  # a phone and a card typed in one run
        ("5536 9138 2345 6782", "5536 9138 2345 6782"),  # Luhn fails: not a card
        ("4600000000060", "4600000000060"),  # a valid EAN-13 barcode that also passes Luhn stays
        ("заказ 123456789", "заказ 123456789"),
    ],
)
def test_card_numbers_are_masked_in_any_text(text: str, expected: str) -> None:
    assert mask_cards(text) == expected


def test_a_sensitive_answer_keeps_no_digit_but_the_last_four_of_a_long_number() -> None:
    assert mask_sensitive("+7 916 123-45-67 Сбербанк") == "+•••• 4567 Сбербанк"
    assert mask_sensitive("CVV 123, me@mail.ru") == "CVV ••••, ••••"
    assert holds_personal_numbers(CARD) and not holds_personal_numbers("артикул 12345")
