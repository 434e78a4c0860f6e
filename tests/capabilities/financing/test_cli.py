"""`otklik financing simulate|plans` through Typer's runner: JSON shape, refusals, bad arguments, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otklik.cli.main import app
from tests.capabilities.financing.tables import ISSUE_JSON, ISSUE_YAML

runner = CliRunner()


@pytest.fixture
def rates(tmp_path: Path) -> Path:
    path = tmp_path / "rates.yaml"
    path.write_text(ISSUE_YAML, encoding="utf-8")
    return path


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["financing", *args])
    return result.exit_code, result.output


def test_simulate_json_has_the_issues_shape(rates: Path) -> None:
    code, out = _run("simulate", "--rates", str(rates), "--amount", "150000.00", "--installments", "6", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert list(data) == [
        "amount", "down_payment", "financed", "installments", "installment", "last_installment", "total",
        "interest", "iva", "tna", "tem", "tea", "cftea", "schedule",
    ]  # fmt: skip
    assert (data["installment"], data["last_installment"], data["total"]) == ("29401.58", "29401.57", "176409.47")
    assert data["schedule"][0] == {
        "n": 1, "payment": "29401.58", "interest": "6000.00", "iva": "1260.00",
        "principal": "22141.58", "balance": "127858.42",
    }  # fmt: skip
    assert data["installments"] == 6 and data["cftea"] == "76.33"


def test_a_json_rates_file_and_a_down_payment(tmp_path: Path) -> None:
    path = tmp_path / "rates.json"
    path.write_text(ISSUE_JSON, encoding="utf-8")
    code, out = _run("simulate", "--rates", str(path), "--amount", "149999.99", "--installments", "18",
                     "--down-payment", "49999.99", "--json")  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    assert (data["financed"], data["total"], data["tna"]) == ("100000.00", "195000.00", None)
    assert data["schedule"][-1] == {"n": 18, "payment": "10833.39"}


def test_simulate_as_a_table(rates: Path) -> None:
    code, out = _run("simulate", "--rates", str(rates), "--amount", "150000", "--installments", "6")
    assert code == 0, out
    assert "29401.57" in out and "127858.42" in out and "76.33" in out


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--amount", "0", "--installments", "3"), "amount"),
        (("--amount", "1e9999", "--installments", "3"), "amount"),
        (("--amount", "ciento", "--installments", "3"), "amount"),
        (("--amount", "100", "--installments", "3", "--down-payment", "100"), "down_payment"),
        (("--amount", "100", "--installments", "3", "--down-payment", "-1"), "down_payment"),
        (("--amount", "100000", "--installments", "0"), "installments"),
        (("--amount", "100000", "--installments", "15"), "installments"),
        (("--amount", "100000", "--installments", "seis"), "installments"),
        (("--amount", "5000", "--installments", "12"), "min_installment"),
    ],
)
def test_refusals_exit_2_with_the_code(rates: Path, args: tuple[str, ...], code: str) -> None:
    status, out = _run("simulate", "--rates", str(rates), *args, "--json")
    assert status == 2
    data = json.loads(out)
    assert data["error"] == code and data["message"]
    status, out = _run("simulate", "--rates", str(rates), *args)
    assert status == 2 and f"refused ({code})" in out


def test_missing_arguments_are_usage_errors(rates: Path) -> None:
    status, out = _run("simulate", "--rates", str(rates), "--amount", "100")
    assert status == 2 and "--installments" in out
    status, _ = _run("plans", "--amount", "100")
    assert status == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("currency: ARS\n", "iva_on_interest: missing"),
        (ISSUE_YAML.replace("{from: 4, to: 6", "{from: 3, to: 6"), "overlap"),
        (ISSUE_YAML.replace("tna: 48", "tna: -48"), "cannot be negative"),
        (ISSUE_YAML.replace("coefficient: 1.95", "coefficient: 0.95"), "at least 1"),
        (ISSUE_YAML.replace("tna: 48", "tna: cuarenta"), "must be a number, not 'cuarenta'"),
        ("a: [" * 40 + "]" * 40, "nested deeper"),
    ],
)
def test_bad_rates_files_list_every_error(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    status, out = _run("simulate", "--rates", str(path), "--amount", "100", "--installments", "3", "--json")
    assert status == 2
    data = json.loads(out)
    assert data["error"] == "rates" and any(expected in e for e in data["errors"]), data
    status, out = _run("plans", "--rates", str(path), "--amount", "100")
    assert status == 2 and expected in out


def test_unreadable_files(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.yaml", tmp_path):
        status, out = _run("simulate", "--rates", str(path), "--amount", "1", "--installments", "1", "--json")
        assert status == 2 and json.loads(out)["error"] == "rates"
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 200_000)
    status, out = _run("plans", "--rates", str(big), "--amount", "1", "--json")
    assert status == 2 and "larger than" in json.loads(out)["message"]
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    status, out = _run("plans", "--rates", str(binary), "--amount", "1", "--json")
    assert status == 2 and json.loads(out)["error"] == "rates"


def test_plans_side_by_side(rates: Path) -> None:
    status, out = _run("plans", "--rates", str(rates), "--amount", "150000", "--json")
    assert status == 0, out
    plans = json.loads(out)["plans"]
    assert [p["installments"] for p in plans] == [3, 6, 9, 12]
    assert [p["installment"] for p in plans] == ["50000.00", "29401.58", "22344.18", "18189.04"]
    status, out = _run("plans", "--rates", str(rates), "--amount", "150000")
    assert status == 0 and "12 cuotas" in out and "218268.49" in out


def test_plans_show_which_counts_are_refused(rates: Path) -> None:
    status, out = _run("plans", "--rates", str(rates), "--amount", "5000", "--json")
    assert status == 0
    plans = json.loads(out)["plans"]
    assert plans[0]["installments"] == 3 and plans[0]["total"] == "5000.00"
    assert plans[1] == {"installments": 6, "error": "min_installment", "message": plans[1]["message"]}
    status, out = _run("plans", "--rates", str(rates), "--amount", "-1", "--json")
    assert status == 2 and json.loads(out)["error"] == "amount"


def test_tables_in_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`import` validates first (a bad file touches nothing), `export` gives the text back, `tables` lists."""
    monkeypatch.chdir(tmp_path)
    for key in ("OTKLIK_DATABASE_URL", "OTKLIK_DATA_DIR", "OTKLIK_ENV"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")
    good = tmp_path / "visa.yaml"
    good.write_text(ISSUE_YAML, encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text('{"currency": "ARS"}', encoding="utf-8")

    status, out = _run("import", "--name", "visa", str(bad))
    assert status == 2 and "iva_on_interest: missing" in out
    status, out = _run("tables")
    assert status == 0 and out.strip() == ""
    status, out = _run("import", "--name", "visa", str(good))
    assert status == 0 and "version 1" in out
    status, out = _run("import", "--name", "visa", str(good))
    assert status == 2 and "nothing to save" in out
    status, out = _run("export", "--name", "visa")
    assert status == 0 and out == ISSUE_YAML
    status, out = _run("export", "--name", "visa", "--json")
    assert status == 0 and json.loads(out)["plans"][3] == {"from": 18, "to": 18, "coefficient": 1.95}
    status, out = _run("import", "--name", "amex", str(good), "--default")
    assert status == 0
    status, out = _run("tables")
    assert out.splitlines() == ["amex\tversion 1\tdefault", "visa\tversion 1"]
    status, out = _run("export", "--name", "nope")
    assert status == 2 and "no rates table" in out
