"""Minimal edits of a flow's YAML text: the canvas sends the whole edited document, the text changes only
where the document changed.

`patch(source, new)` composes the current text (positions of every key and value), walks the old tree and
the new document side by side and collects the smallest text replacements: a changed scalar is rewritten
in place, a removed key loses its lines, a new key is added after its siblings (block style for mappings).
Comments, key order, quoting and unknown keys elsewhere stay byte for byte. What cannot be edited in place
(e.g. a key added to a flow-style `{…}` mapping) rewrites only that value, as JSON-style flow YAML. The
result is loaded again and must equal `new`; otherwise `PatchFailed` is raised and nothing is returned.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from otklik.core import safe_yaml

_PLAIN_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
_Edit = tuple[int, int, str]


class PatchFailed(ValueError):
    """The edit could not be written into the text; the message is safe to show."""


@dataclass(slots=True)
class _Ctx:
    text: str
    edits: list[_Edit]


def load(source: str) -> Any:
    """The document of a source, checked by `safe_yaml` first (hostile text refused)."""
    return safe_yaml.load(source)


def patch(source: str, new: Any) -> str:
    """`source` rewritten so that it loads as `new`, changing only what differs."""
    try:
        root = safe_yaml.compose(source)
    except (safe_yaml.UnsafeYaml, yaml.YAMLError) as exc:
        raise PatchFailed(f"the text cannot be read: {exc}") from None
    if root is None:
        raise PatchFailed("the text is empty")
    ctx = _Ctx(source, [])
    _walk(ctx, root, safe_yaml.load(source), new)
    out = source
    for start, end, text in sorted(ctx.edits, key=lambda e: (e[0], e[1]), reverse=True):
        out = out[:start] + text + out[end:]
    try:
        again = safe_yaml.load(out)
    except (safe_yaml.UnsafeYaml, yaml.YAMLError) as exc:
        raise PatchFailed(f"the edited text cannot be read: {exc}") from None
    if not same(again, new):
        raise PatchFailed("the edit could not be written into the text")
    return out


def same(a: Any, b: Any) -> bool:
    """Equal documents, where `true` is not `1` (Python's `True == 1` would hide a changed type)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


# --- the walk ------------------------------------------------------------------------------------------


def _walk(ctx: _Ctx, node: yaml.Node, old: Any, new: Any) -> None:
    """`old` is what `node` loads as (the document loaded once): unchanged subtrees are skipped at once."""
    if same(old, new):
        return
    if isinstance(node, yaml.MappingNode) and isinstance(new, dict) and isinstance(old, dict):
        _mapping(ctx, node, old, new)
    elif (
        isinstance(node, yaml.SequenceNode) and isinstance(new, list) and isinstance(old, list) and len(old) == len(new)
    ):
        for child, was, value in zip(node.value, old, new, strict=True):
            _walk(ctx, child, was, value)
    else:
        _replace(ctx, node, new)


def _mapping(ctx: _Ctx, node: yaml.MappingNode, old: dict[Any, Any], new: dict[Any, Any]) -> None:
    if len(node.value) != len(old) or not all(isinstance(k, yaml.ScalarNode) for k, _v in node.value):
        _replace(ctx, node, new)  # duplicate or complex keys: rewrite this mapping only
        return
    keys = {key: pair for key, pair in zip(old, node.value, strict=True)}
    removed = [key for key in keys if key not in new]
    added = [key for key in new if key not in keys]
    if (node.flow_style and (removed or added)) or (removed and len(removed) == len(keys) and not added):
        _replace(ctx, node, new)
        return
    if removed and not _deletable(ctx.text, node, [keys[key][0] for key in removed]):
        _replace(ctx, node, new)
        return
    for key, (_k, v) in keys.items():
        if key in new:
            _walk(ctx, v, old[key], new[key])
    for key in removed:
        k, v = keys[key]
        start = ctx.text.rfind("\n", 0, k.start_mark.index) + 1
        ctx.edits.append((start, _line_end(ctx.text, _last(v)) + 1, ""))
    if added:
        column = _column(ctx.text, node.value[0][0]) if node.value else 0
        at = _line_end(ctx.text, _last(node))
        text = "".join("\n" + _entry(key, new[key], column) for key in added)
        if at >= len(ctx.text):
            text += "\n" if not ctx.text.endswith("\n") else ""
        ctx.edits.append((at, at, text))


def _deletable(text: str, node: yaml.MappingNode, removed: list[yaml.Node]) -> bool:
    """Keys are removed by whole lines: only when each removed key starts its line and its value ends one."""
    for k, v in node.value:
        if not any(k is r for r in removed):
            continue
        start = text.rfind("\n", 0, k.start_mark.index) + 1
        if text[start : k.start_mark.index].strip():
            return False
        end = _last(v).end_mark.index
        rest = text[end : _line_end_at(text, end)]
        if rest.strip() and not rest.strip().startswith("#"):
            return False
    return True


def _replace(ctx: _Ctx, node: yaml.Node, new: Any) -> None:
    start = node.start_mark.index
    end = _last(node).end_mark.index if isinstance(node, yaml.CollectionNode) and not node.flow_style else None
    if end is None:
        end = node.end_mark.index
        raw = ctx.text[start:end]
        end = start + len(raw.rstrip())
    plain = isinstance(node, yaml.ScalarNode) and not node.style
    ctx.edits.append((start, end, _plain(new) if plain else _flow(new)))


def _last(node: yaml.Node) -> yaml.Node:
    """The last scalar of a node (a block collection's own end mark runs into the following lines)."""
    while isinstance(node, yaml.CollectionNode) and not node.flow_style and node.value:
        item = node.value[-1]
        node = item[1] if isinstance(item, tuple) else item
    return node


def _line_end(text: str, node: yaml.Node) -> int:
    end = node.end_mark.index
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        end = node.start_mark.index + len(text[node.start_mark.index : end].rstrip())
    return _line_end_at(text, end)


def _line_end_at(text: str, index: int) -> int:
    at = text.find("\n", index)
    return len(text) if at < 0 else at


def _column(text: str, node: yaml.Node) -> int:
    return node.start_mark.index - (text.rfind("\n", 0, node.start_mark.index) + 1)


# --- writing values ------------------------------------------------------------------------------------


def _flow(value: Any) -> str:
    """JSON is YAML: a value written as JSON-style flow YAML (strings double-quoted, Unicode kept)."""
    return json.dumps(value, ensure_ascii=False)


def _plain(value: Any) -> str:
    """An identifier-like string (node ids, payloads, kinds) stays unquoted, as people write them."""
    if isinstance(value, str) and _PLAIN.match(value) and value.lower() not in _RESERVED:
        return value
    return _flow(value)


def _key(key: Any) -> str:
    return key if isinstance(key, str) and _PLAIN_KEY.match(key) and key not in _RESERVED else _flow(key)


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})


def _entry(key: Any, value: Any, column: int) -> str:
    pad = " " * column
    if isinstance(value, dict) and value:
        lines = [f"{pad}{_key(key)}:"]
        lines += [_entry(k, v, column + 2) for k, v in value.items()]
        return "\n".join(lines)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        lines = [f"{pad}{_key(key)}:"]
        lines += [f"{pad}  - {_flow(item)}" for item in value]
        return "\n".join(lines)
    return f"{pad}{_key(key)}: {_plain(value)}"
