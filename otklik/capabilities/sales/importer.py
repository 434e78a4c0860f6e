"""Catalog import: CSV and XLSX readers, row validation and `import_catalog` (upsert by sku).

Rules (docs/sales.md): the header names the columns (`sku,name,brand,category,price,currency,stock,description,
attributes`, optional `images`); every bad row is reported with its line (the spreadsheet's row number, the
header is line 1) and column; nothing is written when any row is invalid unless `skip_invalid`; `replace`
deactivates the active products whose sku is not in the file. Text cells are stored as text: a cell such as
`=HYPERLINK(…)` is never evaluated (exports must escape it).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from otklik.adapters.db.engine import Database
from otklik.capabilities.sales.models import products
from otklik.clock import utcnow

COLUMNS = ("sku", "name", "brand", "category", "price", "currency", "stock", "description", "attributes")
OPTIONAL = ("images",)
MAX_FILE_BYTES = 64 * 1024 * 1024  # a 100 000-row price list is ~20 MB of CSV
MAX_XLSX_UNPACKED = 512 * 1024 * 1024  # a zip bomb stops here
MAX_ROWS = 200_000
THREAD_ROWS = 2_000  # a file with more rows is validated in a thread
MAX_PRICE = Decimal("999999999999.99")
MAX_STOCK = 1_000_000_000
MAX_ATTRIBUTES = 50
SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+#-]{0,63}")
KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
CURRENCY = re.compile(r"[A-Z]{3}")
LIMITS = {"name": 300, "brand": 80, "category": 80, "description": 5000}


class CatalogFileError(Exception):
    """The file cannot be read at all (size, encoding, not a spreadsheet): one message, nothing imported."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """What an import does to one product (a preview's row): `kind` is new | updated | unchanged | rejected |
    deactivated; `changes` the fields an update changes (field -> (old, new), as text); `reasons` why a row is
    rejected (`column: message`)."""

    line: int
    sku: str
    name: str
    kind: str
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    changed: int = 0
    deactivated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    applied: bool = False
    # what the import does, row by row (only with `detail=True`), and a digest of it: the same file and
    # options on the same catalog give the same digest (`expect` refuses to write when it differs)
    rows: list[RowOutcome] = field(default_factory=list)
    digest: str = ""
    stale: bool = False  # `expect` was given and the catalog no longer gives that digest: nothing written

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added, "changed": self.changed, "deactivated": self.deactivated,
            "unchanged": self.unchanged, "skipped": self.skipped, "applied": self.applied,
            "errors": [{"line": e.line, "column": e.column, "message": e.message} for e in self.errors],
        }  # fmt: skip


@dataclass(slots=True)
class Sheet:
    """A header and its rows: `(line, cells)`; cells are str, int, float, Decimal or None."""

    columns: list[str]
    rows: Iterable[tuple[int, list[Any]]]
    total: int | None = None  # rows, when known up front (the progress bar)


# --- readers ----------------------------------------------------------------------------------------------


def _check_size(path: Path) -> bytes:
    try:
        if not path.is_file():
            raise CatalogFileError(f"{path}: no such file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CatalogFileError(f"{path}: the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        return path.read_bytes()
    except OSError as exc:
        raise CatalogFileError(f"{path}: {exc.strerror or exc}") from None


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252 / Latin-1. Binary is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise CatalogFileError("the file is neither UTF-8 nor Latin-1 text") from None
    if b"\x00" in data:
        raise CatalogFileError("the file is not CSV text (it holds NUL bytes: a binary file or UTF-16 without BOM?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    text = data.decode("cp1252", errors="replace") if _cp1252_ok(data) else data.decode("latin-1")
    if sum(1 for ch in text if ch < " " and ch not in "\r\n\t") > 0:
        raise CatalogFileError("the file is neither UTF-8 nor Latin-1 text (control characters)")
    return text


def _cp1252_ok(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def read_csv_bytes(data: bytes) -> Sheet:
    text = decode(data)
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        lines = list(reader)
    except csv.Error as exc:  # a cell over the csv module's limit (128 KB): an unclosed quote, usually
        raise CatalogFileError(f"the CSV cannot be read near line {reader.line_num}: {exc}") from None
    if not lines:
        raise CatalogFileError("the file is empty")
    header = _header(lines[0])
    body = [(n, row) for n, row in enumerate(lines[1:], start=2) if any(c.strip() for c in row)]
    if len(body) > MAX_ROWS:
        raise CatalogFileError(f"the file has more than {MAX_ROWS} rows")
    return Sheet(header, body, len(body))


def read_xlsx_bytes(data: bytes) -> Sheet:
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CatalogFileError("the file is not an XLSX workbook (not a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(i.file_size for i in archive.infolist()) > MAX_XLSX_UNPACKED:
                raise CatalogFileError("the workbook unpacks to more than 512 MB")
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        sheet = book.worksheets[0]
        it = sheet.iter_rows(values_only=True)
        first = next(it, None)
        if first is None:
            raise CatalogFileError("the workbook's first sheet is empty")
        header = _header(first)
        body: list[tuple[int, list[Any]]] = []
        for n, row in enumerate(it, start=2):
            cells = list(row)
            if any(c is not None and str(c).strip() for c in cells):
                body.append((n, cells))
                if len(body) > MAX_ROWS:
                    raise CatalogFileError(f"the workbook has more than {MAX_ROWS} rows")
        book.close()
    except CatalogFileError:
        raise
    except Exception as exc:  # openpyxl raises many kinds on a broken workbook
        raise CatalogFileError(f"the XLSX workbook cannot be read ({type(exc).__name__})") from None
    return Sheet(header, body, len(body))


def _header(cells: Iterable[Any]) -> list[str]:
    """Column names, lower-case; empty names at the end (a spreadsheet's formatted blank columns) dropped."""
    names = [str(c if c is not None else "").strip().lower() for c in cells]
    while names and not names[-1]:
        names.pop()
    return names


def read_file(path: Path) -> Sheet:
    data = _check_size(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return read_xlsx_bytes(data)
    if data.startswith(b"PK\x03\x04"):
        raise CatalogFileError(f"{path.name}: a zip archive (an XLSX workbook?) — name it .xlsx")
    return read_csv_bytes(data)


def read_bytes(data: bytes, filename: str = "") -> Sheet:
    """An uploaded file (the admin's import): an XLSX workbook when it is a zip (whatever its name says), a
    CSV otherwise; the same limits and messages as `read_file`."""
    if len(data) > MAX_FILE_BYTES:
        raise CatalogFileError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    if not data.strip():
        raise CatalogFileError("the file is empty")
    if data.startswith(b"PK\x03\x04") or filename.lower().endswith((".xlsx", ".xlsm")):
        return read_xlsx_bytes(data)
    return read_csv_bytes(data)


def sheet_of(rows: Iterable[Mapping[str, Any]]) -> Sheet:
    """Rows given as mappings (tests, other sources): line 2 is the first row, as in a file with a header."""
    listed = list(rows)
    columns = list(dict.fromkeys(k for r in listed for k in r)) or list(COLUMNS)
    return Sheet(columns, [(n, [r.get(c) for c in columns]) for n, r in enumerate(listed, start=2)], len(listed))


# --- validation -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    brand: str
    category: str
    price: Decimal
    currency: str
    stock: int
    description: str
    attributes: dict[str, str]
    images: list[str]

    def values(self) -> dict[str, Any]:
        return {
            "sku": self.sku, "name": self.name, "brand": self.brand, "category": self.category,
            "price": self.price, "currency": self.currency, "stock": self.stock,
            "description": self.description, "attributes": self.attributes, "images": self.images,
        }  # fmt: skip


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse_price(value: Any) -> Decimal:
    """58900, 58900.5, "58.900,00" (es-AR), "58,900.00", "$ 58.900" → Decimal with at most 2 decimals."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        text = _text(value).replace("$", "").replace(" ", "").replace("\u00a0", "")
        if text.startswith("="):
            raise ValueError("a formula, not a number")
        if not re.fullmatch(r"-?[0-9.,]+", text) or not re.search(r"\d", text):
            raise ValueError(f"not a number: {text[:30]!r}" if text else "missing")
        if "," in text and "." in text:
            thousands, decimal = (".", ",") if text.rfind(",") > text.rfind(".") else (",", ".")
            text = text.replace(thousands, "").replace(decimal, ".")
        elif text.count(",") == 1:
            text = text.replace(",", ".")
        elif text.count(",") > 1 or text.count(".") > 1:
            text = text.replace(",", "").replace(".", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a number: {text[:30]!r}") from None
    if not number.is_finite():
        raise ValueError("not a number")
    if number <= 0:
        raise ValueError("must be greater than 0")
    if number > MAX_PRICE:
        raise ValueError("too large")
    if number != number.quantize(Decimal("0.01")):
        raise ValueError("more than 2 decimals")
    return number.quantize(Decimal("0.01"))


def parse_stock(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("not a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        text = _text(value)
        if text.startswith("="):
            raise ValueError("a formula, not a number")
        if not re.fullmatch(r"-?\d+", text):
            raise ValueError(f"not a whole number: {text[:30]!r}" if text else "missing")
        number = int(text)
    if number < 0:
        raise ValueError("cannot be negative")
    if number > MAX_STOCK:
        raise ValueError("too large")
    return number


def parse_attributes(value: Any) -> dict[str, str]:
    """`tech=ip; resolution=4MP; lens_mm=2.8` → {"tech": "ip", …}; keys lower-case, each once."""
    out: dict[str, str] = {}
    for part in _text(value).split(";"):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        key, val = key.strip().lower(), val.strip()
        if not sep or not KEY.fullmatch(key):
            raise ValueError(f"not key=value: {part.strip()[:40]!r}")
        if not val or len(val) > 80:
            raise ValueError(f"{key}: the value must have 1-80 characters")
        if key in out:
            raise ValueError(f"{key} given twice")
        out[key] = val
    if len(out) > MAX_ATTRIBUTES:
        raise ValueError(f"more than {MAX_ATTRIBUTES} attributes")
    return out


def validate_row(line: int, row: Mapping[str, Any]) -> tuple[Product | None, list[RowError]]:
    errors: list[RowError] = []

    def take(column: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
        try:
            return parse(row.get(column))
        except ValueError as exc:
            errors.append(RowError(line, column, str(exc)))
            return default

    sku = _text(row.get("sku"))
    if not sku:
        errors.append(RowError(line, "sku", "missing"))
    elif not SKU.fullmatch(sku):
        errors.append(RowError(line, "sku", "1-64 characters: letters, digits and . _ / + # -"))
    texts: dict[str, str] = {}
    for column, limit in LIMITS.items():
        value = _text(row.get(column))
        if any(ch < " " and ch not in "\n\t" for ch in value):
            errors.append(RowError(line, column, "control characters"))
        elif len(value) > limit:
            errors.append(RowError(line, column, f"longer than {limit} characters"))
        texts[column] = value
    if not texts["name"]:
        errors.append(RowError(line, "name", "missing"))
    price = take("price", parse_price)
    currency = (_text(row.get("currency")) or "ARS").upper()
    if not CURRENCY.fullmatch(currency):
        errors.append(RowError(line, "currency", "three letters, e.g. ARS or USD"))
    stock = take("stock", parse_stock)
    attributes = take("attributes", parse_attributes, {})
    images = [u for u in re.split(r"[\s,;]+", _text(row.get("images"))) if u]
    if any(not u.startswith(("https://", "http://", "/")) or len(u) > 500 for u in images):
        errors.append(RowError(line, "images", "URLs (http/https), separated by spaces or commas"))
    if errors:
        return None, errors
    return Product(sku, texts["name"], texts["brand"], texts["category"], price, currency, stock,
                   texts["description"], attributes, images), []  # fmt: skip


def validate(sheet: Sheet) -> tuple[list[tuple[int, Product]], list[RowError], set[str]]:
    """The valid products, every error, and every sku the file names (valid or not: `replace` keeps them)."""
    errors: list[RowError] = []
    missing = [c for c in COLUMNS if c not in sheet.columns]
    unknown = [c for c in sheet.columns if c not in COLUMNS and c not in OPTIONAL]
    errors += [RowError(1, c, "missing column") for c in missing]
    errors += [RowError(1, c or "(empty)", "unknown column") for c in unknown]
    dupes = [c for c in set(sheet.columns) if c and sheet.columns.count(c) > 1]
    errors += [RowError(1, c, "column given twice") for c in dupes]
    if errors:
        return [], errors, set()
    good: list[tuple[int, Product]] = []
    seen: dict[str, int] = {}
    named: set[str] = set()
    for line, cells in sheet.rows:
        if len(cells) > len(sheet.columns) and any(_text(c) for c in cells[len(sheet.columns) :]):
            errors.append(RowError(line, "(row)", "more cells than columns"))
            continue
        row = dict(zip(sheet.columns, cells, strict=False))
        sku_key = _text(row.get("sku")).upper()
        if sku_key:
            named.add(sku_key)
        product, row_errors = validate_row(line, row)
        if sku_key and sku_key in seen:
            row_errors.append(RowError(line, "sku", f"duplicate sku (first on line {seen[sku_key]})"))
            product = None
        elif sku_key:
            seen[sku_key] = line
        errors += row_errors
        if product is not None and not row_errors:
            good.append((line, product))
    return good, errors, named


# --- import -----------------------------------------------------------------------------------------------


def _same(existing: Any, product: Product) -> bool:
    values = product.values()
    return all(existing[k] == v for k, v in values.items()) and bool(existing["active"])


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _changes(existing: Any, values: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    out = {k: (_shown(existing[k]), _shown(v)) for k, v in values.items() if k != "active" and existing[k] != v}
    if not existing["active"]:
        out["active"] = ("no", "yes")
    return out


def _digest(outcomes: Iterable[tuple[str, str, Any]]) -> str:
    """sha256 of what the import does (sku, kind, and what changes from what): it changes when the catalog
    changed in a way that matters to this file."""
    digest = hashlib.sha256()
    for sku, kind, extra in outcomes:
        digest.update(json.dumps([sku, kind, extra], sort_keys=True, default=str, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


async def import_catalog(
    db: Database,
    rows: Sheet | Iterable[Mapping[str, Any]],
    replace: bool = False,
    dry_run: bool = False,
    skip_invalid: bool = False,
    *,
    prices_include_iva: bool = True,
    progress: Callable[[int], None] | None = None,
    detail: bool = False,
    expect: str | None = None,
) -> ImportReport:
    """Upsert the rows by sku in one transaction. Nothing is written when any row is invalid (unless
    `skip_invalid`: the valid rows are, the others are reported and counted as skipped) or on `dry_run`.

    `detail=True` fills `report.rows` (a preview: every row's outcome, the rejected ones with their reasons,
    the products `replace` deactivates). `report.digest` always sums up what the import does; with `expect`
    (a preview's digest) nothing is written unless the import would do exactly that (`report.stale`)."""
    sheet = rows if isinstance(rows, Sheet) else sheet_of(rows)
    if (sheet.total or 0) > THREAD_ROWS:  # seconds of CPU work: off the event loop (the admin's web process)
        good, errors, named = await asyncio.to_thread(validate, sheet)
    else:
        good, errors, named = validate(sheet)
    report = ImportReport(errors=errors, skipped=len({e.line for e in errors if e.line > 1}))
    if detail:
        by_line: dict[int, list[str]] = {}
        for e in errors:
            by_line.setdefault(e.line, []).append(f"{e.column}: {e.message}")
        cells = dict(sheet.rows) if isinstance(sheet.rows, list) else {}
        for line, reasons in sorted(by_line.items()):
            row = dict(zip(sheet.columns, cells.get(line, []), strict=False))
            report.rows.append(RowOutcome(line, _text(row.get("sku"))[:64], _text(row.get("name"))[:300],
                                          "rejected", reasons=tuple(reasons)))  # fmt: skip
    if any(e.line == 1 for e in errors) or (errors and not skip_invalid):
        return report
    now = utcnow()
    async with db.write() as session:
        existing = {r["sku"].upper(): r for r in (await session.execute(select(products))).mappings()}
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        plan: list[tuple[str, str, Any]] = []
        diff: dict[str, tuple[str, str]]
        for done, (line, product) in enumerate(good, start=1):
            old = existing.get(product.sku.upper())
            values = {**product.values(), "prices_include_iva": prices_include_iva, "active": True}
            if old is None:
                new.append({**values, "updated_at": now})
                plan.append((product.sku.upper(), "new", None))
                kind, diff = "new", {}
            elif _same(old, product) and old["prices_include_iva"] == prices_include_iva:
                report.unchanged += 1
                plan.append((product.sku.upper(), "unchanged", None))
                kind, diff = "unchanged", {}
            else:
                changed.append({**values, "id": old["id"], "updated_at": now})
                diff = _changes(old, values)
                plan.append((product.sku.upper(), "updated", diff))
                kind = "updated"
            if detail:
                report.rows.append(RowOutcome(line, product.sku, product.name, kind, diff))
            if progress is not None and done % 1000 == 0:
                progress(1000)
        gone = [r for k, r in existing.items() if replace and r["active"] and k not in named]
        plan += [(r["sku"].upper(), "deactivated", None) for r in gone]
        if detail:
            report.rows += [RowOutcome(0, r["sku"], r["name"], "deactivated") for r in gone]
        report.added, report.changed, report.deactivated = len(new), len(changed), len(gone)
        report.digest = _digest(plan)
        if dry_run:
            return report  # nothing was written
        if expect is not None and expect != report.digest:
            report.stale = True
            return report  # the catalog changed since the preview: nothing is written
        for chunk in _chunks(new, 1000):
            await session.execute(insert(products), chunk)
        if changed:
            stmt = update(products).where(products.c.id == _bind("id"))
            for chunk in _chunks(changed, 1000):
                await session.execute(stmt, [{**c, "b_id": c.pop("id")} for c in chunk])
        for ids in _chunks([r["id"] for r in gone], 1000):
            await session.execute(update(products).where(products.c.id.in_(ids)).values(active=False, updated_at=now))
        report.applied = True
    if progress is not None:
        progress(len(good) % 1000)
    return report


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(f"b_{name}")


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
