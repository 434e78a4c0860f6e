"""Property: in every shipped flow, at every node that waits for the buyer (a question, a router, a wait, a
running action, the "shall we go back?" offer), an operator request hands off with the context and a red
flag hands off urgently — before the node reads the message. Real packs, real offline classifier.

The messages are written for this test and are not training examples of the packs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otklik.conversations.nlu.classifier import load_classifier
from otklik.conversations.packs import load_pack
from otklik.core.conversation import ContactView, ConversationState, Handoff, Status
from otklik.core.flows.engine import Engine
from otklik.core.flows.model import ActionNode, IntentRouterNode, QuestionNode, WaitNode
from otklik.core.flows.validate import parse_flow_yaml
from otklik.core.messages import EventKind, InboundEvent

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
OPERATOR = {
    "care-ru": [
        "позовите человека",
        "мне нужен живой менеджер",
        "соедините меня с человеком, пожалуйста",
        "можно живого оператора?",
        "дайте мне человека, а не робота",
        "оператор",
    ],
    "sales-es": [
        "¿me comunicás con alguien de ventas?",
        "prefiero que me atienda un humano",
        "necesito hablar con un vendedor de verdad",
        "operador",
    ],
}
RED_FLAGS = {
    "care-ru": [
        "у меня отёк лица и трудно дышать",
        "после геля ожог на коже",
        "вызвали скорую после вашего крема",
        "подам на вас в суд",
        "губы опухли после масла",
    ],
    "sales-es": ["me dio una descarga eléctrica la fuente", "voy a hacer una denuncia", "la cámara prendió fuego"],
}


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Engine]:
    cache = tmp_path_factory.mktemp("nlu")
    out = {}
    for name in ("care-ru", "sales-es"):
        pack = load_pack(name)
        flows = {fid: parse_flow_yaml(src, known_flows=pack.flow_sources) for fid, src in pack.flow_sources.items()}
        out[name] = Engine(pack.config, flows, load_classifier(pack.directory, cache))
    return out


def waiting_nodes(engine: Engine) -> list[tuple[str, str, str]]:
    """(flow, node, waiting) for every node where a buyer's message can arrive."""
    found = []
    for flow in engine.flows.values():
        for node_id, node in flow.nodes.items():
            if isinstance(node, QuestionNode | IntentRouterNode):
                found.append((flow.id, node_id, "input"))
            elif isinstance(node, WaitNode):
                found.append((flow.id, node_id, "timer"))
            elif isinstance(node, ActionNode):
                found.append((flow.id, node_id, "action"))
            if isinstance(node, QuestionNode | WaitNode):
                found.append((flow.id, node_id, "resume"))
    return found


def test_every_shipped_flow_has_waiting_nodes(engines: dict[str, Engine]) -> None:
    assert len(waiting_nodes(engines["care-ru"])) > 40 and len(waiting_nodes(engines["sales-es"])) > 5


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), pack=st.sampled_from(["care-ru", "sales-es"]), urgent=st.booleans())
def test_any_waiting_node_hands_off_on_an_operator_request_or_a_red_flag(
    engines: dict[str, Engine], data: st.DataObject, pack: str, urgent: bool
) -> None:
    engine = engines[pack]
    flow, node, waiting = data.draw(st.sampled_from(waiting_nodes(engine)), label="node")
    text = data.draw(st.sampled_from((RED_FLAGS if urgent else OPERATOR)[pack]), label="text")
    browser = data.draw(st.sampled_from([None, "en", "ru", "es"]), label="browser")
    stack = (
        [{"flow": flow, "node": node, "vars": {}, "at": NOW.isoformat(), "reason": "x"}] if waiting == "resume" else []
    )
    state = ConversationState(flow=flow, node=node, waiting=waiting, vars={"case_id": "c1"}, stack=stack)
    event = InboundEvent(1, "e1", "buyer", EventKind.TEXT, text=text)
    result = engine.handle(state, event, ContactView(language=browser), NOW)
    handoffs = [e for e in result.effects if isinstance(e, Handoff)]
    assert len(handoffs) == 1, (flow, node, waiting, text)
    (handoff,) = handoffs
    if urgent:
        assert handoff.priority and handoff.reason.startswith("red_flag:")
    else:
        assert not handoff.priority and handoff.reason == "buyer_request"
    assert handoff.context["flow"] == flow and handoff.context["node"] == node
    assert result.state.status == Status.WAITING_OPERATOR
    (reply,) = result.sent()  # the hand-off text only, in the pack's language whatever the browser says
    expected = engine.pack.text("handoff_priority" if urgent else "handoff")
    rendered = expected if isinstance(expected, str) else expected[engine.pack.language]
    assert reply.text == rendered
