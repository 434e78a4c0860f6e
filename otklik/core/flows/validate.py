"""Parse and check flows. Every problem is reported with flow, node and field; an invalid flow is
never returned."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, NoReturn

import yaml
from pydantic import TypeAdapter, ValidationError

from otklik.core import safe_yaml
from otklik.core.errors import FlowInvalid, FlowIssue
from otklik.core.flows.model import (
    ButtonSpec,
    ConditionNode,
    Flow,
    GotoNode,
    IntentRouterNode,
    MediaSpec,
    MessageNode,
    Node,
    Option,
    QuestionNode,
    Text,
    WaitNode,
)
from otklik.core.templates import template_errors

MAX_SOURCE_BYTES = safe_yaml.MAX_BYTES
_NODE_ADAPTER: TypeAdapter[Node] = TypeAdapter(Node)
_PAUSING = ("question", "intent_router", "wait", "action", "handoff", "end")
SENSITIVE_KINDS = frozenset({"text", "number", "phone", "email", "date"})


def guard_source(source: str) -> None:
    """Refuse hostile or unusable text *before* YAML builds anything from it (see `otklik.core.safe_yaml`).

    PyYAML expands aliases by reference, so a "billion laughs" document is small in memory but costs
    minutes of CPU once validated or serialised; deeply nested lists overflow the recursion limit.
    Flows need neither, so aliases, deep nesting, binary data and oversized text are errors, and so is a
    syntax error (reported with line and column).
    """
    try:
        safe_yaml.check(source, max_bytes=MAX_SOURCE_BYTES)
    except safe_yaml.UnsafeYaml as exc:
        _refuse(str(exc))
    except yaml.YAMLError as exc:
        _refuse(safe_yaml.syntax_message(exc))


def _refuse(message: str) -> NoReturn:
    raise FlowInvalid([FlowIssue("?", None, "", message)])


def parse_flow_yaml(source: str, known_flows: Iterable[str] = (), known_intents: Iterable[str] = ()) -> Flow:
    """YAML text -> a valid `Flow`, or `FlowInvalid` listing every error (hostile input refused first).

    A pure function of its arguments, and a `Flow` is frozen: the valid results of recent calls are kept
    (every start and reload parses every active flow again; the same texts, the same flows)."""
    return _parse_cached(source, frozenset(known_flows), frozenset(known_intents))


@lru_cache(maxsize=512)
def _parse_cached(source: str, known_flows: frozenset[str], known_intents: frozenset[str]) -> Flow:
    try:
        data = safe_yaml.load(source, max_bytes=MAX_SOURCE_BYTES)
    except safe_yaml.UnsafeYaml as exc:
        _refuse(str(exc))
    except yaml.YAMLError as exc:
        _refuse(safe_yaml.syntax_message(exc))
    return build_flow(data, known_flows, known_intents)


def build_flow(data: Any, known_flows: Iterable[str] = (), known_intents: Iterable[str] = ()) -> Flow:
    """A parsed mapping -> a valid `Flow`, or `FlowInvalid` listing every error.

    Nodes are checked one by one so that schema errors in one node and graph errors elsewhere are
    reported together.
    """
    if not isinstance(data, Mapping):
        raise FlowInvalid([FlowIssue("?", None, "", "a flow must be a mapping with id, start and nodes")])
    flow_id = str(data.get("id") or "?")
    raw_nodes = data.get("nodes")
    issues: list[FlowIssue] = []
    nodes: dict[str, Any] = {}
    if isinstance(raw_nodes, Mapping):
        for node_id, raw in raw_nodes.items():
            try:
                nodes[str(node_id)] = _NODE_ADAPTER.validate_python(raw)
            except ValidationError as exc:
                issues += [_issue_from_pydantic(flow_id, err, str(node_id)) for err in exc.errors()]
    header = {**data, "nodes": {k: v.model_dump(by_alias=True) for k, v in nodes.items()} or raw_nodes}
    try:
        flow = Flow.model_validate(header)
    except ValidationError as exc:
        issues += [
            _issue_from_pydantic(flow_id, err)
            for err in exc.errors()
            if err.get("loc", ("",))[0] != "nodes" or not isinstance(raw_nodes, Mapping) or not raw_nodes
        ]
        raise FlowInvalid(issues) from None
    broken = set(raw_nodes) - set(nodes) if isinstance(raw_nodes, Mapping) else set()
    issues += [i for i in check_flow(flow, known_flows, known_intents) if not _about_broken(i, broken)]
    if issues:
        raise FlowInvalid(issues)
    return flow


def _about_broken(issue: FlowIssue, broken: set[str]) -> bool:
    """Graph errors caused only by nodes that already failed the schema are noise."""
    return any(issue.message.endswith(f"unknown node {b!r}") for b in broken)


def check_flow(flow: Flow, known_flows: Iterable[str] = (), known_intents: Iterable[str] = ()) -> list[FlowIssue]:
    """Graph checks that a schema cannot express."""
    flows, intents = set(known_flows) | {flow.id}, set(known_intents)
    issues: list[FlowIssue] = []
    if flow.start not in flow.nodes:
        issues.append(FlowIssue(flow.id, None, "start", f"start node {flow.start!r} does not exist"))
    if flow.on_cancel is not None and flow.on_cancel not in flow.nodes:
        issues.append(FlowIssue(flow.id, None, "on_cancel", f"goes to unknown node {flow.on_cancel!r}"))
    for node_id, node in flow.nodes.items():
        for field, target in node.targets():
            if target not in flow.nodes:
                issues.append(FlowIssue(flow.id, node_id, field, f"goes to unknown node {target!r}"))
        issues += _node_issues(flow, node_id, node, flows, intents)
    issues += _ab_issues(flow)
    issues += _cycle_issues(flow)
    return issues


def _node_issues(flow: Flow, node_id: str, node: Any, flows: set[str], intents: set[str]) -> list[FlowIssue]:
    issues = [FlowIssue(flow.id, node_id, field, msg) for field, msg in _text_issues(node)]
    if isinstance(node, IntentRouterNode):
        for intent, target in node.routes.items():
            if target not in flow.nodes:
                issues.append(FlowIssue(flow.id, node_id, f"routes.{intent}", f"goes to unknown node {target!r}"))
            if intents and intent not in intents:
                issues.append(FlowIssue(flow.id, node_id, f"routes.{intent}", f"unknown intent {intent!r}"))
    elif isinstance(node, ConditionNode):
        for i, branch in enumerate(node.branches):
            if branch.next not in flow.nodes:
                issues.append(
                    FlowIssue(flow.id, node_id, f"branches.{i}.next", f"goes to unknown node {branch.next!r}")
                )
    elif isinstance(node, QuestionNode):
        issues += _question_issues(flow, node_id, node)
    elif isinstance(node, GotoNode) and node.flow not in flows:
        issues.append(FlowIssue(flow.id, node_id, "flow", f"unknown flow {node.flow!r}"))
    if isinstance(node, QuestionNode | WaitNode):
        issues += _repair_issues(flow, node_id, node, intents)
    return issues


def _ab_issues(flow: Flow) -> list[FlowIssue]:
    """The `ab:` key of message nodes (docs/flows.md, "A/B tests")."""
    issues: list[FlowIssue] = []
    seen: dict[str, str] = {}
    for node_id, node in flow.nodes.items():
        if not isinstance(node, MessageNode) or node.ab is None:
            continue
        spec = node.ab

        def add(field: str, message: str, node_id: str = node_id) -> None:
            issues.append(FlowIssue(flow.id, node_id, f"ab.{field}", message))

        if spec.id in seen:
            add("id", f"the test id {spec.id!r} is already used by node {seen[spec.id]!r}")
        seen.setdefault(spec.id, node_id)
        total = sum(v.split for v in spec.variants)
        if total != 100:
            add("variants", f"the splits add up to {total}, not 100")
        keys = [v.key for v in spec.variants]
        for key in sorted({k for k in keys if keys.count(k) > 1}):
            add("variants", f"variant key {key!r} is used twice")
        if node.template is not None:
            add("variants", "a message sent as a WhatsApp template cannot be A/B tested here (test the text)")
        for i, variant in enumerate(spec.variants):
            texts = [variant.text] if isinstance(variant.text, str) else list(variant.text.values())
            for text in texts:
                for msg in template_errors(text):
                    add(f"variants.{i}.text", msg)
                if len(text) > 4096:
                    add(f"variants.{i}.text", "text is longer than 4096 characters")
                if not text.strip():
                    add(f"variants.{i}.text", "a variant needs a text")
            for j, button in enumerate(variant.buttons or []):
                titles = [button.title] if isinstance(button.title, str) else list(button.title.values())
                for title in titles:
                    for msg in template_errors(title):
                        add(f"variants.{i}.buttons.{j}.title", msg)
        goal = spec.goal
        if goal.kind == "clicked" and not goal.button:
            add("goal.button", "goal `clicked` needs `button`: the payload of the button that converts")
        if goal.kind != "clicked" and goal.button:
            add("goal.button", "`button` is only for goal `clicked`")
        if goal.kind == "reached":
            if not goal.node:
                add("goal.node", "goal `reached` needs `node`: the node of this flow that converts")
            elif goal.node not in flow.nodes:
                add("goal.node", f"unknown node {goal.node!r}")
        elif goal.node:
            add("goal.node", "`node` is only for goal `reached`")
    return issues


def _repair_issues(flow: Flow, node_id: str, node: QuestionNode | WaitNode, intents: set[str]) -> list[FlowIssue]:
    """The conversation-repair keys (`interruptible`, `on_skip`, `on_cancel`, `resume_text`)."""
    issues = []
    if isinstance(node.interruptible, list):
        if not node.interruptible:
            issues.append(FlowIssue(flow.id, node_id, "interruptible", "an empty list: write `false` instead"))
        for intent in node.interruptible:
            if intents and intent not in intents:
                issues.append(FlowIssue(flow.id, node_id, "interruptible", f"unknown intent {intent!r}"))
    for field in ("on_skip", "on_cancel"):
        if getattr(node, field) == node_id:
            issues.append(FlowIssue(flow.id, node_id, field, "goes back to the same node: the buyer would be stuck"))
    return issues


def _question_issues(flow: Flow, node_id: str, node: QuestionNode) -> list[FlowIssue]:
    issues = []
    if node.kind == "choice" and not node.options:
        issues.append(FlowIssue(flow.id, node_id, "options", "a choice question needs options"))
    if node.kind != "choice" and node.options:
        issues.append(FlowIssue(flow.id, node_id, "options", "options are only for kind: choice"))
    for i, option in enumerate(node.options):
        if option.next is not None and option.next not in flow.nodes:
            issues.append(FlowIssue(flow.id, node_id, f"options.{i}.next", f"goes to unknown node {option.next!r}"))
    if node.on_timeout and not node.timeout:
        issues.append(FlowIssue(flow.id, node_id, "on_timeout", "on_timeout needs a timeout"))
    if node.min is not None and node.max is not None and node.min > node.max:
        issues.append(FlowIssue(flow.id, node_id, "min", "min is greater than max"))
    if node.sensitive and node.kind not in SENSITIVE_KINDS:
        kinds = ", ".join(sorted(SENSITIVE_KINDS))
        issues.append(FlowIssue(flow.id, node_id, "sensitive", f"sensitive is for typed answers ({kinds})"))
    return issues


def _text_issues(node: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for field, text in _texts(node):
        variants = [text] if isinstance(text, str) else list(text.values())
        for variant in variants:
            found += [(field, msg) for msg in template_errors(variant)]
            if len(variant) > 4096:
                found.append((field, "text is longer than 4096 characters"))
    return found


def _texts(node: Any) -> list[tuple[str, Text]]:
    out: list[tuple[str, Text]] = []
    for field in ("text", "retry_text", "hint_text", "resume_text"):
        value = getattr(node, field, None)
        if value:
            out.append((field, value))
    for group in ("buttons", "options", "media"):
        for i, item in enumerate(getattr(node, group, None) or []):
            if isinstance(item, ButtonSpec | Option):
                out.append((f"{group}.{i}.title", item.title))
            elif isinstance(item, MediaSpec) and item.caption:
                out.append((f"{group}.{i}.caption", item.caption))
    return out


def _cycle_issues(flow: Flow) -> list[FlowIssue]:
    """A loop made only of nodes that never pause would spin forever: refuse it."""
    graph = {
        node_id: [t for _, t in node.targets()] + _branch_targets(node)
        for node_id, node in flow.nodes.items()
        if node.type not in _PAUSING
    }
    issues, state = [], dict.fromkeys(graph, 0)

    def visit(node_id: str, path: list[str]) -> None:
        state[node_id] = 1
        for target in graph.get(node_id, []):
            if target not in graph:
                continue
            if state[target] == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [node_id, target]
                issues.append(
                    FlowIssue(flow.id, target, "next", "loop without a question or wait: " + " -> ".join(cycle))
                )
            elif state[target] == 0:
                visit(target, [*path, target])
        state[node_id] = 2

    for node_id in graph:
        if state[node_id] == 0:
            visit(node_id, [node_id])
    return issues


def _branch_targets(node: Any) -> list[str]:
    if isinstance(node, ConditionNode):
        return [b.next for b in node.branches]
    return []


def _issue_from_pydantic(flow_id: str, err: Any, node_id: str | None = None) -> FlowIssue:
    loc = [str(part) for part in err.get("loc", ())]
    node: str | None = None
    if node_id is not None:
        loc = ["nodes", node_id, *loc]
    if len(loc) >= 2 and loc[0] == "nodes":
        node = loc[1]
        rest = loc[2:]
        if rest and rest[0] in _NODE_TAGS:
            rest = rest[1:]
        field = ".".join(rest)
    else:
        field = ".".join(loc)
    message = str(err.get("msg", "invalid"))
    if err.get("type") == "union_tag_invalid" or "discriminator" in message.lower():
        field = field or "type"
        message = f"unknown node type; use one of: {', '.join(sorted(_NODE_TAGS))}"
    return FlowIssue(flow_id, node, field, message)


_NODE_TAGS = {
    "message",
    "question",
    "set",
    "condition",
    "intent_router",
    "action",
    "handoff",
    "goto",
    "wait",
    "end",
}
