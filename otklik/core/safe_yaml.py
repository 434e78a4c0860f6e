"""Untrusted YAML (admin edits, CLI files, imports): checked before any parser builds a tree.

PyYAML's composer and constructor recurse once per nesting level, so a 5000-deep `[[[…]]]` overflows the
interpreter's stack in the pure-Python loader, and libyaml (when the wheel carries it) stops at its own
limit with a scanner error instead. Which of the two runs depends on the machine, so neither may decide:
`check` walks the *event stream* — a loop over a state machine in both implementations, no recursion,
no tree — and refuses aliases, deep nesting, control characters and oversized text with a clear message.
Only text that passed `check` is composed or loaded, always with the same loader class.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 256 * 1024
MAX_DEPTH = 24  # nesting of mappings/lists; real flows and settings use about 6
MAX_EVENTS = 100_000  # parser events (scalars, keys, collections) in one source
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_LIBYAML_DEPTH = "maximum nesting depth"  # libyaml's own limit (1000) reports this in `problem`


class UnsafeYaml(ValueError):
    """The text is refused before parsing; `str(exc)` is a message safe to show to whoever sent it."""


def check(
    source: str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_events: int = MAX_EVENTS,
    loader: type[Any] = LOADER,
) -> None:
    """Refuse hostile or unusable text (`UnsafeYaml`); a plain syntax error is raised as `yaml.YAMLError`."""
    size = len(source.encode("utf-8", "replace"))
    if size > max_bytes:
        raise UnsafeYaml(f"the text is {size} bytes; the limit is {max_bytes} bytes")
    control = _CONTROL.search(source)
    if control:
        line = source.count("\n", 0, control.start()) + 1
        raise UnsafeYaml(
            f"line {line}: binary data or a control character (U+{ord(control.group()):04X}) is not allowed"
        )
    depth = events = 0
    try:
        for event in yaml.parse(source, Loader=loader):
            events += 1
            if events > max_events:
                raise UnsafeYaml(f"the text has more than {max_events} YAML elements")
            if isinstance(event, yaml.AliasEvent):
                raise UnsafeYaml(f"{_at(event)}: YAML aliases (*{event.anchor}) are not allowed; write the value out")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise UnsafeYaml(f"{_at(event)}: nested deeper than {max_depth} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        if _LIBYAML_DEPTH in str(getattr(exc, "problem", "")):
            raise UnsafeYaml(f"{_mark(exc)}nested deeper than {max_depth} levels") from None
        raise


def load(source: str, **limits: Any) -> Any:
    """`check`, then load with the same loader. Raises `UnsafeYaml` or `yaml.YAMLError`."""
    check(source, **limits)
    loader = limits.get("loader", LOADER)
    try:
        return yaml.load(source, Loader=loader)  # noqa: S506 - a safe loader class (CSafeLoader/SafeLoader)
    except RecursionError:  # unreachable after `check`; kept so no input can ever become a traceback
        raise UnsafeYaml("the text is nested too deeply") from None


def compose(source: str, **limits: Any) -> yaml.Node | None:
    """`check`, then the node tree (with line numbers) for locating errors."""
    check(source, **limits)
    try:
        return yaml.compose(source, Loader=limits.get("loader", LOADER))
    except RecursionError:
        raise UnsafeYaml("the text is nested too deeply") from None


def syntax_message(exc: yaml.YAMLError) -> str:
    """'YAML syntax error: line L, column C: problem' for a user."""
    return f"YAML syntax error: {_mark(exc)}{getattr(exc, 'problem', None) or exc}"


def _mark(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _at(event: yaml.Event) -> str:
    mark = event.start_mark
    return f"line {mark.line + 1}" if mark is not None else "somewhere"


def load_trusted(source: str) -> Any:
    """Files that ship with the product or the seller put on the server (packs, locales, synonyms): loaded
    with the C loader when the wheel carries it, without `check`'s event walk — this is every start's path
    (packs are read again on each app start and reload). Text from a form, an upload or the API goes
    through `load`."""
    return yaml.load(source, Loader=LOADER)  # noqa: S506 - a safe loader class (CSafeLoader/SafeLoader)
