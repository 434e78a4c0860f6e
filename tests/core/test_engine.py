"""The flow interpreter is pure: state + event -> state + effects. No I/O anywhere in these tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otklik.core.conversation import (
    ContactView,
    ConversationState,
    Handoff,
    RunAction,
    Send,
    SetSubscribed,
    StartTimer,
    Status,
)
from otklik.core.flows.engine import Engine
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.messages import Attachment, EventKind, InboundEvent
from otklik.core.packs import PackConfig
from otklik.core.understanding import Entity, KeywordClassifier, Understanding

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MAIN = """
id: t.main
start: hello
nodes:
  hello: {type: message, text: {ru: "Привет, {{ contact.first_name }}!", es: "¡Hola, {{ contact.first_name }}!"}, next: menu}
  menu:
    type: intent_router
    text: "Что случилось?"
    buttons: [{title: "Брак", payload: "intent:defect"}]
    routes: {defect: photo, wrong: barcode, order: order}
    fallback: clarify
  clarify: {type: question, kind: choice, text: "Выберите", options: [{title: "Брак", value: d, next: photo}], max_retries: 1}
  photo:
    type: question
    kind: photo
    text: "Пришлите фото"
    retry_text: "Нужно фото"
    save_as: photo
    next: rate
  barcode: {type: question, kind: text, text: "Цифры штрихкода?", save_as: code, next: check}
  check:
    type: condition
    branches: [{when: {var: code, op: eq, value: "4600000000000"}, next: ours}]
    else: not_ours
  ours: {type: message, text: "Наш товар: {{ code }}", next: rate}
  not_ours: {type: end, text: "Не наш"}
  order: {type: action, action: shop.order_status, args: {id: "{{ entity_order_id }}"}, save_as: st, next: order_done, on_error: oops}
  order_done: {type: end, text: "Статус: {{ st }}"}
  oops: {type: handoff, text: "Зову менеджера"}
  rate:
    type: question
    kind: number
    text: "Оценка 1-5?"
    min: 1
    max: 5
    save_as: rating
    timeout: 48h
    on_timeout: nudge
    next: bye
  nudge: {type: wait, duration: 1h, text: "Напомню позже", next: bye}
  bye: {type: end, text: "Спасибо"}
"""


class FixedClassifier:
    """Returns a prepared reading per exact text (what the engine does with it is under test)."""

    def __init__(self, readings: dict[str, Understanding]) -> None:
        self.readings = readings

    def understand(self, text: str, language: str | None = None) -> Understanding:
        return self.readings.get(text, Understanding("other", 0.0))


def make_engine(classifier: object | None = None, languages: tuple[str, ...] = ()) -> Engine:
    flow = parse_flow_yaml(MAIN)
    pack = PackConfig(id="t", language="ru", default_flow="t.main", deep_links={"cb": "t.main"}, languages=languages)
    return Engine(pack, {flow.id: flow}, classifier or KeywordClassifier({"defect": ["брак"], "wrong": ["не тот"]}))


_seq = iter(range(1, 10_000))


def text(value: str) -> InboundEvent:
    return InboundEvent(1, f"e{next(_seq)}", "buyer", EventKind.TEXT, text=value)


def button(payload: str) -> InboundEvent:
    return InboundEvent(1, f"e{next(_seq)}", "buyer", EventKind.BUTTON, payload=payload)


def photo() -> InboundEvent:
    return InboundEvent(
        1, f"e{next(_seq)}", "buyer", EventKind.PHOTO, attachments=(Attachment("photo", media_id="a" * 64),)
    )


CONTACT = ContactView(first_name="Анна")


def texts(result: object) -> list[str]:
    return [m.text for m in result.sent()]  # type: ignore[attr-defined]


def test_first_free_text_is_greeted_and_routed_at_once() -> None:
    engine = make_engine()
    result = engine.handle(ConversationState(), text("у меня брак"), CONTACT, NOW)
    assert texts(result) == ["Привет, Анна!", "Пришлите фото"]
    assert (result.state.flow, result.state.node, result.state.waiting) == ("t.main", "photo", "input")
    assert result.state.vars["intent"] == "defect"


def test_language_variant_follows_the_contact_when_the_pack_speaks_it() -> None:
    bilingual = make_engine(languages=("ru", "es"))
    result = bilingual.handle(ConversationState(), text("hola"), ContactView("Ana", language="es"), NOW)
    assert texts(result)[0] == "¡Hola, Ana!"
    russian_only = make_engine().handle(ConversationState(), text("hola"), ContactView("Ana", language="es"), NOW)
    assert texts(russian_only)[0] == "Привет, Ana!"  # the browser's language alone does not decide


def test_router_asks_when_nothing_is_pending_and_accepts_intent_buttons() -> None:
    engine = make_engine()
    first = engine.handle(ConversationState(), text("/start"), CONTACT, NOW)
    assert texts(first) == ["Привет, Анна!", "Что случилось?"]
    assert first.sent()[1].buttons[0].payload == "intent:defect"
    second = engine.handle(first.state, button("intent:defect"), CONTACT, NOW)
    assert texts(second) == ["Пришлите фото"]


def test_invalid_answer_gets_retry_text_then_fails_over() -> None:
    engine = make_engine()
    state = engine.handle(ConversationState(), text("брак"), CONTACT, NOW).state
    retry = engine.handle(state, text("вот текст вместо фото"), CONTACT, NOW)
    assert texts(retry) == ["Нужно фото\nПришлите фото"]
    assert retry.state.node == "photo" and retry.state.retries == 1
    state = engine.handle(retry.state, text("опять"), CONTACT, NOW).state
    failed = engine.handle(state, text("и опять"), CONTACT, NOW)  # max_retries=2 exhausted, no on_fail
    assert any(isinstance(e, Handoff) and e.reason == "retries_exhausted" for e in failed.effects)
    assert failed.state.status == Status.WAITING_OPERATOR


def test_photo_answer_is_saved_and_number_question_validates_range_and_starts_timeout() -> None:
    engine = make_engine()
    state = engine.handle(ConversationState(), text("брак"), CONTACT, NOW).state
    after_photo = engine.handle(state, photo(), CONTACT, NOW)
    assert after_photo.state.vars["photo"] == "a" * 64
    timers = [e for e in after_photo.effects if isinstance(e, StartTimer)]
    assert len(timers) == 1 and timers[0].seconds == 48 * 3600 and timers[0].purpose == "timeout"
    out_of_range = engine.handle(after_photo.state, text("7"), CONTACT, NOW)
    assert out_of_range.state.node == "rate" and "rating" not in out_of_range.state.vars
    done = engine.handle(out_of_range.state, text("4"), CONTACT, NOW)
    assert done.state.vars["rating"] == 4 and texts(done) == ["Спасибо"]
    assert done.state.flow is None and done.state.node is None


def test_timeout_timer_moves_on_only_with_the_current_token() -> None:
    engine = make_engine()
    state = engine.handle(ConversationState(), text("брак"), CONTACT, NOW).state
    at_rate = engine.handle(state, photo(), CONTACT, NOW)
    token = next(e.token for e in at_rate.effects if isinstance(e, StartTimer))
    stale = engine.handle(at_rate.state, InboundEvent(1, "t1", "buyer", EventKind.TIMER, payload="old"), CONTACT, NOW)
    assert stale.sent() == [] and stale.state.node == "rate"
    fired = engine.handle(at_rate.state, InboundEvent(1, "t2", "buyer", EventKind.TIMER, payload=token), CONTACT, NOW)
    assert texts(fired) == ["Напомню позже"] and fired.state.waiting == "timer"
    wait_token = fired.state.token
    after_wait = engine.handle(
        fired.state, InboundEvent(1, "t3", "b", EventKind.TIMER, payload=wait_token), CONTACT, NOW
    )
    assert texts(after_wait) == ["Спасибо"]


def test_condition_branches_on_saved_variable() -> None:
    engine = make_engine()
    state = engine.handle(ConversationState(), text("не тот товар"), CONTACT, NOW).state
    assert state.node == "barcode"
    ours = engine.handle(state, text("4600000000000"), CONTACT, NOW)
    assert texts(ours) == ["Наш товар: 4600000000000", "Оценка 1-5?"]
    other = engine.handle(state, text("123"), CONTACT, NOW)
    assert texts(other) == ["Не наш"]


def test_action_suspends_and_resumes_with_result_or_error() -> None:
    classifier = FixedClassifier({"где заказ 77": Understanding("order", 0.9, (Entity("order_id", "77"),))})
    engine = make_engine(classifier)
    started = engine.handle(ConversationState(), text("где заказ 77"), CONTACT, NOW)
    action = next(e for e in started.effects if isinstance(e, RunAction))
    assert action.name == "shop.order_status" and action.args == {"id": "77"}
    assert started.state.waiting == "action"
    ok = InboundEvent(
        1, "a1", "b", EventKind.ACTION_RESULT, payload=action.token, data={"ok": True, "result": "в пути"}
    )
    assert texts(engine.handle(started.state, ok, CONTACT, NOW)) == ["Статус: в пути"]
    bad = InboundEvent(1, "a2", "b", EventKind.ACTION_RESULT, payload=action.token, data={"ok": False, "error": "x"})
    failed = engine.handle(started.state, bad, CONTACT, NOW)
    assert texts(failed) == ["Зову менеджера"] and failed.state.status == Status.WAITING_OPERATOR
    stale = InboundEvent(1, "a3", "b", EventKind.ACTION_RESULT, payload="other", data={"ok": True})
    assert engine.handle(started.state, stale, CONTACT, NOW).sent() == []


def test_low_confidence_goes_to_fallback_and_choice_accepts_number() -> None:
    engine = make_engine()
    result = engine.handle(ConversationState(), text("абракадабра"), CONTACT, NOW)
    assert texts(result)[-1] == "Выберите" and result.sent()[-1].buttons[0].title == "Брак"
    assert result.state.node == "clarify"
    chosen = engine.handle(result.state, text("1"), CONTACT, NOW)
    assert texts(chosen) == ["Пришлите фото"]


@pytest.mark.parametrize("word", ["стоп", "/stop", "STOP"])
def test_stop_unsubscribes_without_moving_the_flow(word: str) -> None:
    engine = make_engine()
    state = engine.handle(ConversationState(), text("брак"), CONTACT, NOW).state
    result = engine.handle(state, text(word), CONTACT, NOW)
    assert SetSubscribed(False) in result.effects
    assert result.state.node == "photo"


def test_operator_word_and_red_flag_hand_off_with_priority_for_red_flags() -> None:
    engine = make_engine(FixedClassifier({"ожог!!": Understanding("side_effect", 0.9, red_flag="ожог")}))
    plain = engine.handle(ConversationState(), text("оператор"), CONTACT, NOW)
    assert plain.state.status == Status.WAITING_OPERATOR and not plain.state.priority
    urgent = engine.handle(ConversationState(), text("ожог!!"), CONTACT, NOW)
    handoff = next(e for e in urgent.effects if isinstance(e, Handoff))
    assert handoff.priority and urgent.state.priority and handoff.reason == "red_flag:ожог"


def test_waiting_for_an_operator_the_bot_acknowledges_once_and_closed_conversation_restarts() -> None:
    engine = make_engine()
    handed = engine.handle(ConversationState(), text("оператор"), CONTACT, NOW)
    first = engine.handle(handed.state, text("алло"), CONTACT, NOW)
    assert texts(first) == ["Ваше сообщение получено, оператор скоро ответит."]
    assert engine.handle(first.state, text("алло?"), CONTACT, NOW).sent() == []
    with_operator = ConversationState(status=Status.OPERATOR)
    assert engine.handle(with_operator, text("алло"), CONTACT, NOW).sent() == []
    assert engine.handle(first.state, text("оператор"), CONTACT, NOW).sent() == []
    closed = ConversationState(status=Status.CLOSED, vars={"x": 1})
    reopened = engine.handle(closed, text("брак"), CONTACT, NOW)
    assert reopened.state.status == Status.BOT and texts(reopened)[-1] == "Пришлите фото"


def test_deep_link_payload_opens_its_flow_and_is_saved() -> None:
    result = make_engine().handle(
        ConversationState(),
        InboundEvent(1, "s", "b", EventKind.TEXT, text="/start cb_123", payload="cb_123"),
        CONTACT,
        NOW,
    )
    assert result.state.vars["start_payload"] == "cb_123" and result.state.flow == "t.main"


def test_the_engine_does_not_mutate_the_state_it_was_given() -> None:
    state = ConversationState(vars={"a": 1})
    make_engine().handle(state, text("брак"), CONTACT, NOW)
    assert state == ConversationState(vars={"a": 1})


def test_choice_question_buttons_carry_option_values() -> None:
    engine = make_engine()
    result = engine.handle(ConversationState(), text("непонятное"), CONTACT, NOW)
    assert [(b.title, b.payload) for b in result.sent()[-1].buttons] == [("Брак", "d")]
    assert any(isinstance(e, Send) for e in result.effects)


def test_keyword_matcher_matches_word_starts_only_regression_abrakadabra() -> None:
    matcher = KeywordClassifier({"defect": ["брак"]})
    assert matcher.understand("Пришёл БРАКОВАННЫЙ товар").intent == "defect"
    assert matcher.understand("абракадабра").intent == "other"
