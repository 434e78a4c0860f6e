"""`otklik catalog import|search` through Typer's runner, against a SQLite file in a temp directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from otklik.capabilities.sales import cli
from otklik.cli.main import app
from tests.capabilities.sales.catalog import CATALOG_CSV

runner = CliRunner()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for key in ("OTKLIK_DATABASE_URL", "OTKLIK_DATA_DIR", "OTKLIK_ENV"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")
    (tmp_path / "lista.csv").write_bytes(CATALOG_CSV.encode("latin-1"))
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["catalog", *args])
    return result.exit_code, result.output


def test_import_dry_run_then_for_real(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = _run("import", "lista.csv", "--dry-run")
    assert code == 0 and "25 added" in out and "dry run" in out
    monkeypatch.setattr(cli, "PROGRESS_FROM", 5)  # the bar's path
    code, out = _run("import", "lista.csv")
    assert code == 0 and "25 added" in out, out
    code, out = _run("import", "lista.csv", "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 25


def test_import_errors_exit_2(here: Path) -> None:
    (here / "bad.csv").write_text("sku,name,price\nA,B,x\n", encoding="utf-8")
    code, out = _run("import", "bad.csv")
    assert code == 2 and "line 1, stock: missing column" in out and "nothing imported" in out
    code, out = _run("import", "bad.csv", "--json")
    assert code == 2 and {"line": 1, "column": "stock", "message": "missing column"} in json.loads(out)["errors"]
    (here / "fake.xlsx").write_text("hola", encoding="utf-8")
    code, out = _run("import", "fake.xlsx")
    assert code == 2 and "not a zip" in out
    code, out = _run("import", "nowhere.csv", "--json")
    assert code == 2 and json.loads(out)["error"] == "file"


def test_search_json_and_table(here: Path) -> None:
    assert _run("import", "lista.csv")[0] == 0
    code, out = _run("search", "¿qué NVR de 16 canales hay?", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert [h["sku"] for h in data["hits"]] == ["NVR4216-4KS2", "DS-7616NI-Q2"]
    first, gone = data["hits"]
    assert first["price"] == "276000.00" and first["stock"] == 5 and "16 canales" in first["why"]
    assert first["score"] > gone["score"] and "alternatives" not in first
    assert gone["alternatives"] == [
        {
            "sku": "NVR4216-4KS2",
            "name": "NVR 16 canales 4K",
            "price": "276000.00",
            "stock": 5,
            "reason": "mismos canales, misma tecnología, mismo tipo",
        }
    ]
    code, out = _run("search", "ds2cd1043", "--json")
    assert json.loads(out)["hits"][0]["alternatives"][0]["reason"].startswith("misma resolución")
    code, out = _run("search", "disco de 2 teras")
    assert code == 0 and "ST2000VX015" in out and "WD20PURZ sin stock → ST2000VX015" in out
    code, out = _run("search", "hola", "--json")
    assert code == 0 and json.loads(out)["hits"] == []
    code, out = _run("search", "hola")
    assert code == 0 and "nothing found" in out
    code, _ = _run("search", "domo", "--limit", "0")
    assert code == 2


def test_seller_letterhead_set_shown_and_refused(here: Path) -> None:
    code, out = _run("seller", "--name", "MICROCOM S.A.", "--cuit", "30 71234567 1", "--address", "Av. Corrientes 1234",
                     "--instructions", "Transferencia\\nCBU 0000003100012345678901")  # fmt: skip
    assert code == 0, out
    assert "seller_name: MICROCOM S.A." in out and "seller_cuit: 30-71234567-1" in out
    assert "payment_instructions: Transferencia\nCBU 0000003100012345678901" in out
    assert "invoice_series: FC" in out
    for args, problem in (
        (("--cuit", "30-71234567-2"), "not a valid CUIT"),
        (("--name", "x" * 201), "at most 200"),
        (("--name", "a\x1bb"), "printable"),
        (("--invoice-series", "ZZ"), "no series named 'ZZ'"),
    ):
        code, out = _run("seller", *args)
        assert code == 2 and problem in out, (args, out)
    code, out = _run("seller")
    assert code == 0 and "seller_name: MICROCOM S.A." in out and "seller_cuit: 30-71234567-1" in out


# --- `otklik catalog sync …` ---------------------------------------------------------------------------------


def _seller(path: Path, price: str) -> str:
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE IF NOT EXISTS art (codigo TEXT, nombre TEXT, precio TEXT, stock INTEGER)")
    con.execute("DELETE FROM art")
    con.executemany(
        "INSERT INTO art VALUES (?,?,?,?)", [("A-1", "Cámara uno", price, 3), ("A-2", "Cámara dos", "10", 0)]
    )
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _prices() -> dict[str, str]:
    from sqlalchemy import select

    from otklik.capabilities.sales.models import products
    from tests.fixtures.cli import in_db

    async def read(otk: Any) -> dict[str, str]:
        async with otk.db.read() as session:
            return {r.sku: f"{r.price:.2f}" for r in (await session.execute(select(products.c.sku, products.c.price)))}

    return dict(in_db(read))


def test_sync_add_sql_run_list_history(here: Path) -> None:
    url = _seller(here / "erp.db", "1500,50")
    query = "SELECT codigo, nombre, precio, stock, '' AS brand, '' AS category, '' AS description, '' AS attributes FROM art"
    code, out = _run("sync", "add-sql", "erp", url, query, "--every", "5", "--map", "codigo=sku", "--map",
                     "nombre=name", "--map", "precio=price")  # fmt: skip
    assert code == 0 and "added (sql, every 5 min)" in out, out
    code, out = _run("sync", "run", "erp")
    assert code == 0 and "2 rows: 2 added, 0 changed, 0 deactivated" in out, out
    _seller(here / "erp.db", "-3")
    code, out = _run("sync", "run", "erp", "--json")
    data = json.loads(out)
    assert code == 2 and data["status"] == "failed" and "row 1, price: must be greater than 0" in data["error"]
    code, out = _run("sync", "list", "--json")
    (source,) = json.loads(out)["sources"]
    assert code == 0 and source["last_status"] == "failed" and source["every_minutes"] == 5
    code, out = _run("sync", "history", "erp", "--json")
    runs = json.loads(out)["runs"]
    assert [(r["status"], r["added"]) for r in runs] == [("failed", 0), ("ok", 2)]
    assert _prices() == {"A-1": "1500.50", "A-2": "10.00"}  # the failed run changed nothing
    code, out = _run("sync", "list")
    assert code == 0 and "erp (sql, every 5 min)" in out and "error: 1 invalid rows" in out


def test_sync_hostile_input_exits_2(here: Path) -> None:
    url = _seller(here / "erp.db", "10")
    for args, expected in [
        (("add-sql", "erp", url, "SELECT * FROM art; DROP TABLE art"), "one statement only"),
        (("add-sql", "erp", url, "DELETE FROM art"), "only a SELECT"),
        (("add-sql", "erp", url, "SELECT 1", "--map", "x=price_usd"), "not a column"),
        (("add-sql", "erp", "mysql+aiomysql://u:p@h/db", "SELECT 1"), "not installed"),
        (("add-json", "erp", "file:///etc/passwd"), "http"),
        (("add-json", "erp", "https://h/x", "--every", "0"), "every"),
        (("run", "nope"), "no sync source"),
        (("history", "nope"), "no sync source"),
        (("remove", "nope"), "no sync source"),
    ]:
        code, out = _run("sync", *args)
        assert code == 2 and expected in out, (args, out)
    assert "sources" in _run("sync", "list", "--json")[1] and json.loads(_run("sync", "list", "--json")[1]) == {
        "sources": []
    }


def test_sync_add_json_masks_the_token(here: Path) -> None:
    code, out = _run("sync", "add-json", "shop", "https://erp.example/api/products", "--token", "tok-123",
                     "--paging", "page", "--per-page", "50", "--replace")  # fmt: skip
    assert code == 0, out
    code, out = _run("sync", "list", "--json")
    (source,) = json.loads(out)["sources"]
    assert source["token"] == "***" and "tok-123" not in out and source["options"]["per_page"] == 50
    assert source["replace"] is True
    assert _run("sync", "remove", "shop")[0] == 0 and json.loads(_run("sync", "list", "--json")[1])["sources"] == []
