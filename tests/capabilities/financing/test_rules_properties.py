"""Properties of the rules (hypothesis), over realistic tables and any amount up to the maximum.

The issue states |last − regular| ≤ n cents. That holds exactly for coefficient plans and plans without
interest (only the payment's rounding, ≤ half a cent a month, moves to the last). With interest, each row's
rounding of the interest and of its IVA also moves the balance, and the drift compounds at the payment rate
j: the bound the rules guarantee is 0.005·(3 + v)·((1 + j)^n − 1)/j. It is usually well under n cents, but
not always — `test_the_drift_can_exceed_n_cents` keeps a real case, so the rules win over the rule of thumb.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, localcontext

from hypothesis import example, given, settings
from hypothesis import strategies as st

from otklik.capabilities.financing.rules import MAX_AMOUNT, Band, RatesTable, simulate

CENT = Decimal("0.01")
amounts = st.integers(
    min_value=1_000,  # 10.00: at least 27 cents a month in 36
    max_value=int(MAX_AMOUNT * 100),
).map(lambda c: Decimal(c) / 100)
tnas = st.integers(min_value=0, max_value=15_000).map(lambda c: Decimal(c) / 100)  # 0–150 % a year
ivas = st.sampled_from([Decimal(0), Decimal("10.5"), Decimal(21), Decimal(27)])
coefficients = st.integers(min_value=100, max_value=400).map(lambda c: Decimal(c) / 100)
counts = st.integers(min_value=1, max_value=36)


def _tna_table(tna: Decimal, iva: Decimal) -> RatesTable:
    return RatesTable("ARS", iva, 36, Decimal(0), (), (Band(1, 36, tna=tna),))


def _coef_table(c: Decimal) -> RatesTable:
    return RatesTable("ARS", Decimal(21), 36, Decimal(0), (), (Band(1, 36, coefficient=c),))


def _drift_bound(tna: Decimal, iva: Decimal, n: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        i = tna / 1200
        v = iva / 100
        j = i * (1 + v)
        if j == 0:
            return n * Decimal("0.005")
        return (Decimal("0.005") * (3 + v) * ((1 + j) ** n - 1) / j).quantize(CENT, rounding=ROUND_CEILING)


@settings(max_examples=300, deadline=None)
@given(amounts, tnas, ivas, counts)
@example(Decimal("10"), Decimal("146.41"), Decimal("27"), 32)  # the cents' drift made the last payment -0.55
def test_tna_plans(amount: Decimal, tna: Decimal, iva: Decimal, n: int) -> None:
    plan = simulate(_tna_table(tna, iva), amount, n)
    rows = plan.schedule
    assert len(rows) == n
    assert sum(r.principal for r in rows) == plan.financed == amount  # Σ principal = F
    assert rows[-1].balance == 0
    assert {r.payment for r in rows[:-1]} <= {plan.installment}  # regular payments are equal
    assert all(r.payment == r.principal + r.interest + r.iva for r in rows)
    assert plan.total == sum(r.payment for r in rows) == plan.financed + plan.interest + plan.iva
    assert all(r.payment.as_tuple().exponent >= -2 for r in rows)  # whole cents
    assert abs(plan.last_installment - plan.installment) <= _drift_bound(tna, iva, n)
    if tna == 0:
        assert abs(plan.last_installment - plan.installment) <= n * CENT
        assert plan.total == amount


@settings(max_examples=200, deadline=None)
@given(amounts, coefficients, counts)
def test_coefficient_plans(amount: Decimal, c: Decimal, n: int) -> None:
    plan = simulate(_coef_table(c), amount, n)
    payments = [r.payment for r in plan.schedule]
    assert sum(payments) == plan.total
    assert plan.total - plan.interest == amount
    assert set(payments[:-1]) <= {plan.installment}
    assert abs(plan.last_installment - plan.installment) <= n * CENT
    assert plan.iva == 0 and plan.tna is None and plan.cftea is None


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1_000_000, max_value=int(MAX_AMOUNT * 100)).map(lambda c: Decimal(c) / 100),
    tnas,
    st.integers(min_value=100, max_value=5_000).map(lambda c: Decimal(c) / 100),
    ivas,
    counts,
)
def test_total_grows_with_the_rate(amount: Decimal, tna: Decimal, more: Decimal, iva: Decimal, n: int) -> None:
    """A higher rate never costs less (rates at least 1 point apart on at least 10 000.00, so the rounding
    drift of a few cents cannot hide the difference)."""
    low = simulate(_tna_table(tna, iva), amount, n)
    high = simulate(_tna_table(tna + more, iva), amount, n)
    assert high.total >= low.total
    assert high.installment >= low.installment
    if n > 1:
        assert high.total > low.total


@settings(max_examples=100, deadline=None)
@given(amounts, coefficients, st.integers(min_value=0, max_value=300).map(lambda c: Decimal(c) / 100), counts)
def test_total_grows_with_the_coefficient(amount: Decimal, c: Decimal, more: Decimal, n: int) -> None:
    assert simulate(_coef_table(c + more), amount, n).total >= simulate(_coef_table(c), amount, n).total


def test_payments_below_one_cent_are_refused_even_without_a_minimum() -> None:
    """1.00 in 18: 17 × 0.06 = 1.02 would leave a last payment of −0.02."""
    import pytest

    from otklik.capabilities.financing.rules import Refused

    with pytest.raises(Refused) as caught:
        simulate(_coef_table(Decimal(1)), Decimal(1), 18)
    assert caught.value.code == "min_installment" and "0.01" in caught.value.user_message


def test_the_drift_can_exceed_n_cents() -> None:
    """A case where the rules themselves put 7 cents between the last and the regular payment in 6."""
    plan = simulate(_tna_table(Decimal("23.82"), Decimal(21)), Decimal("665430494.98"), 6)
    assert plan.last_installment - plan.installment == Decimal("0.07")
    assert plan.schedule[-1].balance == 0
