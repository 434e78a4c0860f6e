"""`core.cells.formula_safe`: the one rule every export follows (CSV, XLSX, the sales PDFs)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otklik.core.cells import FORMULA_STARTS, formula_safe


@given(st.text(max_size=40), st.booleans())
def test_no_cell_starts_a_formula_and_the_rule_is_idempotent(text: str, phones: bool) -> None:
    safe = formula_safe(text, phones=phones)
    assert formula_safe(safe, phones=phones) == safe
    assert safe in (text, "'" + text)
    if not (phones and safe == text and text[1:].isdigit()):
        assert not safe.startswith(FORMULA_STARTS)


def test_formulas_are_quoted_plain_text_is_not() -> None:
    assert formula_safe('=HYPERLINK("http://x","click")') == '\'=HYPERLINK("http://x","click")'
    assert formula_safe("@SUM(A1)") == "'@SUM(A1)"
    assert formula_safe("-1+2") == "'-1+2"
    assert formula_safe("\tcmd") == "'\tcmd"
    assert formula_safe("Cámara 4 MP = buena") == "Cámara 4 MP = buena"
    assert formula_safe(None) == "" and formula_safe(42) == "42"


def test_a_phone_number_stays_a_number_only_when_asked_and_only_a_whole_one() -> None:
    assert formula_safe("+79991234567", phones=True) == "+79991234567"
    assert formula_safe("+79991234567") == "'+79991234567"
    assert formula_safe("+7=cmd|' /C calc'!A0", phones=True) == "'+7=cmd|' /C calc'!A0"
    assert formula_safe("+7 999 123", phones=True) == "'+7 999 123"
