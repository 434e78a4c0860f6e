"""The simulator's rules (issue 17): the worked examples, each refusal, the rates table's validation."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from otklik.capabilities.financing.rules import (
    Band,
    RatesInvalid,
    RatesTable,
    Refused,
    dump_table,
    format_money,
    parse_table,
    simulate,
    suggested_plans,
)
from tests.capabilities.financing.tables import ISSUE_JSON, ISSUE_YAML

TABLE = parse_table(ISSUE_YAML)


def test_yaml_and_json_give_the_same_table() -> None:
    assert parse_table(ISSUE_JSON) == TABLE
    assert TABLE.plans[2] == Band(7, 12, tna=D("62.5"))
    assert TABLE.plans[3] == Band(18, 18, coefficient=D("1.95"))
    assert all(
        isinstance(b.tna if b.tna is not None else b.coefficient, D) for b in TABLE.plans
    )  # no float on the way in


def test_export_reads_back_to_the_same_table() -> None:
    assert parse_table(dump_table(TABLE)) == TABLE
    assert parse_table(dump_table(TABLE, "json")) == TABLE
    assert '"tna": 62.5' in dump_table(TABLE, "json")


def test_150000_in_6_with_tna_48_and_iva_on_interest() -> None:
    plan = simulate(TABLE, "150000.00", 6)
    out = plan.to_json()
    assert [r["payment"] for r in out["schedule"]] == ["29401.58"] * 5 + ["29401.57"]
    assert (out["installment"], out["last_installment"]) == ("29401.58", "29401.57")
    assert (out["total"], out["interest"], out["iva"]) == ("176409.47", "21826.01", "4583.46")
    assert (out["tna"], out["tem"], out["tea"], out["cftea"]) == ("48.00", "4.00", "60.10", "76.33")
    assert out["schedule"][0] == {
        "n": 1, "payment": "29401.58", "interest": "6000.00", "iva": "1260.00",
        "principal": "22141.58", "balance": "127858.42",
    }  # fmt: skip
    assert out["schedule"][-1]["balance"] == "0.00"
    assert (out["amount"], out["down_payment"], out["financed"], out["installments"]) == (
        "150000.00", "0.00", "150000.00", 6,
    )  # fmt: skip


def test_100000_in_3_without_interest() -> None:
    plan = simulate(TABLE, D("100000.00"), 3)
    assert [r.payment for r in plan.schedule] == [D("33333.33"), D("33333.33"), D("33333.34")]
    assert plan.total == D("100000.00") and plan.interest == 0 and plan.iva == 0
    assert plan.to_json()["tna"] == "0.00" and plan.to_json()["cftea"] == "0.00"


def test_99999_99_in_18_by_coefficient() -> None:
    plan = simulate(TABLE, "99999.99", 18)
    assert plan.total == D("194999.98")
    assert [r.payment for r in plan.schedule] == [D("10833.33")] * 17 + [D("10833.37")]
    out = plan.to_json()
    assert out["schedule"][0] == {"n": 1, "payment": "10833.33"}
    assert (out["tna"], out["tem"], out["tea"], out["cftea"]) == (None, None, None, None)
    assert (out["interest"], out["iva"]) == ("94999.99", "0.00")


def test_down_payment_reduces_the_financed_amount() -> None:
    plan = simulate(TABLE, "200000", 6, down_payment="50000")
    assert plan.financed == D("150000") and plan.installment == D("29401.58")
    assert plan.to_json()["down_payment"] == "50000.00"


def test_a_single_installment_with_interest_is_the_financed_amount_plus_one_month() -> None:
    table = parse_table(ISSUE_YAML.replace("{from: 1, to: 3, tna: 0}", "{from: 1, to: 3, tna: 12}"))
    plan = simulate(table, "1000.00", 1)  # i = 1 %, interest 10.00, IVA 2.10
    assert plan.installment == plan.last_installment == plan.total == D("1012.10")
    assert (plan.interest, plan.iva) == (D("10.00"), D("2.10"))


def test_rounding_is_half_up_to_the_cent() -> None:
    table = RatesTable("ARS", D(0), 12, D(0), (), (Band(1, 12, tna=D(0)),))
    # 0.10 / 4 = 0.025 -> 0.03 half up (0.02 half even), the last pays the rest
    plan = simulate(table, "0.10", 4)
    assert [r.payment for r in plan.schedule] == [D("0.03"), D("0.03"), D("0.03"), D("0.01")]
    coef = RatesTable("ARS", D(0), 12, D(0), (), (Band(1, 12, coefficient=D("1.5")),))
    assert simulate(coef, "0.05", 1).total == D("0.08")  # 0.075 -> 0.08


@pytest.mark.parametrize(
    ("amount", "n", "down", "code", "names"),
    [
        ("0", 3, "0", "amount", "greater than 0"),
        ("-5", 3, "0", "amount", "greater than 0"),
        ("abc", 3, "0", "amount", "number"),
        ("10.001", 3, "0", "amount", "two decimals"),
        ("100000", 3, "-1", "down_payment", "negative"),
        ("100000", 3, "100000", "down_payment", "less than the amount (100000.00)"),
        ("100000", 0, "0", "installments", "at least 1"),
        ("100000", 19, "0", "installments", "at most 18"),
        ("100000", 15, "0", "installments", "1-12, 18"),
        ("100000", "2.5", "0", "installments", "whole number"),
        ("5000", 12, "0", "min_installment", "1000.00"),
    ],
)
def test_refusals(amount: str, n: object, down: str, code: str, names: str) -> None:
    with pytest.raises(Refused) as caught:
        simulate(TABLE, amount, n, down)
    assert caught.value.code == code
    assert names in caught.value.user_message
    assert caught.value.to_json() == {"error": code, "message": caught.value.user_message}


def test_min_installment_names_the_largest_count_that_passes() -> None:
    with pytest.raises(Refused) as caught:
        simulate(TABLE, "5000", 12)
    # 5 in 4-6 at 48 %: 1 154.96 a month passes; 6 gives 980.09 < 1 000
    assert caught.value.largest == 5 and "is 5" in caught.value.user_message
    assert simulate(TABLE, "5000", 5).last_installment >= 1000
    with pytest.raises(Refused) as none:
        simulate(TABLE, "900", 1)
    assert none.value.code == "min_installment" and none.value.largest is None
    assert "no plan" in none.value.user_message


def test_the_last_payment_counts_for_the_minimum() -> None:
    table = RatesTable("ARS", D(0), 12, D("10.00"), (), (Band(1, 12, coefficient=D("1")),))
    # 100.00 in 11: 10 × 9.09 would pass, the 11th pays 9.10 -> refused? no: 9.09 < 10 already
    with pytest.raises(Refused) as caught:
        simulate(table, "100.00", 11)
    assert caught.value.largest == 10
    assert simulate(table, "100.00", 10).last_installment == D("10.00")


def test_suggested_plans_keep_the_tables_order_and_refuse_one_by_one() -> None:
    plans = suggested_plans(TABLE, "5000")
    assert [type(p).__name__ for p in plans] == ["Plan", "Refused", "Refused", "Refused"]
    with pytest.raises(Refused):
        suggested_plans(TABLE, "0")


def test_es_ar_money() -> None:
    assert format_money(D("29401.58")) == "$ 29.401,58"
    assert format_money(D("1000")) == "$ 1.000,00"
    assert format_money(D("0.5")) == "$ 0,50"
    assert format_money(D("1234567.891")) == "$ 1.234.567,89"


# --- the rates table ---------------------------------------------------------------------------------


def _errors(text: str) -> tuple[str, ...]:
    with pytest.raises(RatesInvalid) as caught:
        parse_table(text)
    return caught.value.errors


def test_every_error_is_listed_at_once() -> None:
    errors = _errors(
        """\
iva_on_interest: -21
max_installments: 12
min_installment: mil
suggested: [3, 6, 13, 15]
plans:
  - {from: 1, to: 3, tna: -5}
  - {from: 3, to: 6, tna: 48}
  - {from: 7, to: 12, coefficient: 0.95}
  - {from: 13, to: 18, coefficient: 1.95}
  - {from: 9, to: 9}
"""
    )
    text = "\n".join(errors)
    for expected in [
        "currency: missing",
        "iva_on_interest: cannot be negative",
        "min_installment: must be a number, not 'mil'",
        "suggested[2]: 13 is outside 1-12",
        "plans[0].tna: cannot be negative",
        "plans[2].coefficient: must be at least 1",
        "plans[3]: to (18) is beyond max_installments (12)",
        "plans[4]: give exactly one of tna or coefficient",
        "the bands 1-3 and 3-6 overlap",
    ]:
        assert expected in text, (expected, errors)


def test_json_is_checked_the_same_way() -> None:
    errors = _errors('{"currency": "ARS", "iva_on_interest": "21", "max_installments": 18.5, "min_installment": 0,'
                     ' "suggested": [3], "plans": [{"from": 1, "to": 3, "tna": NaN}]}')  # fmt: skip
    text = "\n".join(errors)
    assert "iva_on_interest: must be a number, not '21'" in text
    assert "max_installments: must be a whole number" in text
    assert "plans[0].tna: must be a number" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("currency: ARS\nplans: [\n", "YAML syntax error"),
        ('{"currency": ', "JSON syntax error"),
        ("a: &x 1\nb: *x\n", "aliases"),
        ("a: " + "[" * 50 + "]" * 50 + "\n", "nested deeper"),
        ("[" * 5000 + "]" * 5000, "nested deeper"),
        ("a: 1\x00\n", "control character"),
        ("a: " + "x" * 70_000, "limit"),
        ("currency: ARS\nplans: .inf\n", "plans: must be a non-empty list"),
        (ISSUE_YAML.replace("tna: 48", "tna: .nan"), "plans[1].tna: must be a number, not '.nan'"),
        (ISSUE_YAML.replace("tna: 48", "tna: 48, cuotas: 2"), "plans[1].cuotas: unknown key"),
        (ISSUE_YAML.replace("[3, 6, 9, 12]", "[3, 6, 9, 15]"), "suggested[3]: 15 is in no band"),
        (ISSUE_YAML.replace("[3, 6, 9, 12]", "[3, 3]"), "listed twice"),
        (ISSUE_YAML.replace("currency: ARS", "currency: pesos"), "three-letter"),
        (ISSUE_YAML.replace("{from: 1, to: 3", "{from: 3, to: 1"), "from (3) is greater than to (1)"),
        (ISSUE_YAML.replace("max_installments: 18", "max_installments: 1000"), "between 1 and 120"),
        (ISSUE_YAML.replace("tna: 48", "tna: 1.0e+400"), "plans[1].tna: must be at most 1000"),
        (ISSUE_YAML.replace("tna: 48", "tna: true"), "plans[1].tna: must be a number, not True"),
        (ISSUE_YAML + "extra: 1\n", "extra: unknown key"),
    ],
)
def test_bad_tables(text: str, expected: str) -> None:
    assert any(expected in e for e in _errors(text)), _errors(text)


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(RatesInvalid, match="UTF-8"):
        parse_table(b"\xff\xfe\x00")


def test_every_overlap_is_named_not_only_neighbours() -> None:
    text = ISSUE_YAML.split("plans:")[0].replace("[3, 6, 9, 12]", "[3]") + (
        "plans:\n  - {from: 1, to: 10, tna: 0}\n  - {from: 2, to: 3, tna: 1}\n  - {from: 4, to: 5, tna: 2}\n"
    )
    overlaps = [e for e in _errors(text) if "overlap" in e]
    assert len(overlaps) == 2 and "1-10 and 4-5" in overlaps[1], overlaps
