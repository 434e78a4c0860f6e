"""Catalog import: the fixture price list, upserts, replace, dry run, and hostile files (every error with its
line and column, nothing half-imported)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.capabilities.sales import CAPABILITY, importer
from otklik.capabilities.sales.importer import CatalogFileError, import_catalog, read_csv_bytes, read_file
from otklik.capabilities.sales.models import products
from otklik.platform.plugins import folder
from tests.capabilities.sales.catalog import CATALOG_CSV

HEADER = "sku,name,brand,category,price,currency,stock,description,attributes\n"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    assert CAPABILITY.migrations is not None
    await upgrade(database, locations=[folder(CAPABILITY.migrations)])
    try:
        yield database
    finally:
        await database.dispose()


async def rows(db: Database) -> dict[str, dict[str, Any]]:
    async with db.read() as session:
        return {r["sku"]: dict(r) for r in (await session.execute(select(products))).mappings()}


async def test_the_fixture_catalog_imports(db: Database) -> None:
    report = await import_catalog(db, read_csv_bytes(CATALOG_CSV.encode()))
    assert report.errors == [] and report.applied
    assert (report.added, report.changed, report.deactivated) == (25, 0, 0)
    stored = await rows(db)
    dome = stored["DS-2CD1043G0-I"]
    assert dome["price"] == Decimal("58900.00") and dome["stock"] == 0 and dome["active"]
    assert dome["attributes"] == {"tech": "ip", "form": "domo", "resolution": "4MP", "lens_mm": "2.8",
                                  "outdoor": "si", "poe": "si"}  # fmt: skip
    assert dome["name"] == "Cámara IP domo 4MP lente 2.8mm" and dome["prices_include_iva"]
    again = await import_catalog(db, read_csv_bytes(CATALOG_CSV.encode()))
    assert (again.added, again.changed, again.unchanged) == (0, 0, 25)


async def test_upsert_replace_and_dry_run(db: Database) -> None:
    await import_catalog(db, read_csv_bytes(CATALOG_CSV.encode()))
    update = HEADER + "WD10PURZ,Disco rígido 1TB WD Purple,Western Digital,Discos,66000,ARS,18,,capacity=1TB\n"
    update += "NEW-1,Fuente 12V 5A,Genérica,Accesorios,9500.50,ARS,100,,\n"
    dry = await import_catalog(db, read_csv_bytes(update.encode()), replace=True, dry_run=True)
    assert (dry.added, dry.changed, dry.deactivated, dry.applied) == (1, 1, 24, False)
    assert (await rows(db))["WD10PURZ"]["price"] == Decimal("64000.00") and "NEW-1" not in await rows(db)
    report = await import_catalog(db, read_csv_bytes(update.encode()), replace=True)
    assert (report.added, report.changed, report.deactivated, report.applied) == (1, 1, 24, True)
    stored = await rows(db)
    assert stored["WD10PURZ"]["price"] == Decimal("66000.00") and stored["WD10PURZ"]["stock"] == 18
    assert stored["NEW-1"]["price"] == Decimal("9500.50")
    assert sum(r["active"] for r in stored.values()) == 2
    back = await import_catalog(db, read_csv_bytes(CATALOG_CSV.encode()))  # the old ones come back active
    assert (back.added, back.changed) == (0, 25)
    assert all(r["active"] for r in (await rows(db)).values())


async def test_one_bad_row_blocks_everything_unless_skip_invalid(db: Database) -> None:
    text = HEADER + (
        "A-1,Cámara,Hikvision,Cámaras,1000,ARS,1,,\n"
        "A-2,Cámara,Hikvision,Cámaras,mil pesos,ARS,1,,\n"
        "A-3,Cámara,Hikvision,Cámaras,1000,ARS,-4,,\n"
        "A-4,,Hikvision,Cámaras,1000,ARS,1,,\n"
        "A-1,Otra,Dahua,Cámaras,1000,ARS,1,,\n"
        "A-5,Cámara,Hikvision,Cámaras,1000,ARS,1,,tech ip\n"
        "A-6,Cámara,Hikvision,Cámaras,-5,ARS,1.5,,\n"
        "A-7,Cámara,Hikvision,Cámaras,10.555,pesos,1,,\n"
    )
    report = await import_catalog(db, read_csv_bytes(text.encode()))
    assert not report.applied and await rows(db) == {}
    found = {(e.line, e.column) for e in report.errors}
    assert found == {(3, "price"), (4, "stock"), (5, "name"), (6, "sku"), (7, "attributes"), (8, "price"),
                     (8, "stock"), (9, "price"), (9, "currency")}  # fmt: skip
    messages = {(e.line, e.column): e.message for e in report.errors}
    assert "not a number" in messages[(3, "price")] and "negative" in messages[(4, "stock")]
    assert "first on line 2" in messages[(6, "sku")] and "decimals" in messages[(9, "price")]
    partial = await import_catalog(db, read_csv_bytes(text.encode()), skip_invalid=True)
    assert partial.applied and partial.added == 1 and partial.skipped == 7
    assert list(await rows(db)) == ["A-1"] and (await rows(db))["A-1"]["name"] == "Cámara"


async def test_replace_with_skip_invalid_keeps_products_whose_row_was_bad(db: Database) -> None:
    await import_catalog(db, read_csv_bytes(CATALOG_CSV.encode()))
    text = HEADER + "WD10PURZ,Disco,WD,Discos,precio,ARS,1,,\nWD20PURZ,Disco,WD,Discos,90000,ARS,1,,\n"
    report = await import_catalog(db, read_csv_bytes(text.encode()), replace=True, skip_invalid=True)
    assert report.deactivated == 23 and (await rows(db))["WD10PURZ"]["active"]


async def test_missing_and_unknown_columns() -> None:
    good, errors, _ = importer.validate(read_csv_bytes(b"sku;name;price;colour\nA;B;1;red\n"))
    assert good == []
    assert {(e.line, e.column, e.message) for e in errors} >= {
        (1, "stock", "missing column"),
        (1, "attributes", "missing column"),
        (1, "colour", "unknown column"),
    }


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "cp1252"])
def test_encodings_and_delimiters(encoding: str) -> None:
    for sep in (",", ";", "\t"):
        text = HEADER.replace(",", sep) + sep.join(
            ["X-1", "Cámara domo 2MP con visión nocturna", "Hikvision", "Cámaras", "100", "ARS", "1", "ñandú", "form=domo"]
        ) + "\n"  # fmt: skip
        sheet = read_csv_bytes(text.encode(encoding))
        good, errors, _ = importer.validate(sheet)
        assert errors == [] and good[0][1].name == "Cámara domo 2MP con visión nocturna"
        assert good[0][1].description == "ñandú" and good[0][1].attributes == {"form": "domo"}


def test_hostile_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    with pytest.raises(CatalogFileError, match="not CSV text"):
        read_file(binary)
    fake = tmp_path / "price.xlsx"
    fake.write_text(HEADER, encoding="utf-8")
    with pytest.raises(CatalogFileError, match="not a zip"):
        read_file(fake)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(_xlsx([["sku"]])[:300])
    with pytest.raises(CatalogFileError, match="XLSX|zip"):
        read_file(broken)
    zipped = tmp_path / "zip.xlsx"
    import zipfile

    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    with pytest.raises(CatalogFileError, match="cannot be read"):
        read_file(zipped)
    monkeypatch.setattr(importer, "MAX_FILE_BYTES", 1000)
    huge = tmp_path / "huge.csv"
    huge.write_text(HEADER + "A,B,C,D,1,ARS,1,,\n" * 100, encoding="utf-8")
    with pytest.raises(CatalogFileError, match="larger than"):
        read_file(huge)
    with pytest.raises(CatalogFileError, match="no such file"):
        read_file(tmp_path / "missing.csv")


def test_too_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "MAX_ROWS", 10)
    with pytest.raises(CatalogFileError, match="more than 10 rows"):
        read_csv_bytes((HEADER + "A,B,C,D,1,ARS,1,,\n" * 11).encode())


def _xlsx(data: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in data:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_xlsx_numbers_and_formula_like_cells(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "lista.xlsx"
    path.write_bytes(_xlsx([
        HEADER.strip().split(","),
        ["DS-1", "=HYPERLINK(\"http://evil\",\"Cámara\")", "Hikvision", "Cámaras", 58900.5, "ARS", 3.0, "@SUM(1+1)",
         "form=domo"],
        ["DS-2", "Cámara", "Hikvision", "Cámaras", "=A1*2", "ARS", 1, "", ""],
        ["DS-3", "Cámara", "Hikvision", "Cámaras", 100, "ARS", 2.5, "", ""],
    ]))  # fmt: skip
    report = await import_catalog(db, read_file(path))
    assert {(e.line, e.column) for e in report.errors} == {(3, "price"), (4, "stock")}
    assert "formula" in report.errors[0].message
    report = await import_catalog(db, read_file(path), skip_invalid=True)
    stored = (await rows(db))["DS-1"]
    assert stored["name"] == '=HYPERLINK("http://evil","Cámara")'  # kept as text, never evaluated
    assert stored["price"] == Decimal("58900.50") and stored["stock"] == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("58.900,00", "58900.00"),
        ("58900", "58900.00"),
        ("58,900.50", "58900.50"),
        ("$ 1.234.567", "1234567.00"),
        ("0,5", "0.50"),
        ("12.5", "12.50"),
    ],
)
def test_prices(raw: str, expected: str) -> None:
    assert importer.parse_price(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["", "abc", "-1", "0", "1e5", "NaN", "1.2.3,4,5x", "=1+1", "1,234", "9" * 20])
def test_bad_prices(raw: str) -> None:
    if raw == "1,234":  # one comma: a decimal comma, then 3 decimals
        with pytest.raises(ValueError, match="decimals"):
            importer.parse_price(raw)
        return
    with pytest.raises(ValueError):
        importer.parse_price(raw)


def test_unclosed_quote_and_giant_cells() -> None:
    text = HEADER + 'A-1,"Cámara sin cerrar comillas,Hik,Cám,1,ARS,1,,\n' + ("x" * 200 + "\n") * 1000
    with pytest.raises(CatalogFileError, match="cannot be read near line"):
        read_csv_bytes(text.encode())
    giant = HEADER + "A-1,Cámara,Hik,Cám,1,ARS,1," + "d" * 6000 + ",\n"
    good, errors, _ = importer.validate(read_csv_bytes(giant.encode()))
    assert good == [] and [(e.line, e.column) for e in errors] == [(2, "description")]


def test_utf16_and_trailing_blank_columns(tmp_path: Path) -> None:
    text = HEADER.strip() + ",,\n" + "A-1,Cámara,Hik,Cám,1,ARS,1,ñ,,,\n"
    good, errors, _ = importer.validate(read_csv_bytes(text.encode("utf-16")))
    assert errors == [] and good[0][1].description == "ñ"
    path = tmp_path / "blank.xlsx"
    path.write_bytes(_xlsx([[*HEADER.strip().split(","), None, ""], ["A-1", "Cámara", "Hik", "Cám", 1, "ARS", 1]]))
    good, errors, _ = importer.validate(read_file(path))
    assert errors == [] and good[0][1].sku == "A-1"
    stray = HEADER.strip() + ",,colour\nA-1,Cámara,Hik,Cám,1,ARS,1,,,,red\n"
    _, errors, _ = importer.validate(read_csv_bytes(stray.encode()))
    assert {(e.column, e.message) for e in errors} == {("(empty)", "unknown column"), ("colour", "unknown column")}
