"""Evaluation of structured conditions (no code is ever evaluated)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otklik.core.flows.model import Condition
from otklik.core.templates import lookup


def holds(condition: Condition, scope: Mapping[str, Any]) -> bool:
    if condition.all is not None:
        return all(holds(c, scope) for c in condition.all)
    if condition.any is not None:
        return any(holds(c, scope) for c in condition.any)
    if condition.var is None:
        return False
    value = lookup(condition.var, scope)
    return _compare(condition.op, value, condition.value)


def _compare(op: str, value: Any, expected: Any) -> bool:
    if op == "exists":
        return value not in (None, "", [], {})
    if op == "missing":
        return value in (None, "", [], {})
    if op == "eq":
        return bool(_norm(value) == _norm(expected))
    if op == "ne":
        return bool(_norm(value) != _norm(expected))
    if op in ("in", "not_in"):
        options = [_norm(x) for x in (expected if isinstance(expected, list) else [expected])]
        return (_norm(value) in options) == (op == "in")
    if op == "contains":
        return value is not None and str(expected).lower() in str(value).lower()
    return _ordered(op, value, expected)


def _ordered(op: str, value: Any, expected: Any) -> bool:
    try:
        left, right = float(value), float(expected)
    except (TypeError, ValueError):
        return False
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


def _norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().lower()
    try:
        return float(text)
    except ValueError:
        return text
