"""The visual builder's view of a flow document: nodes as cards, arrows per branch / answer / route, an
automatic layout, and the checks shown on the node as the seller types.

Pure and tolerant: it works on the *document* (the loaded YAML, possibly invalid while being edited), so
the canvas can draw and mark a flow that does not validate yet. `document(canvas(doc)) == doc` for every
document (the property test runs it over every pack flow): the canvas never rewrites what it did not touch.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from otklik.core import guard

_EDGE_FIELDS = (
    "next",
    "on_fail",
    "on_error",
    "on_timeout",
    "on_reply",
    "on_skip",
    "on_cancel",
    "fallback",
    "on_red_flag",
    "else",
)
_TEXT_FIELDS = ("text", "retry_text", "hint_text", "resume_text")
_TEMPLATE = re.compile(r"\{[^{}]*\}")
# Channel limits the canvas warns about (the channel adapters degrade, they never fail):
WHATSAPP_BUTTONS, WHATSAPP_BUTTON_TITLE = 3, 20  # reply buttons
WHATSAPP_ROWS, WHATSAPP_ROW_TITLE = 10, 24  # list rows; beyond: numbered text
TELEGRAM_BUTTON_TITLE = 64  # longer titles are cut by Telegram clients
GUARD_IGNORED = frozenset({"one_word", "empty"})  # a bot's short message is fine; a buyer's is judged elsewhere
X_STEP, Y_STEP, WRAP = 260, 130, 5


def canvas(doc: dict[str, Any]) -> dict[str, Any]:
    """A flow document -> the canvas model: `head` (every top-level key but `nodes`), `nodes` (id, type,
    the node's own document), `edges` (from, to, field, label)."""
    raw_nodes = doc.get("nodes")
    nodes_doc: dict[str, Any] = raw_nodes if isinstance(raw_nodes, dict) else {}
    nodes = [{"id": str(key), "type": _type(value), "data": value} for key, value in nodes_doc.items()]
    edges: list[dict[str, str]] = []
    for key, value in nodes_doc.items():
        edges += edges_of(str(key), value)
    return {
        "head": {k: v for k, v in doc.items() if k != "nodes"},
        "order": [str(k) for k in doc],
        "nodes": nodes,
        "edges": edges,
    }


def document(model: dict[str, Any]) -> dict[str, Any]:
    """The canvas model -> the flow document (the inverse of `canvas`, key order kept)."""
    head = model["head"]
    nodes = {node["id"]: node["data"] for node in model["nodes"]}
    order = [k for k in model.get("order", []) if k == "nodes" or k in head]
    order += [k for k in head if k not in order]
    if "nodes" not in order and nodes:
        order.append("nodes")
    return {k: (nodes if k == "nodes" else head[k]) for k in order}


def edges_of(node_id: str, data: Any) -> list[dict[str, str]]:
    """Every arrow leaving a node: plain fields, condition branches, question options, intent routes."""
    if not isinstance(data, dict):
        return []
    out = []
    for field in _EDGE_FIELDS:
        if isinstance(data.get(field), str):
            out.append({"from": node_id, "to": data[field], "field": field, "label": field})
    for i, branch in enumerate(_list(data.get("branches"))):
        if isinstance(branch, dict) and isinstance(branch.get("next"), str):
            out.append({"from": node_id, "to": branch["next"], "field": f"branches.{i}.next", "label": f"if {i + 1}"})
    for i, option in enumerate(_list(data.get("options"))):
        if isinstance(option, dict) and isinstance(option.get("next"), str):
            label = _plain_text(option.get("title")) or str(option.get("value", ""))
            out.append({"from": node_id, "to": option["next"], "field": f"options.{i}.next", "label": label})
    routes = data.get("routes")
    if isinstance(routes, dict):
        titles = {
            str(b.get("payload", ""))[7:]: _plain_text(b.get("title"))
            for b in _list(data.get("buttons"))
            if isinstance(b, dict) and str(b.get("payload", "")).startswith("intent:")
        }
        for intent, target in routes.items():
            if isinstance(target, str):
                label = titles.get(str(intent)) or str(intent)
                out.append({"from": node_id, "to": target, "field": f"routes.{intent}", "label": label})
    return out


def layout(model: dict[str, Any], keep: dict[str, Any] | None = None) -> dict[str, list[int]]:
    """Positions for every node: stored ones (`keep`) stay; the rest by layers of distance from the start
    (left to right in a layer by first discovery), unreachable nodes in a last row."""
    ids = [node["id"] for node in model["nodes"]]
    keep = keep or {}
    targets: dict[str, list[str]] = {i: [] for i in ids}
    for edge in model["edges"]:
        if edge["from"] in targets and edge["to"] in targets and edge["to"] not in targets[edge["from"]]:
            targets[edge["from"]].append(edge["to"])
    start = model["head"].get("start")
    depth: dict[str, int] = {}
    queue: deque[str] = deque()
    for root in (start, model["head"].get("on_cancel")):
        if isinstance(root, str) and root in targets and root not in depth:
            depth[root] = 0 if root == start else 1
            queue.append(root)
    while queue:
        current = queue.popleft()
        for nxt in targets[current]:
            if nxt not in depth:
                depth[nxt] = depth[current] + 1
                queue.append(nxt)
    last = max(depth.values(), default=-1) + 1
    layers: dict[int, list[str]] = {}
    for node_id in ids:
        layers.setdefault(depth.get(node_id, last), []).append(node_id)
    out: dict[str, list[int]] = {}
    line = 0  # a wide layer (a menu with ten routes) wraps onto several lines of `WRAP` cards
    for row in sorted(layers):
        for i, node_id in enumerate(layers[row]):
            stored: Any = keep.get(node_id)
            if _point(stored):
                out[node_id] = [int(stored[0]), int(stored[1])]
            else:
                out[node_id] = [40 + (i % WRAP) * X_STEP, 40 + (line + i // WRAP) * Y_STEP]
        line += (len(layers[row]) + WRAP - 1) // WRAP
    return out


def _point(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < 1_000_000 for v in value)
    )


def clean_layout(value: Any, node_ids: set[str] | None = None) -> dict[str, list[int]]:
    """A stored or submitted layout, reduced to `{node id: [x, y]}` with sane numbers (hostile input dropped)."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for key, point in list(value.items())[:2000]:
        if isinstance(key, str) and len(key) <= 80 and _point(point) and (node_ids is None or key in node_ids):
            out[key] = [int(point[0]), int(point[1])]
    return out


# --- checks on the node as you type ------------------------------------------------------------------------


def lint(doc: dict[str, Any], *, languages: list[str] | None = None) -> list[dict[str, Any]]:
    """Problems the canvas marks on a node: `{node, field, level, code, message, ...}`.

    Errors (publishing is refused): an arrow to a missing node, a forbidden word in a flow that runs in a
    marketplace's chat. Warnings: an unreachable node, a text missing in one of the languages, a button
    title longer than a channel shows.
    """
    model = canvas(doc)
    ids = {node["id"] for node in model["nodes"]}
    out: list[dict[str, Any]] = []
    for edge in model["edges"]:
        if edge["to"] not in ids:
            out.append(
                _issue(
                    edge["from"], edge["field"], "error", "dangling", f"the arrow goes to a missing node {edge['to']!r}"
                )
            )
    start = model["head"].get("start")
    if isinstance(start, str) and start not in ids:
        out.append(_issue(None, "start", "error", "dangling", f"the start node {start!r} does not exist"))
    reachable = _reachable(model)
    for node in model["nodes"]:
        if node["id"] not in reachable:
            out.append(_issue(node["id"], None, "warning", "unreachable", "no arrow leads to this node"))
    langs = list(languages or []) or _languages(doc)
    marketplace = doc.get("marketplace", True) is not False
    for node in model["nodes"]:
        data = node["data"] if isinstance(node["data"], dict) else {}
        for field, text in _texts(data):
            if isinstance(text, dict) and langs:
                for lang in langs:
                    if not str(text.get(lang) or "").strip():
                        out.append(
                            _issue(node["id"], field, "warning", "missing_language", f"no text in {lang}", lang=lang)
                        )
            if marketplace:
                for variant in _variants(text):
                    verdict = guard.check(_TEMPLATE.sub(" ", variant))
                    reasons = [r for r in verdict.reasons if r not in GUARD_IGNORED]
                    if reasons:
                        why = "; ".join(guard.REASONS.get(r, (r, r))[1] for r in reasons)
                        out.append(
                            _issue(
                                node["id"],
                                field,
                                "error",
                                "guard",
                                f"a marketplace chat forbids this: {why}",
                                reasons=reasons,
                            )
                        )
        out += _button_checks(node["id"], data)
    return out


def _button_checks(node_id: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    buttons = [b for b in _list(data.get("buttons")) + _list(data.get("options")) if isinstance(b, dict)]
    first = len([b for b in _list(data.get("buttons")) if isinstance(b, dict)])
    for i, button in enumerate(buttons):
        field = f"buttons.{i}.title" if i < first else f"options.{i - first}.title"
        for title in _variants(button.get("title")):
            if len(title) > TELEGRAM_BUTTON_TITLE:
                out.append(
                    _issue(
                        node_id,
                        field,
                        "warning",
                        "title_long",
                        f"longer than {TELEGRAM_BUTTON_TITLE} characters: Telegram cuts it",
                        channel="telegram",
                    )
                )
            elif len(title) > WHATSAPP_ROW_TITLE:
                out.append(
                    _issue(
                        node_id,
                        field,
                        "warning",
                        "title_long",
                        f"longer than {WHATSAPP_ROW_TITLE} characters: WhatsApp sends numbered text",
                        channel="whatsapp",
                    )
                )
            elif len(title) > WHATSAPP_BUTTON_TITLE and len(buttons) <= WHATSAPP_BUTTONS:
                out.append(
                    _issue(
                        node_id,
                        field,
                        "warning",
                        "title_long",
                        f"longer than {WHATSAPP_BUTTON_TITLE} characters: WhatsApp sends a list, not buttons",
                        channel="whatsapp",
                    )
                )
    return out


def _reachable(model: dict[str, Any]) -> set[str]:
    targets: dict[str, list[str]] = {}
    for edge in model["edges"]:
        targets.setdefault(edge["from"], []).append(edge["to"])
    roots = [model["head"].get("start"), model["head"].get("on_cancel")]
    seen: set[str] = set()
    stack = [r for r in roots if isinstance(r, str)]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack += targets.get(current, [])
    return seen


def _languages(doc: dict[str, Any]) -> list[str]:
    """The languages the flow itself uses (every language of any per-language text)."""
    found: list[str] = []
    nodes = doc.get("nodes") if isinstance(doc.get("nodes"), dict) else {}
    for data in (nodes or {}).values():
        for _field, text in _texts(data if isinstance(data, dict) else {}):
            if isinstance(text, dict):
                found += [str(k) for k in text if str(k) not in found]
    return found


def _texts(data: dict[str, Any]) -> list[tuple[str, Any]]:
    out = [(field, data[field]) for field in _TEXT_FIELDS if field in data and data[field] is not None]
    for group in ("buttons", "options"):
        for i, item in enumerate(_list(data.get(group))):
            if isinstance(item, dict) and "title" in item:
                out.append((f"{group}.{i}.title", item["title"]))
    return out


def _variants(text: Any) -> list[str]:
    if isinstance(text, str):
        return [text] if text.strip() else []
    if isinstance(text, dict):
        return [str(v) for v in text.values() if isinstance(v, str) and v.strip()]
    return []


def _plain_text(text: Any) -> str:
    variants = _variants(text)
    return variants[0] if variants else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _type(value: Any) -> str:
    return str(value.get("type", "?")) if isinstance(value, dict) else "?"


def _issue(node: str | None, field: str | None, level: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"node": node, "field": field, "level": level, "code": code, "message": message, **extra}
