"""Message templates: `{{ name }}`, `{{ contact.first_name }}`, `{{ order.total | default('—') }}`.

Deliberately tiny: a template can only read values, never run code. Missing values render empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\|\s*default\(\s*'([^']*)'\s*\)\s*)?\}\}")
_ANY_BRACES = re.compile(r"\{\{(.*?)\}\}", re.S)


def pick_language(text: str | Mapping[str, str] | None, language: str, fallback: str) -> str:
    """Choose the variant for `language`, else the fallback language, else the first one."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    for lang in (language, fallback):
        if lang in text:
            return text[lang]
    return next(iter(text.values()), "")


def lookup(path: str, scope: Mapping[str, Any]) -> Any:
    """Resolve a dotted path; a path whose first name is a conversation variable is read from `vars`
    (`answer.text` is `vars.answer.text`), any other from the top level (`contact.first_name`)."""
    parts = path.split(".")
    vars_scope = scope.get("vars")
    value: Any = scope
    if isinstance(vars_scope, Mapping) and parts[0] in vars_scope:
        value = vars_scope
    for part in parts:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return None
    return value


def render(template: str, scope: Mapping[str, Any]) -> str:
    """Fill placeholders from `scope`; `None` and missing values become '' (or the default)."""

    def fill(match: re.Match[str]) -> str:
        value = lookup(match.group(1), scope)
        if value is None or value == "":
            return match.group(2) or ""
        return str(value)

    return _PLACEHOLDER.sub(fill, template)


def template_errors(template: str) -> list[str]:
    """Placeholders that are not of the supported form (reported by flow validation)."""
    errors = []
    for match in _ANY_BRACES.finditer(template):
        if not _PLACEHOLDER.fullmatch(match.group(0)):
            errors.append(f"unsupported placeholder {match.group(0)!r}")
    return errors
