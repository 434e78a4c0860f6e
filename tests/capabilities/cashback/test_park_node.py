"""The moderator's "ask for a better screenshot" parks an idle buyer at the cashback flow's loop question
(`moderation.WAIT_NODE`, through `core.conversation.park`): that node must exist in the shipped flow."""

from __future__ import annotations

from pathlib import Path

import otklik
from otklik.capabilities.cashback import moderation
from otklik.core.conversation import ConversationState, park
from otklik.core.flows.model import QuestionNode
from otklik.core.flows.validate import parse_flow_yaml

FLOW_FILE = Path(otklik.__file__).parent / "packs" / "care-ru" / "flows" / "cashback.yaml"


def test_the_park_node_is_a_question_of_the_cashback_flow_that_loops_into_its_step() -> None:
    flow = parse_flow_yaml(FLOW_FILE.read_text(encoding="utf-8"))
    assert flow.id == moderation.FLOW
    node = flow.nodes[moderation.WAIT_NODE]
    assert isinstance(node, QuestionNode) and node.next == "step" and node.on_fail == "step"
    parked = park(ConversationState(), moderation.FLOW, moderation.WAIT_NODE, cb={"wait": "input"})
    assert (parked.flow, parked.node, parked.waiting) == ("care.cashback", "wait", "input")
