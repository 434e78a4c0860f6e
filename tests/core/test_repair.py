"""Conversation repair in the pure engine: red flags and operator requests first, interruption with a
bounded stack and resume, cancel, skip, varied re-asks, the pack's language. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from otklik.core.conversation import (
    CloseDrafts,
    ContactView,
    ConversationState,
    Handoff,
    Record,
    StartTimer,
    Status,
    StepResult,
)
from otklik.core.flows.diagram import mermaid
from otklik.core.flows.engine import INTERRUPTED, RESUME, Engine
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.messages import Attachment, EventKind, InboundEvent
from otklik.core.packs import PackConfig
from otklik.core.understanding import Understanding

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
MAIN = """
id: r.main
start: menu
nodes:
  menu:
    type: intent_router
    text: "Что случилось?"
    routes: {wrong: to_wrong, defect: to_defect, question: answer, thanks: bye, shipping: to_ship}
    fallback: bye
  to_wrong: {type: goto, flow: r.wrong}
  to_defect: {type: goto, flow: r.defect}
  to_ship: {type: goto, flow: r.ship}
  answer: {type: message, text: "Ответ из статьи.", next: bye}
  bye: {type: end}
"""
WRONG = """
id: r.wrong
start: open
nodes:
  open: {type: set, vars: {case_id: "wrong-1", category: wrong}, next: ask}
  ask:
    type: wait
    text: "Пришлите фото этикетки со штрихкодом или цифры под ним."
    duration: 48h
    on_reply: got
    on_skip: no_label
    resume_text: "Вернёмся к штрихкоду?"
    next: bye
  got: {type: end, text: "Проверяю штрихкод {{ last_text }} по делу {{ case_id }}."}
  no_label: {type: end, text: "Можно и без штрихкода: оформите возврат в приложении."}
  bye: {type: end}
"""
DEFECT = """
id: r.defect
start: open
nodes:
  open: {type: set, vars: {case_id: "defect-1", category: defect}, next: photo}
  photo:
    type: question
    kind: photo
    text: "Пришлите фото повреждения."
    retry_text: "Нужна именно фотография."
    save_as: photo
    max_retries: 3
    on_fail: human
    next: thanks
  thanks: {type: end, text: "Фото получено."}
  human: {type: handoff, reason: defect_help}
"""
SHIP = """
id: r.ship
start: city
on_cancel: dropped
nodes:
  city:
    type: question
    kind: text
    text: "В какой город доставить?"
    save_as: city
    next: qty
  qty:
    type: question
    kind: number
    text: "Сколько штук?"
    min: 1
    max: 99
    save_as: qty
    next: ok
  ok: {type: end, text: "Доставим {{ qty }} шт. в {{ city }}."}
  dropped: {type: end, text: "Заказ на доставку не оформлен."}
"""


CART = """
id: r.cart
start: qty
nodes:
  qty: {type: question, kind: number, text: "¿Cuántas unidades?", min: 1, max: 99, save_as: qty, next: confirm}
  confirm:
    type: question
    kind: choice
    text: "¿Confirmo {{ qty }} unidades?"
    options: [{title: "Sí", value: "yes", next: done}, {title: "No", value: "no", next: done}]
  done: {type: end, text: "Pedido: {{ qty }} unidades."}
"""


class Readings:
    """A prepared reading per exact text; anything else is 'other' with no confidence."""

    def __init__(self, readings: dict[str, Understanding]) -> None:
        self.readings = readings

    def understand(self, text: str, language: str | None = None) -> Understanding:
        return self.readings.get(text, Understanding("other", 0.0))


READINGS = Readings(
    {
        "товар бракованный": Understanding("defect", 0.97, alternatives=(("wrong", 0.01),)),
        "вроде не тот товар или бракованный": Understanding("wrong", 0.55, alternatives=(("defect", 0.4),)),
        "как хранить гель": Understanding("question", 0.93, alternatives=(("other", 0.03),)),
        "куда доставите?": Understanding("shipping", 0.9, alternatives=(("other", 0.05),)),
        "позовите человека": Understanding("operator_request", 0.99),
        "у меня отёк лица и трудно дышать": Understanding("defect", 0.6, red_flag="отек лица"),
        "тут ещё и не тот товар прислали": Understanding("wrong", 0.95, alternatives=(("defect", 0.02),)),
    }
)


def engine(**pack: object) -> Engine:
    flows = {
        f.id: f for f in (parse_flow_yaml(s, ["r.main", "r.wrong", "r.defect", "r.ship", "r.cart"]) for s in FLOWS)
    }
    settings: dict[str, object] = {"id": "r", "language": "ru", "default_flow": "r.main", **pack}
    config = PackConfig(**settings)  # type: ignore[arg-type]
    return Engine(config, flows, READINGS)


FLOWS = (MAIN, WRONG, DEFECT, SHIP, CART)
_seq = iter(range(1, 100_000))
RU = ContactView(first_name="Анна", language="ru")


def text(value: str) -> InboundEvent:
    return InboundEvent(1, f"e{next(_seq)}", "buyer", EventKind.TEXT, text=value)


def button(payload: str) -> InboundEvent:
    return InboundEvent(1, f"e{next(_seq)}", "buyer", EventKind.BUTTON, payload=payload)


def photo() -> InboundEvent:
    return InboundEvent(
        1, f"e{next(_seq)}", "buyer", EventKind.PHOTO, attachments=(Attachment("photo", media_id="p" * 64),)
    )


def said(result: StepResult) -> list[str]:
    return [m.text for m in result.sent()]


def records(result: StepResult, kind: str) -> list[dict[str, object]]:
    return [e.data for e in result.effects if isinstance(e, Record) and e.kind == kind]


def at(flow: str, node: str, waiting: str, **vars_: object) -> ConversationState:
    return ConversationState(flow=flow, node=node, waiting=waiting, vars=dict(vars_))


def start_wrong(e: Engine) -> ConversationState:
    result = e.handle(ConversationState(), button("intent:wrong"), RU, NOW)
    assert (result.state.flow, result.state.node, result.state.waiting) == ("r.wrong", "ask", "timer")
    return result.state


# --- 1. red flags and operator requests win everywhere ---------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        at("r.wrong", "ask", "timer"),
        at("r.defect", "photo", "input"),
        at("r.ship", "city", "input"),  # free text: any text would be a valid answer
        at("r.ship", "qty", "input"),
        at("r.wrong", "ask", "resume"),
    ],
    ids=["wait", "photo", "free-text", "number", "resume-prompt"],
)
def test_red_flags_and_operator_requests_win_before_the_node_reads_the_message(state: ConversationState) -> None:
    e = engine()
    urgent = e.handle(state, text("у меня отёк лица и трудно дышать"), RU, NOW)
    (handoff,) = [x for x in urgent.effects if isinstance(x, Handoff)]
    assert handoff.priority and handoff.reason == "red_flag:отек лица"
    assert handoff.context["flow"] == state.flow and handoff.context["node"] == state.node  # with its history
    assert urgent.state.status == Status.WAITING_OPERATOR and urgent.state.priority
    assert said(urgent) == ["Это важно — срочно зову оператора. Если вам плохо, пожалуйста, обратитесь к врачу."]
    human = e.handle(state, text("позовите человека"), RU, NOW)
    (handoff,) = [x for x in human.effects if isinstance(x, Handoff)]
    assert (handoff.priority, handoff.reason, human.state.status) == (False, "buyer_request", Status.WAITING_OPERATOR)


def test_system_texts_follow_the_pack_language_not_the_browser() -> None:
    english_browser = ContactView(language="en")
    russian_pack = engine().handle(
        at("r.wrong", "ask", "timer"), text("у меня отёк лица и трудно дышать"), english_browser, NOW
    )
    assert said(russian_pack)[0].startswith("Это важно")
    spanish = engine(language="es").handle(
        at("r.wrong", "ask", "timer"), text("позовите человека"), english_browser, NOW
    )
    assert said(spanish) == ["Paso tu consulta a un asesor; te responderá por aquí en breve."]
    bilingual = engine(languages=("ru", "en")).handle(
        at("r.wrong", "ask", "timer"), text("позовите человека"), english_browser, NOW
    )
    assert said(bilingual)[0].startswith("I am passing")


# --- 2. interruption, stack, resume ------------------------------------------------------------


def test_another_intent_interrupts_runs_its_flow_and_the_buyer_comes_back_with_the_vars() -> None:
    e = engine()
    state = start_wrong(e)
    assert state.vars["case_id"] == "wrong-1"
    side = e.handle(state, text("товар бракованный"), RU, NOW)
    assert said(side) == ["Пришлите фото повреждения."]
    (why,) = records(side, "interrupted")
    assert why["explain"] == "interrupted r.wrong/ask by defect 0.97" and why["margin"] == 0.96
    assert [(f["flow"], f["node"]) for f in side.state.stack] == [("r.wrong", "ask")]
    assert side.state.vars["case_id"] == "defect-1" and side.state.vars[INTERRUPTED] == "r.wrong"
    done = e.handle(side.state, photo(), RU, NOW)
    assert said(done) == ["Фото получено.", "Вернёмся к штрихкоду?"]
    assert [b.payload for b in done.sent()[1].buttons] == [RESUME, "repair:drop"]
    assert (done.state.flow, done.state.node, done.state.waiting) == ("r.wrong", "ask", "resume")
    back = e.handle(done.state, text("да"), RU, NOW)
    assert said(back) == ["Пришлите фото этикетки со штрихкодом или цифры под ним."]
    assert (back.state.flow, back.state.node, back.state.waiting, back.state.stack) == ("r.wrong", "ask", "timer", [])
    assert back.state.vars["case_id"] == "wrong-1" and INTERRUPTED not in back.state.vars
    assert back.state.vars["photo"] == "p" * 64  # what the other flow collected is kept too
    assert any(isinstance(x, StartTimer) for x in back.effects)  # the wait starts again
    answered = e.handle(back.state, text("4601234567893"), RU, NOW)
    assert said(answered) == ["Проверяю штрихкод 4601234567893 по делу wrong-1."]


def test_a_knowledge_question_is_answered_and_the_question_is_offered_again() -> None:
    e = engine()
    state = e.handle(ConversationState(), button("intent:defect"), RU, NOW).state
    answered = e.handle(state, text("как хранить гель"), RU, NOW)
    assert said(answered) == ["Ответ из статьи.", "Вернёмся к предыдущему вопросу?"]
    resumed = e.handle(answered.state, photo(), RU, NOW)  # the answer itself, without pressing "yes"
    assert said(resumed) == ["Фото получено."] and resumed.state.stack == []
    assert records(resumed, "resumed")[0]["by"] == "input"


def test_declining_to_come_back_drops_the_interrupted_flow() -> None:
    e = engine()
    state = e.handle(start_wrong(e), text("товар бракованный"), RU, NOW).state
    offered = e.handle(state, photo(), RU, NOW).state
    declined = e.handle(offered, text("нет"), RU, NOW)
    assert said(declined) == ["Хорошо. Если понадобится что-то ещё — просто напишите."]
    assert (declined.state.flow, declined.state.stack) == (None, [])
    assert records(declined, "resume_declined")[0]["node"] == "ask"


def test_an_unsure_reading_is_an_answer_attempt_and_the_decision_is_explained() -> None:
    e = engine()
    state = e.handle(ConversationState(), button("intent:defect"), RU, NOW).state
    retry = e.handle(state, text("вроде не тот товар или бракованный"), RU, NOW)
    assert said(retry) == ["Нужна именно фотография.\nПришлите фото повреждения."]
    assert "not sure enough" in str(records(retry, "not_interrupted")[0]["explain"])
    assert retry.state.stack == []


def test_a_free_text_question_takes_the_text_as_its_answer() -> None:
    e = engine()
    state = e.handle(ConversationState(), button("intent:shipping"), RU, NOW).state
    assert state.node == "city"
    answered = e.handle(state, text("товар бракованный"), RU, NOW)  # a confident intent, but text was asked
    assert answered.state.vars["city"] == "товар бракованный" and answered.state.node == "qty"
    interrupted = e.handle(answered.state, text("товар бракованный"), RU, NOW)  # a number question
    assert interrupted.state.flow == "r.defect" and interrupted.state.stack[0]["node"] == "qty"


def test_the_stack_is_bounded_and_old_frames_expire_quietly() -> None:
    e = engine()
    state = e.handle(ConversationState(), button("intent:shipping"), RU, NOW).state
    state = e.handle(state, text("Москва"), RU, NOW).state  # at qty
    state = e.handle(state, text("тут ещё и не тот товар прислали"), RU, NOW).state  # 1: ship/qty
    state = e.handle(state, text("товар бракованный"), RU, NOW).state  # 2: wrong/ask
    state = e.handle(state, text("как хранить гель"), RU, NOW).state  # 3: defect/photo; answer, offer it
    assert state.waiting == "resume" and len(state.stack) == 3
    state = e.handle(state, text("да"), RU, NOW).state  # back at defect/photo
    state = e.handle(state, text("куда доставите?"), RU, NOW).state  # 3: defect/photo again
    state = e.handle(state, text("Казань"), RU, NOW).state  # ship/city answered -> qty
    deep = e.handle(state, text("тут ещё и не тот товар прислали"), RU, NOW)  # 3: ship/qty, 4 drops the oldest
    assert len(deep.state.stack) == 3
    assert [(f["flow"], f["node"]) for f in deep.state.stack] == [
        ("r.wrong", "ask"),
        ("r.defect", "photo"),
        ("r.ship", "qty"),
    ]
    assert records(deep, "frame_dropped")[0]["node"] == "qty"
    later = NOW + timedelta(days=2)
    expired = e.handle(deep.state, text("4601234567893"), RU, later)
    assert len(records(expired, "frame_expired")) == 3 and expired.state.stack == []
    assert said(expired)[-1].startswith("Проверяю штрихкод")  # answered, no stale "shall we go back?"
    assert not any("Вернёмся" in t for t in said(expired))


# --- 3. cancel, 4. skip -----------------------------------------------------------------------


@pytest.mark.parametrize("word", ["отмена", "Не надо!", "ладно, передумала", "cancelar", "Olvídalo"])
def test_cancel_ends_the_flow_with_a_short_confirmation_and_closes_drafts(word: str) -> None:
    e = engine()
    result = e.handle(start_wrong(e), text(word), RU, NOW)
    assert said(result) == ["Хорошо, отменил. Если понадобится что-то ещё — просто напишите."]
    assert (result.state.flow, result.state.node, result.state.waiting) == (None, None, None)
    (close,) = [x for x in result.effects if isinstance(x, CloseDrafts)]
    assert (close.flow, close.reason, close.case) == ("r.wrong", "cancelled_by_buyer", "wrong-1")


def test_cancel_at_a_free_text_question_uses_the_flows_on_cancel() -> None:
    e = engine()
    state = e.handle(ConversationState(), button("intent:shipping"), RU, NOW).state
    result = e.handle(state, text("передумал"), RU, NOW)
    assert said(result) == ["Заказ на доставку не оформлен."] and "city" not in result.state.vars


def test_cancel_inside_an_interruption_offers_the_interrupted_flow() -> None:
    e = engine()
    state = e.handle(start_wrong(e), text("товар бракованный"), RU, NOW).state
    result = e.handle(state, text("отмена"), RU, NOW)
    assert said(result)[-1] == "Вернёмся к штрихкоду?" and result.state.waiting == "resume"


def test_cannot_give_it_takes_the_declared_alternative_or_a_person() -> None:
    e = engine()
    skipped = e.handle(start_wrong(e), text("у меня нет штрихкода, упаковку выбросила"), RU, NOW)
    assert said(skipped) == ["Можно и без штрихкода: оформите возврат в приложении."]
    assert records(skipped, "skipped")[0]["to"] == "no_label"
    state = e.handle(ConversationState(), button("intent:defect"), RU, NOW).state
    no_photo = e.handle(state, text("не могу сфотографировать"), RU, NOW)  # no on_skip: on_fail (a person)
    assert no_photo.state.status == Status.WAITING_OPERATOR and "Нужна именно" not in " ".join(said(no_photo))


# --- 5. re-asks ---------------------------------------------------------------------------------


def test_re_asks_vary_and_the_last_one_offers_a_person() -> None:
    e = engine()
    state = e.handle(ConversationState(), button("intent:defect"), RU, NOW).state
    sent: list[str] = ["Пришлите фото повреждения."]
    buttons = []
    for word in ("вот", "ну вот же", "держите"):
        result = e.handle(state, text(word), RU, NOW)
        sent += said(result)
        buttons = [b.payload for m in result.sent() for b in m.buttons]
        state = result.state
    assert sent[1] == "Нужна именно фотография.\nПришлите фото повреждения."
    assert "скрепку" in sent[2]  # the second re-ask explains differently
    assert "менеджера" in sent[3] and buttons == ["repair:skip", "repair:operator"]
    assert all(a != b for a, b in zip(sent, sent[1:], strict=False))  # never the same sentence twice in a row
    failed = e.handle(state, text("и ещё раз"), RU, NOW)
    assert failed.state.status == Status.WAITING_OPERATOR  # on_fail: a person
    person = e.handle(state, button("repair:operator"), RU, NOW)
    assert [x.reason for x in person.effects if isinstance(x, Handoff)] == ["buyer_request"]


def test_yes_and_no_words_answer_a_yes_no_question() -> None:
    source = """
id: r.yn
start: q
nodes:
  q:
    type: question
    kind: choice
    text: "Позвать менеджера?"
    options: [{title: "Да, позовите", value: "yes", next: h}, {title: "Нет, спасибо", value: "no", next: bye}]
  h: {type: handoff}
  bye: {type: end, text: "Хорошо!"}
"""
    flow = parse_flow_yaml(source)
    e = Engine(PackConfig(id="r", language="ru", default_flow="r.yn"), {flow.id: flow}, READINGS)
    state = at("r.yn", "q", "input")
    assert said(e.handle(state, text("не надо"), RU, NOW)) == ["Хорошо!"]  # an answer here, not a cancel
    assert e.handle(state, text("ага"), RU, NOW).state.status == Status.WAITING_OPERATOR


# --- the flow language ---------------------------------------------------------------------------


def test_validation_checks_the_repair_keys_and_the_diagram_shows_resume_edges() -> None:
    from otklik.core.errors import FlowInvalid

    bad = """
id: r.bad
start: q
on_cancel: nowhere
nodes:
  q: {type: question, kind: photo, text: "Фото?", interruptible: [nope], on_skip: q, next: e}
  e: {type: end}
"""
    with pytest.raises(FlowInvalid) as raised:
        parse_flow_yaml(bad, known_intents=["defect"])
    messages = [str(i) for i in raised.value.errors]
    assert any("on_cancel" in m and "unknown node 'nowhere'" in m for m in messages)
    assert any("interruptible" in m and "unknown intent 'nope'" in m for m in messages)
    assert any("on_skip" in m and "same node" in m for m in messages)
    diagram = mermaid(parse_flow_yaml(WRONG))
    assert 'n_ask -.->|"interrupt"| digression' in diagram and 'digression -.->|"resume"| n_ask' in diagram
    assert 'n_ask -->|"on_skip"| n_no_label' in diagram


# --- 8. correction -------------------------------------------------------------------------------


def test_a_correction_changes_the_collected_value_and_reruns_what_depends_on_it() -> None:
    e = engine()
    asked = e.handle(at("r.cart", "qty", "input"), text("2"), RU, NOW)
    assert said(asked) == ["¿Confirmo 2 unidades?"]
    corrected = e.handle(asked.state, text("mejor 3 unidades"), RU, NOW)
    assert said(corrected) == ["¿Confirmo 3 unidades?"] and corrected.state.vars["qty"] == 3
    (why,) = records(corrected, "corrected")
    assert why["explain"] == "qty: 2 -> 3 at r.cart/qty"
    assert said(e.handle(corrected.state, text("sí"), RU, NOW)) == ["Pedido: 3 unidades."]


def test_a_russian_correction_names_the_old_value_and_must_match_it() -> None:
    e = engine()
    state = e.handle(ConversationState(), button("intent:shipping"), RU, NOW).state
    state = e.handle(state, text("Москва"), RU, NOW).state
    fixed = e.handle(state, text("нет, не Москва, а Казань"), RU, NOW)
    assert fixed.state.vars["city"] == "Казань" and said(fixed) == ["Сколько штук?"]
    unrelated = e.handle(fixed.state, text("не красный, а синий"), RU, NOW)  # not what was said: a re-ask
    assert unrelated.state.vars["city"] == "Казань" and records(unrelated, "corrected") == []


def test_a_choice_of_intents_takes_the_described_intent_as_the_option() -> None:
    source = """
id: r.which
start: which
nodes:
  which:
    type: question
    kind: choice
    text: "Что случилось?"
    options: [{title: "Брак", value: defect, next: d}, {title: "Не тот товар", value: wrong, next: w}]
  d: {type: end, text: "Про брак."}
  w: {type: end, text: "Про пересорт."}
"""
    flows = {
        f.id: f
        for f in (
            parse_flow_yaml(x, ["r.main", "r.wrong", "r.defect", "r.ship", "r.cart", "r.which"])
            for x in (*FLOWS, source)
        )
    }
    e = Engine(PackConfig(id="r", language="ru", default_flow="r.main"), flows, READINGS)
    result = e.handle(at("r.which", "which", "input"), text("товар бракованный"), RU, NOW)
    assert said(result) == ["Про брак."] and result.state.stack == []  # an answer, not an interruption
