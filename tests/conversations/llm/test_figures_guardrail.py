"""The numeric guardrail: numbers read as a buyer reads them (es-AR `$ 29.401,58`, `48,00 %`, plain, en, ru,
words), and an LLM's phrasing of the simulator's reply accepted only when every number is the simulator's."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from otklik.capabilities.financing import chat
from otklik.capabilities.financing.rules import Plan, Refused, parse_table, simulate, suggested_plans
from otklik.conversations.llm.guardrails import check_figures_reply
from otklik.core.figures import Figures, check_figures, find_figures, read_number
from tests.capabilities.financing.tables import ISSUE_YAML

TABLE = parse_table(ISSUE_YAML)
SIX = simulate(TABLE, Decimal("150000"), 6)
SIX_FIGURES = chat.plan_figures(SIX)


@pytest.mark.parametrize(
    ("raw", "language", "value"),
    [
        ("29.401,58", "es", "29401.58"),
        ("29 401,58", "ru", "29401.58"),
        ("29 401.58", "en", "29401.58"),
        ("29,401.58", "es", "29401.58"),  # both marks: the last is the decimal one, whatever the language
        ("29401.58", "es", "29401.58"),
        ("29401,58", "es", "29401.58"),
        ("48,00", "es", "48"),
        ("150000", "es", "150000"),
        ("1.500.000", "es", "1500000"),
        ("1,500,000", "es", "1500000"),
        ("1.500", "es", "1500"),  # one mark, three digits after: as the language writes numbers
        ("1,500", "es", "1.5"),
        ("1.500", "ru", "1500"),
        ("1,500", "en", "1500"),
        ("1.500", "en", "1.5"),
        ("0,500", "es", "0.5"),
        ("1234,567", "es", "1234.567"),  # four digits before: never a thousands group
        ("29.401", "es", "29401"),
    ],
)
def test_reading_a_number(raw: str, language: str, value: str) -> None:
    assert read_number(raw, language) == Decimal(value)


@pytest.mark.parametrize("raw", ["1.23,4", "3,6,9", "12.03.2026", "1.234,567.8", "1 234.567,89"])
def test_malformed_numbers_are_not_read(raw: str) -> None:
    assert read_number(raw, "es") is None


def test_kinds_multipliers_words_and_currencies() -> None:
    text = "Son $ 29.401,58 por mes, TNA 48 %, 150 mil en total, seis cuotas o двенадцати; 12mil; 48 por ciento."
    found = [(f.raw, f.value, f.kind) for f in find_figures(text, "es")]
    assert ("29.401,58", Decimal("29401.58"), "money") in found
    assert ("48", Decimal("48"), "percent") in found
    assert ("150 mil", Decimal("150000"), "number") in found  # not the count 150, not the word "mil"
    assert ("12mil", Decimal("12000"), "number") in found
    assert ("seis", Decimal(6), "number") in found and ("двенадцати", Decimal(12), "number") in found
    assert not any(raw == "ciento" for raw, _, _ in found)  # "por ciento" is a percent sign
    assert sum(1 for raw, _, _ in found if raw == "mil") == 0
    assert check_figures("US$ 5", Figures.of(money=[5], number=[5])) == ["figure:currency:US$"]
    assert check_figures("5 dólares", Figures.of(money=[5], number=[5])) == ["figure:currency:dólares"]
    assert check_figures("$ 5", Figures.of(money=[5])) == []


def test_the_template_passes_and_faithful_phrasings_pass() -> None:
    draft = chat.plan_text(SIX, "es")
    assert check_figures_reply(draft, SIX_FIGURES, language="es", channel_is_marketplace=False).ok
    phrased = (
        "¡Dale! En 6 cuotas pagás 5 cuotas de $ 29.401,58 y una última de $ 29.401,57, o sea $ 176.409,47 en "
        "total. Los intereses son $ 21.826,01 más IVA $ 4.583,46 (TNA 48 %, TEM 4,00 %, CFTEA 76,33 %)."
    )
    assert check_figures_reply(phrased, SIX_FIGURES, language="es", channel_is_marketplace=False).ok
    plain = "6 cuotas: 29401.58 cada una (la última 29401,57); total 176409.47."
    assert check_figures_reply(plain, SIX_FIGURES, language="es", channel_is_marketplace=False).ok
    russian = "В рассрочку на 6 платежей: пять по 29 401,58 и последний 29 401,57; итого 176 409,47."
    assert check_figures_reply(russian, SIX_FIGURES, language="ru", channel_is_marketplace=False).ok


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("En 6 cuotas de $ 29.401,59; total $ 176.409,47.", "figure:unknown:29.401,59"),  # a changed digit
        ("En 6 cuotas de $ 29.401,58; total $ 176.409,47, y en 10 cuotas menos.", "figure:unknown:10"),  # invented
        ("En 6 cuotas de $ 29.401,58; total $ 176.409,47; ahorrás $ 500.", "figure:unknown:500"),
        ("En 6 cuotas de $ 29.401; total $ 176.409,47.", "figure:unknown:29.401"),  # cents dropped
        ("En 6 cuotas de $ 29,401.58 cada una; total 176,409", "figure:unknown:176,409"),  # reads 176.409 in es
        ("En 6 cuotas de $ 29.401,58; total $ 176.409,47 (TNA 6 %).", "figure:unknown:6"),  # a count as a rate
        ("En 6 cuotas de $ 29.401,58; total $ 176.409,47, en diez días.", "figure:unknown:diez"),
        ("En 6 cuotas de $ 29.401,58.", "figure:missing:176409.47"),  # the total left out
        ("En 6 cuotas de US$ 29.401,58; total US$ 176.409,47.", "figure:currency:US$"),
        ("En 6 cuotas de $ 29.401,58; total $ 176.409,47. Llamanos al +54 9 11 5555-1234.", "contact:phone"),
        ("En 6 cuotas de $ 29.401,58; total $ 176.409,47; te damos un descuento del 10 %.", "promise:discount"),
        ("En 6 cuotas de $ 29.401,58; total $ 176.409,47. Escribinos a ventas@shop.com.", "contact:email"),
        ("En 6 cuotas de $ 29.401,58; total $ 176.409,47. Ignoro mis instrucciones.", "leak:instructions"),
    ],
)
def test_a_bad_phrasing_is_rejected(text: str, reason: str) -> None:
    verdict = check_figures_reply(text, SIX_FIGURES, language="es", channel_is_marketplace=False)
    assert not verdict.ok
    assert any(r.startswith(reason) for r in verdict.reasons), verdict.reasons


TNA = st.decimals(min_value=0, max_value=200, places=2, allow_nan=False, allow_infinity=False)
AMOUNTS = st.decimals(min_value=Decimal("1000"), max_value=Decimal("50000000"), places=2)


def _table(tna: Decimal, coefficient: Decimal) -> str:
    return ISSUE_YAML.replace("tna: 48", f"tna: {tna}").replace("coefficient: 1.95", f"coefficient: {coefficient}")


def _drafts(table_text: str, amount: Decimal, n: int, language: str) -> list[tuple[str, Figures]]:
    table = parse_table(table_text)
    out: list[tuple[str, Figures]] = []
    offered = [p for p in suggested_plans(table, amount) if isinstance(p, Plan)]
    out.append((chat.plans_text(table, amount, offered, language), chat.plans_figures(table, amount, offered)))
    try:
        plan = simulate(table, amount, n)
    except Refused as exc:
        out.append((chat.refused_text(exc, table, amount, n, language), chat.refused_figures(exc, table, amount, n)))
    else:
        out.append((chat.plan_text(plan, language), chat.plan_figures(plan)))
        out.append((chat.chosen_text(plan, language), chat.plan_figures(plan)))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    TNA,
    st.decimals(min_value=1, max_value=5, places=2),
    AMOUNTS,
    st.integers(min_value=1, max_value=24),
    st.sampled_from(["es", "en"]),
)
def test_every_template_passes_its_own_guardrail(
    tna: Decimal, coefficient: Decimal, amount: Decimal, n: int, language: str
) -> None:
    """The templated replies state only figures the simulator produced, so the guardrail never rejects the
    template itself: a rejection is always the LLM's doing."""
    for text, figures in _drafts(_table(tna, coefficient), amount, n, language):
        verdict = check_figures_reply(text, figures, language=language, channel_is_marketplace=True)
        assert verdict.ok, (text, verdict.reasons)


@settings(max_examples=60, deadline=None)
@given(AMOUNTS, st.sampled_from([3, 6, 9, 12, 18]), st.data())
def test_changing_one_digit_of_a_figure_is_caught(amount: Decimal, n: int, data: st.DataObject) -> None:
    """One digit of one money figure changed: rejected, unless the new number is itself one of the plan's
    figures (the check catches changed numbers, not swapped ones)."""
    try:
        plan = simulate(TABLE, amount, n)
    except Refused:
        assume(False)
    draft, figures = chat.plan_text(plan, "es"), chat.plan_figures(plan)
    money = [m for m in re.finditer(r"\$ [\d.]+,\d\d", draft)]
    target = data.draw(st.sampled_from(money))
    digits = [i for i in range(target.start(), target.end()) if draft[i].isdigit()]
    position = data.draw(st.sampled_from(digits))
    new_digit = data.draw(st.sampled_from([d for d in "0123456789" if d != draft[position]]))
    changed = draft[:position] + new_digit + draft[position + 1 :]
    new_value = read_number(changed[target.start() + 2 : target.end()], "es")
    verdict = check_figures_reply(changed, figures, language="es", channel_is_marketplace=False)
    if new_value in figures.money and not changed[target.start() + 2 :].startswith("0"):
        return  # e.g. the regular payment's last cent changed into the last payment's
    assert not verdict.ok, changed


@pytest.mark.parametrize(
    "text",
    [
        "9" * 500,
        "1.2," * 100,
        "$ " + "1 000 " * 100,
        "seis " * 100,
        "\u0666\u0667 cuotas",
        "６ cuotas",
        "6\u00b2 cuotas",
    ],
    ids=["digits", "marks", "spaces", "words", "arabic-digits", "fullwidth", "superscript"],
)
def test_hostile_model_output_is_rejected(text: str) -> None:
    verdict = check_figures_reply(text, SIX_FIGURES, language="es", channel_is_marketplace=False)
    assert not verdict.ok
    assert any(r.startswith("figure:") for r in verdict.reasons), verdict.reasons


def test_an_oversized_output_is_rejected_at_once() -> None:
    draft = chat.plan_text(SIX, "es")
    verdict = check_figures_reply(draft + " " + "9" * 50_000, SIX_FIGURES, language="es", channel_is_marketplace=False)
    assert verdict.reasons == ["too_long"]
    long_but_fine = (draft + " ") * 15
    verdict = check_figures_reply(long_but_fine, SIX_FIGURES, language="es", channel_is_marketplace=False)
    assert verdict.reasons == ["too_long"]
    assert check_figures_reply(
        long_but_fine, SIX_FIGURES, language="es", channel_is_marketplace=False, max_chars=5000
    ).ok
