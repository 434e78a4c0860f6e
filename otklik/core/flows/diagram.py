"""Mermaid text for a flow (rendered by the admin and `otklik flows diagram`)."""

from __future__ import annotations

import re

from otklik.core.flows.model import ConditionNode, Flow, IntentRouterNode, MessageNode, QuestionNode, WaitNode

_SHAPES = {
    "message": ("[", "]"),
    "question": ("[/", "/]"),
    "intent_router": ("{", "}"),
    "condition": ("{", "}"),
    "action": ("[[", "]]"),
    "handoff": ("((", "))"),
    "goto": (">", "]"),
    "wait": ("[(", ")]"),
    "end": ("([", "])"),
    "set": ("[", "]"),
}


def mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f"    start(((start))) --> {_id(flow.start)}"]
    if flow.on_cancel:
        lines.append(f'    cancel(((cancel))) -.->|"on_cancel"| {_id(flow.on_cancel)}')
    for node_id, node in flow.nodes.items():
        left, right = _SHAPES.get(node.type, ("[", "]"))
        label = f"{node_id}: {node.type}" + (f" → {node.flow}" if node.type == "goto" else "")
        if isinstance(node, MessageNode) and node.ab is not None:  # an A/B test: its id, variants and goal
            splits = "/".join(f"{v.key} {v.split}" for v in node.ab.variants)
            label += f" · A/B {node.ab.id}: {splits} → {node.ab.goal.kind}"
        lines.append(f'    {_id(node_id)}{left}"{_label(label)}"{right}')
        if isinstance(node, MessageNode) and node.ab is not None and node.ab.goal.node:
            lines.append(f'    {_id(node_id)} -.->|"goal"| {_id(node.ab.goal.node)}')
        for field, target in node.targets():
            lines.append(f'    {_id(node_id)} -->|"{_label(field)}"| {_id(target)}')
        if isinstance(node, IntentRouterNode):
            lines += [f'    {_id(node_id)} -->|"{_label(i)}"| {_id(t)}' for i, t in node.routes.items()]
        elif isinstance(node, ConditionNode):
            lines += [f'    {_id(node_id)} -->|"if {i + 1}"| {_id(b.next)}' for i, b in enumerate(node.branches)]
        elif isinstance(node, QuestionNode):
            lines += [f'    {_id(node_id)} -->|"{_label(o.value)}"| {_id(o.next)}' for o in node.options if o.next]
        if isinstance(node, QuestionNode | WaitNode) and _resumable(node):
            # conversation repair: another intent may interrupt here; the buyer is offered to come back
            lines.append(f'    {_id(node_id)} -.->|"{_label(_interrupt_label(node))}"| digression(((other intent)))')
            lines.append(f'    digression -.->|"resume"| {_id(node_id)}')
    return "\n".join(lines) + "\n"


def _resumable(node: QuestionNode | WaitNode) -> bool:
    """Another intent may interrupt the node and the buyer is offered to come back (a free-text question
    is not interrupted unless it says so)."""
    if node.interruptible is False or node.resume_text == "":
        return False
    return not (node.interruptible is None and isinstance(node, QuestionNode) and node.kind == "text")


def _interrupt_label(node: QuestionNode | WaitNode) -> str:
    if isinstance(node.interruptible, list):
        return "interrupt: " + ", ".join(node.interruptible)
    return "interrupt"


def _id(node_id: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)


def _label(text: str) -> str:
    """Letters, digits and a few safe marks stay; anything else becomes a Mermaid entity (`<` -> `#60;`),
    so a label can carry neither markup nor Mermaid syntax (node ids and values come from user YAML)."""
    return "".join(ch if ch.isalnum() or ch in " _-.:/→" else f"#{ord(ch)};" for ch in text)
