"""Conversation repair, the pure parts: matching cancel/skip/yes/no words and the table of intents that may
interrupt a waiting node (read from the pack's entry router). The engine applies them; see
docs/flows.md#conversation-repair."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from otklik.core.flows.model import (
    EndNode,
    Flow,
    GotoNode,
    HandoffNode,
    IntentRouterNode,
    MessageNode,
    Node,
    QuestionNode,
    SetNode,
    WaitNode,
)

_MARKS = re.compile(r"[^\w\s*']+")
_SMALL_TALK_KINDS = (EndNode, IntentRouterNode, HandoffNode)


def fold(text: str) -> str:
    """Lower case, ё as е, accents and punctuation dropped, spaces collapsed: "Olvídalo!" -> "olvidalo"."""
    lowered = unicodedata.normalize("NFKD", text.lower().replace("ё", "е"))
    plain = "".join(ch for ch in lowered if not unicodedata.combining(ch)).replace("’", "'")
    return " ".join(_MARKS.sub(" ", plain).split())


def _pattern(phrase: str) -> re.Pattern[str]:
    words = fold(phrase).split()
    parts = [re.escape(w[:-1]) + r"\w*" if w.endswith("*") else re.escape(w) for w in words]
    return re.compile(r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)")


class Phrases:
    """A list of words or phrases matched on folded text; `word*` matches any word starting with `word`."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self.whole = frozenset(fold(p) for p in phrases if not p.endswith("*"))
        self.patterns = [_pattern(p) for p in phrases if fold(p)]

    def is_whole(self, text: str) -> bool:
        folded = fold(text)
        return folded in self.whole or folded.removesuffix(" спасибо").removesuffix(" gracias") in self.whole

    def found(self, text: str) -> str | None:
        folded = fold(text)
        return next((p.pattern for p in self.patterns if p.search(folded)), None)

    def says(self, text: str, max_words: int) -> bool:
        """The message is short and holds one of the phrases ("ладно, передумала")."""
        folded = fold(text)
        if folded in self.whole:
            return True
        return len(folded.split()) <= max_words and any(p.search(folded) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class Digression:
    """An intent that may interrupt a flow: the entry flow's route node for it and the flow it leads to."""

    intent: str
    flow: str  # the entry flow
    node: str  # its route target in the entry flow
    leads_to: str  # the flow the intent ends up in (the entry flow itself for knowledge answers)


def digressions(flows: Mapping[str, Flow], entry: str, operator_intent: str) -> dict[str, Digression]:
    """Intents of the entry flow's first router whose route leads to real work (a flow, an answer), not
    to small talk (an `end`, another router) or a hand-off (the operator request is handled before)."""
    flow = flows.get(entry)
    router = _first_router(flow) if flow is not None else None
    if flow is None or router is None:
        return {}
    table: dict[str, Digression] = {}
    for intent, node_id in router.routes.items():
        if intent == operator_intent:
            continue
        leads_to = _leads_to(flow, node_id)
        if leads_to is not None:
            table[intent] = Digression(intent, flow.id, node_id, leads_to)
    return table


def _first_router(flow: Flow) -> IntentRouterNode | None:
    seen, queue = set(), [flow.start]
    while queue:
        node_id = queue.pop(0)
        if node_id in seen or node_id not in flow.nodes:
            continue
        seen.add(node_id)
        node = flow.nodes[node_id]
        if isinstance(node, IntentRouterNode):
            return node
        queue += [t for _, t in node.targets()]
    return None


def _leads_to(flow: Flow, node_id: str) -> str | None:
    answered = False  # a message on the way is an answer (an article), even if an `end` follows
    for _ in range(16):
        node: Node | None = flow.nodes.get(node_id)
        if node is None or isinstance(node, _SMALL_TALK_KINDS):
            return flow.id if answered and node is not None else None
        if isinstance(node, GotoNode):
            return node.flow
        if isinstance(node, SetNode | MessageNode) and node.next:
            answered = answered or isinstance(node, MessageNode)
            node_id = node.next
            continue
        return flow.id
    return flow.id


def interruptible(node: QuestionNode | WaitNode, intent: str) -> bool:
    """Whether `intent` may interrupt `node` (its `interruptible`, or the default for its kind)."""
    setting = node.interruptible
    if setting is None:
        if isinstance(node, QuestionNode):
            return node.kind != "text"
        return True
    if isinstance(setting, bool):
        return setting
    return intent in setting


YES_NO = frozenset({"yes", "no"})


def yes_no_option(node: QuestionNode, answer: bool) -> str | None:
    """The option value a yes/no word means at a choice question whose options are `yes` and `no`."""
    values = {o.value for o in node.options}
    if node.kind != "choice" or not values >= YES_NO:
        return None
    return "yes" if answer else "no"


_CORRECTIONS = (
    # "нет, не крем, а гель", "не 2, а 3", "ой, не красный а синий"
    re.compile(r"^(?:(?:нет|ой|извините|простите)\W+)*не\s+(?P<old>[^,]+?)\s*,?\s+а\s+(?P<new>.+)$", re.I),
    # "исправлю: гель", "поправка - 3 штуки"
    re.compile(r"^(?:исправ\w*|поправка|точнее)\W+(?P<new>.+)$", re.I),
    # "mejor 3 unidades", "no, mejor el kit de 8"
    re.compile(r"^(?:no\W+)?mejor\W+(?P<new>.+)$", re.I),
    # "perdón, son 3", "corrijo: 5 cámaras"
    re.compile(r"^(?:perd[oó]n|corrijo|en realidad)\W+(?:(?:son|eran|es|era)\s+)?(?P<new>.+)$", re.I),
    # "no son 2, son 3"
    re.compile(r"^no\s+(?:son|es|eran|era)\s+(?P<old>[^,]+?),\s*(?:son|es|eran|era)\s+(?P<new>.+)$", re.I),
)


def correction(text: str) -> tuple[str, str] | None:
    """(old, new) when the message corrects something said before: "нет, не крем, а гель" -> ("крем",
    "гель"); "mejor 3 unidades" -> ("", "3 unidades")."""
    stripped = " ".join(text.strip().rstrip(".!").split())
    for pattern in _CORRECTIONS:
        match = pattern.match(stripped)
        if match:
            groups = match.groupdict()
            new = (groups.get("new") or "").strip(" ,.:-")
            if new:
                return (groups.get("old") or "").strip(" ,.:-"), new
    return None


_FIRST_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def first_number(text: str) -> str | None:
    """ "3 unidades" -> "3" (a corrected number is often written with its unit)."""
    match = _FIRST_NUMBER.search(text)
    return match.group(0) if match else None
