"""`/admin/sales/import`: upload → a preview of what changes (new, updated with what from what, unchanged,
rejected with the reason, deactivated) with nothing written → confirm applies exactly the previewed file
(its sha256 and the preview's digest: another file, other options or a catalog changed meanwhile give a new
preview and write nothing). Hostile files: wrong encoding, binary, a broken workbook, formulas, duplicates,
negative prices, oversized, 50 000 rows. The catalog CSV export escapes formulas. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from typing import Any

import httpx
from openpyxl import Workbook
from sqlalchemy import func, select, update

from otklik.adapters.db.models import EventLog
from otklik.bootstrap import Otklik
from otklik.capabilities.sales.importer import import_catalog
from otklik.capabilities.sales.models import products
from otklik.platform.users import Role
from tests.capabilities.sales.shop_catalog import rows
from tests.fixtures.admin import Admin

HEADER = "sku,name,brand,category,price,currency,stock,description,attributes\n"


async def _upload(admin: Admin, name: str, data: bytes, **options: str) -> httpx.Response:
    return await admin.http.post("/admin/sales/import", data={"csrf_token": admin.csrf, **options},
                                 files={"file": (name, data)})  # fmt: skip


def _confirm_fields(page: str) -> dict[str, str]:
    form = re.search(r'data-testid="confirm-form">(.*?)</form>', page, re.S)
    assert form is not None, "no confirm form on the page"
    return dict(re.findall(r'name="([a-z_0-9]+)" value="([^"]*)"', form.group(1)))


def _counts(page: str) -> dict[str, int]:
    found = re.search(r'data-testid="counts" ([^>]*)>', page)
    assert found is not None
    return {k: int(v) for k, v in re.findall(r'data-([a-z]+)="(\d+)"', found.group(1))}


async def _catalog(otklik: Otklik) -> dict[str, dict[str, Any]]:
    async with otklik.db.read() as session:
        return {r["sku"]: dict(r) for r in (await session.execute(select(products))).mappings()}


def _csv(lines: list[str]) -> bytes:
    return (HEADER + "\n".join(lines) + "\n").encode()


CHANGES = _csv([
    "WD10PURZ,Disco rígido 1TB WD Purple,Western Digital,Discos,70000,ARS,20,Disco rígido 1TB WD Purple,"
    "capacity=1TB",  # price 64000 → 70000
    "NEW-1,Cámara nueva 4MP,Hikvision,Cámaras,12345.50,ARS,3,=HYPERLINK(\"http://evil\"),tech=ip",
    "DS-2CD1043G2-I,Cámara IP domo 4MP 2.8mm,Hikvision,Cámaras,58900.00,ARS,0,Cámara IP domo 4MP 2.8mm,"
    "tech=ip;form=domo;resolution=4MP;lens_mm=2.8;outdoor=si;poe=si",
])  # fmt: skip


async def test_preview_then_confirm_applies_exactly_the_file(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    await import_catalog(otklik.db, rows())
    before = await _catalog(otklik)
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/sales/import")).status_code == 200
    page = await _upload(operator, "lista.csv", CHANGES, replace="1")
    assert page.status_code == 200, page.text[-500:]
    counts = _counts(page.text)
    assert counts == {"new": 1, "updated": 1, "unchanged": 1, "rejected": 0, "deactivated": len(before) - 2}
    assert 'data-kind="updated" data-line="2"' in page.text and "price: 64000.00 → 70000.00" in page.text
    assert 'data-kind="new" data-line="3"' in page.text
    assert await _catalog(otklik) == before  # a preview writes nothing
    fields = _confirm_fields(page.text)
    assert fields["sha256"] == hashlib.sha256(CHANGES).hexdigest() and fields["replace"] == "1"

    done = await operator.post("/admin/sales/import/confirm", {k: v for k, v in fields.items() if k != "csrf_token"})
    assert done.status_code == 200 and 'data-testid="done"' in done.text, done.text[-500:]
    after = await _catalog(otklik)
    assert str(after["WD10PURZ"]["price"]) == "70000.00" and after["NEW-1"]["description"].startswith("=HYPERLINK")
    assert sum(1 for r in after.values() if r["active"]) == 3
    async with otklik.db.read() as session:
        [entry] = (await session.execute(select(EventLog).where(EventLog.kind == "sales.catalog_import"))).scalars()
    assert entry.data["sha256"] == fields["sha256"] and entry.data["added"] == 1 and entry.data["replace"] is True

    # the same confirmation again: the catalog no longer gives that preview → a new preview, nothing written
    again = await operator.post("/admin/sales/import/confirm", {k: v for k, v in fields.items() if k != "csrf_token"})
    assert again.status_code == 409 and "the catalog changed since the preview" in again.text
    assert _counts(again.text) == {"new": 0, "updated": 0, "unchanged": 3, "rejected": 0, "deactivated": 0}

    export = await operator.http.get("/admin/sales/catalog.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    cells = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert cells[0][:9] == HEADER.strip().split(",")
    new_row = next(r for r in cells if r[0] == "NEW-1")
    assert new_row[7] == '\'=HYPERLINK("http://evil")'  # a spreadsheet shows it as text
    assert len(cells) == 4  # the active products only: the export re-imports as it is


async def test_confirm_is_bound_to_the_previewed_file_options_and_catalog(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    await import_catalog(otklik.db, rows())
    operator = await as_role(Role.OPERATOR)
    first = _confirm_fields((await _upload(operator, "a.csv", CHANGES)).text)
    other = _csv(["WD10PURZ,Disco rígido 1TB WD Purple,Western Digital,Discos,1,ARS,20,,capacity=1TB"])
    second = _confirm_fields((await _upload(operator, "b.csv", other)).text)
    before = await _catalog(otklik)
    attempts = [
        ({**first, "sha256": second["sha256"]}, 409),  # another file under the first preview's digest
        ({**first, "replace": "1"}, 409),  # options changed after the preview
        ({**first, "sha256": "f" * 64}, 410),  # a file never uploaded
        ({**first, "sha256": "../../etc/passwd"}, 422),
        ({**first, "digest": "x"}, 422),
    ]
    for fields, status in attempts:
        response = await operator.post("/admin/sales/import/confirm",
                                       {k: v for k, v in fields.items() if k != "csrf_token"})  # fmt: skip
        assert response.status_code == status, (fields, response.status_code)
        assert await _catalog(otklik) == before
    async with otklik.db.write() as session:  # someone edits the catalog between the preview and the confirm
        await session.execute(update(products).where(products.c.sku == "WD10PURZ").values(price=65000))
    stale = await operator.post("/admin/sales/import/confirm", {k: v for k, v in first.items() if k != "csrf_token"})
    assert stale.status_code == 409 and "price: 65000.00 → 70000.00" in stale.text
    assert str((await _catalog(otklik))["WD10PURZ"]["price"]) == "65000.00"
    no_token = {k: v for k, v in first.items() if k != "csrf_token"}
    forged = await operator.http.post("/admin/sales/import/confirm", data=no_token)  # no CSRF token
    assert forged.status_code in (400, 403)
    fresh = _confirm_fields(stale.text)
    applied = await operator.post("/admin/sales/import/confirm", {k: v for k, v in fresh.items() if k != "csrf_token"})
    assert applied.status_code == 200 and str((await _catalog(otklik))["WD10PURZ"]["price"]) == "70000.00"


async def test_bad_rows_are_listed_with_reasons_and_nothing_is_half_applied(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    await import_catalog(otklik.db, rows())
    before = await _catalog(otklik)
    operator = await as_role(Role.OPERATOR)
    bad = _csv([
        "OK-1,Producto bueno,Marca,Cat,100,ARS,1,,",
        "NEG-1,Precio negativo,Marca,Cat,-5,ARS,1,,",
        "OK-1,Repetido,Marca,Cat,100,ARS,1,,",
        "FORM-1,Fórmula,Marca,Cat,=1+1,ARS,1,,",
        "NONAME,,Marca,Cat,100,ARS,-3,,",
        "<script>alert(1)</script>,<b>x</b>,Marca,Cat,100,ARS,1,,",
    ])  # fmt: skip
    page = await _upload(operator, "bad.csv", bad)
    assert page.status_code == 200
    assert _counts(page.text)["rejected"] == 5 and 'data-testid="blocked"' in page.text
    assert 'data-testid="confirm-form"' not in page.text
    for line, reason in ((3, "price: must be greater than 0"), (4, "sku: duplicate sku (first on line 2)"),
                         (5, "price: a formula, not a number"), (6, "name: missing"), (6, "stock: cannot be negative"),
                         (7, "sku: 1-64 characters")):  # fmt: skip
        row = re.search(rf'data-kind="rejected" data-line="{line}">(.*?)</tr>', page.text, re.S)
        assert row is not None and reason in row.group(1), (line, reason)
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    assert await _catalog(otklik) == before
    skipping = await _upload(operator, "bad.csv", bad, skip_invalid="1")
    fields = _confirm_fields(skipping.text)
    done = await operator.post("/admin/sales/import/confirm", {k: v for k, v in fields.items() if k != "csrf_token"})
    assert done.status_code == 200 and "OK-1" in await _catalog(otklik)
    assert set(await _catalog(otklik)) - set(before) == {"OK-1"}


async def test_hostile_files_get_a_clear_message(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    latin1 = _csv(["LAT-1,Cámara año,Marca,Cat,100,ARS,1,,"]).decode().encode("latin-1")
    ok = await _upload(operator, "latin1.csv", latin1)  # Windows-1252 / Latin-1 is read, not refused
    assert ok.status_code == 200 and "Cámara año" in ok.text and _counts(ok.text)["new"] == 1
    cases = [
        ("utf16.csv", HEADER.encode("utf-16-le"), 422, "NUL bytes"),
        ("bin.csv", bytes(range(256)) * 10, 422, "not CSV text"),
        ("broken.xlsx", b"PK\x03\x04" + b"\x00" * 300, 422, "XLSX"),
        ("empty.csv", b"", 422, "the file is empty"),
        ("blank.csv", b"   \n\n", 422, "the file is empty"),
        ("cols.csv", b"sku,nombre,precio\nA,b,1\n", 200, "missing column"),
    ]
    for name, data, status, reason in cases:
        page = await _upload(operator, name, data)
        assert page.status_code == status and reason in page.text, (name, page.status_code, page.text[-300:])
        assert 'data-testid="confirm-form"' not in page.text
    none = await operator.post("/admin/sales/import", {})
    assert none.status_code == 422 and "choose a CSV or XLSX file" in none.text
    otklik.ctx.media.max_bytes = 64 * 1024  # the install's upload limit
    huge = await _upload(operator, "huge.csv", _csv(["X-1,Nombre,M,C,1,ARS,1,," + "x" * 100] * 1000))
    assert huge.status_code == 413 and "larger than" in huge.text
    assert await _catalog(otklik) == {}
    analyst = await as_role(Role.ANALYST)
    assert (await analyst.http.get("/admin/sales/import")).status_code == 403
    assert (await analyst.http.get("/admin/sales/catalog.csv")).status_code == 403
    assert (await _upload(analyst, "a.csv", CHANGES)).status_code == 403


async def test_xlsx_with_formula_cells(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.strip().split(","))
    sheet.append(["XL-1", '=HYPERLINK("http://evil","clic")', "Marca", "Cat", 1500, "ARS", 4, "", "tech=ip"])
    sheet.append(["XL-2", "Precio fórmula", "Marca", "Cat", "=A1*2", "ARS", 4, "", ""])
    out = io.BytesIO()
    book.save(out)
    operator = await as_role(Role.OPERATOR)
    page = await _upload(operator, "lista.xlsx", out.getvalue(), skip_invalid="1")
    assert page.status_code == 200 and _counts(page.text) == {"new": 1, "updated": 0, "unchanged": 0, "rejected": 1,
                                                                "deactivated": 0}  # fmt: skip
    assert "price: a formula, not a number" in page.text
    fields = _confirm_fields(page.text)
    await operator.post("/admin/sales/import/confirm", {k: v for k, v in fields.items() if k != "csrf_token"})
    stored = await _catalog(otklik)
    assert stored["XL-1"]["name"] == '=HYPERLINK("http://evil","clic")'  # text, never evaluated
    export = await operator.http.get("/admin/sales/catalog.csv")
    assert "'=HYPERLINK(" in export.text


async def test_fifty_thousand_rows(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    lines = [f"SKU-{n:05d},Producto {n},Marca {n % 7},Cat {n % 11},{1000 + n}.50,ARS,{n % 9},,tech=ip"
             for n in range(50_000)]  # fmt: skip
    operator = await as_role(Role.OPERATOR)
    dup = await _upload(operator, "big.csv", _csv([*lines, lines[123]]))
    assert dup.status_code == 200 and _counts(dup.text)["rejected"] == 1 and "first on line 125" in dup.text
    page = await _upload(operator, "big.csv", _csv(lines))
    assert _counts(page.text) == {"new": 50_000, "updated": 0, "unchanged": 0, "rejected": 0, "deactivated": 0}
    assert page.text.count('data-kind="new"') == 200  # the page lists a sample; the counts are complete
    fields = _confirm_fields(page.text)
    done = await operator.post("/admin/sales/import/confirm", {k: v for k, v in fields.items() if k != "csrf_token"})
    assert done.status_code == 200
    async with otklik.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(products)) == 50_000
