"""Regression: a fresh clone failed `test_hostile_sources_…[deep nesting]` with RecursionError.

Which YAML implementation runs depends on the machine (PyYAML's wheel may or may not carry libyaml, and
libyaml stops at its own nesting limit with a scanner error that the old guard took for a plain syntax
error, handing the text to the recursive pure-Python composer). Every check here runs with *both*
loaders, so the outcome no longer depends on which one the machine has.
"""

from __future__ import annotations

import sys

import pytest
import yaml

from otklik.core import safe_yaml
from otklik.core.errors import FlowInvalid
from otklik.core.flows.validate import parse_flow_yaml

LOADERS = [pytest.param(yaml.SafeLoader, id="pure-python")]
if hasattr(yaml, "CSafeLoader"):
    LOADERS.append(pytest.param(yaml.CSafeLoader, id="libyaml"))

DEEP = ["[" * 5000 + "]" * 5000, "{a: " * 5000 + "1" + "}" * 5000, "\n  " + "- " * 5000 + "x"]


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("body", DEEP, ids=["flow-lists", "flow-maps", "block-lists"])
def test_deep_nesting_is_refused_without_recursion_by_either_loader(loader: type, body: str) -> None:
    source = "id: care.main\nx: " + body + "\n"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # the check must not recurse per level: a tiny stack still suffices
    try:
        with pytest.raises(safe_yaml.UnsafeYaml, match="nested deeper than 24 levels"):
            safe_yaml.load(source, loader=loader)
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("loader", LOADERS)
def test_aliases_control_characters_and_size_are_refused(loader: type) -> None:
    with pytest.raises(safe_yaml.UnsafeYaml, match="aliases"):
        safe_yaml.load("a: &x [1, 2]\nb: *x\n", loader=loader)
    with pytest.raises(safe_yaml.UnsafeYaml, match="control character"):
        safe_yaml.load("a: b\x00\n", loader=loader)
    with pytest.raises(safe_yaml.UnsafeYaml, match="limit is 100 bytes"):
        safe_yaml.load("a: " + "x" * 200, loader=loader, max_bytes=100)


@pytest.mark.parametrize("loader", LOADERS)
def test_nesting_at_the_limit_loads_and_syntax_errors_stay_syntax_errors(loader: type) -> None:
    assert safe_yaml.load("a: " + "[" * 23 + "1" + "]" * 23, loader=loader) is not None
    with pytest.raises(yaml.YAMLError):
        safe_yaml.load("a: [1, 2\nb: c: d", loader=loader)


def test_flow_parser_reports_deep_nesting_as_a_flow_error() -> None:
    with pytest.raises(FlowInvalid) as info:
        parse_flow_yaml("id: care.main\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested deeper than 24 levels" in str(info.value.errors[0])
