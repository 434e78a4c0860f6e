"""The sales settings: the seller's letterhead on the pre-invoice and the invoice (name, CUIT, address, payment
instructions, logo), the series orders and invoices are numbered in, the IVA rate, how long a summary's
prices hold and how long an untouched cart lives — the `sales_config` row and the `sales_series` rows, set
with `otklik catalog seller` (the letterhead) or on the admin's settings page (everything)."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from otklik.adapters.db.engine import Database
from otklik.adapters.media import MediaStore
from otklik.capabilities.sales.customer import cuit as valid_cuit
from otklik.capabilities.sales.models import config, series
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput
from otklik.platform.audit import audit

FIELDS = ("seller_name", "seller_cuit", "seller_address", "payment_instructions", "invoice_series")
LIMITS = {"seller_name": 200, "seller_address": 300, "payment_instructions": 2000}


async def show(db: Database) -> dict[str, Any]:
    async with db.read() as session:
        row = (await session.execute(select(*(config.c[f] for f in FIELDS)).where(config.c.id == 1))).first()
    return dict(row._asdict()) if row is not None else {}


def clean(changes: dict[str, str | None]) -> dict[str, str]:
    """The given fields, checked: printable text within the limits, a CUIT with a valid check digit."""
    out: dict[str, str] = {}
    for name, raw in changes.items():
        if raw is None:
            continue
        if name not in FIELDS:
            raise InvalidInput(f"unknown field {name!r}")
        value = raw.strip()
        multiline = name == "payment_instructions"
        lines = value.replace("\r\n", "\n").split("\n") if multiline else [value]
        if any(not line.isprintable() for line in lines) or (not multiline and "\n" in value):
            raise InvalidInput(f"{name}: printable text only")
        if name in LIMITS and len(value) > LIMITS[name]:
            raise InvalidInput(f"{name}: at most {LIMITS[name]} characters")
        if name == "seller_cuit" and value:
            checked = valid_cuit(value)
            if checked is None:
                raise InvalidInput("seller_cuit: not a valid CUIT (11 digits with a right check digit)")
            value = checked
        if name == "invoice_series" and not value:
            raise InvalidInput("invoice_series: the name of a number series, e.g. FC")
        out[name] = "\n".join(lines) if multiline else value
    return out


async def save(db: Database, changes: dict[str, str | None], *, actor: str) -> dict[str, Any]:
    values = clean(changes)
    if not values:
        return await show(db)
    now = utcnow()
    async with db.write() as session:
        if "invoice_series" in values:
            known = await session.scalar(select(series.c.name).where(series.c.name == values["invoice_series"]))
            if known is None:
                raise InvalidInput(f"invoice_series: no series named {values['invoice_series']!r}")
        await session.execute(update(config).where(config.c.id == 1).values(**values))
        audit(session, actor, "sales.seller", "sales_config", 1, {"fields": sorted(values)}, now=now)
    return await show(db)


# --- the admin's sales settings page (`/admin/sales/settings`) --------------------------------------------

MAX_LOGO_BYTES = 512 * 1024
MAX_LOGO_SIDE = 4000  # pixels, each side
MAX_HOURS = 24 * 365
SERIES_PREFIX = re.compile(r"[A-Z0-9][A-Z0-9 ._/-]{0,15}")
IVA = re.compile(r"\d{1,3}([.,]\d{1,2})?")


class TooLarge(InvalidInput):
    """An upload over its size limit."""


@dataclass(frozen=True, slots=True)
class SeriesRow:
    name: str
    prefix: str
    width: int
    next_value: int

    def example(self) -> str:
        return f"{self.prefix}{self.next_value:0{self.width}d}"


async def settings(db: Database) -> dict[str, Any]:
    """The whole `sales_config` row and every number series."""
    async with db.read() as session:
        row = (await session.execute(select(config).where(config.c.id == 1))).mappings().first()
        rows = (await session.execute(select(series).order_by(series.c.name))).all()
    out = dict(row) if row is not None else {}
    out["all_series"] = [SeriesRow(str(r.name), str(r.prefix), int(r.width), int(r.next_value)) for r in rows]
    return out


def _hours(name: str, raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"\d{1,5}", text) or not 1 <= int(text) <= MAX_HOURS:
        raise InvalidInput(f"{name}: a whole number of hours from 1 to {MAX_HOURS}")
    return int(text)


def _freshness(raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"\d{1,5}", text) or int(text) > MAX_HOURS:
        raise InvalidInput(f"freshness_hours: a whole number of hours from 0 (off) to {MAX_HOURS}")
    return int(text)


def _iva(raw: str) -> Decimal:
    text = raw.strip().replace(" ", "").rstrip("%")
    if not IVA.fullmatch(text):
        raise InvalidInput("iva_rate: a percentage from 0 to 100 with at most 2 decimals, e.g. 21 or 10,5")
    value = Decimal(text.replace(",", "."))
    if value > 100:
        raise InvalidInput("iva_rate: a percentage from 0 to 100 with at most 2 decimals, e.g. 21 or 10,5")
    return value.quantize(Decimal("0.01"))


async def save_settings(db: Database, form: Mapping[str, str], *, actor: str) -> list[str]:
    """Check and save the settings page's form in one transaction (audited as `sales.settings` with what
    changed); `InvalidInput` with every problem, one per line, and nothing saved when any field is wrong.

    Fields: `iva_rate`, `validity_hours`, `cart_ttl_hours`, `freshness_hours` (0 = off), `series` (the series new orders take their
    number from), the letterhead (`seller_name`, `seller_cuit`, `seller_address`, `payment_instructions`,
    `invoice_series`) and, per series N, `prefix_N`, `width_N`, `next_N` (the next number may only grow: a
    lower one would repeat numbers already given). Returns the names of the fields that changed."""
    problems: list[str] = []
    values: dict[str, Any] = {}

    def check(name: str, parse: Any) -> None:
        try:
            values[name] = parse()
        except InvalidInput as exc:
            problems.append(exc.user_message)

    check("iva_rate", lambda: _iva(form.get("iva_rate", "")))
    check("validity_hours", lambda: _hours("validity_hours", form.get("validity_hours", "")))
    check("cart_ttl_hours", lambda: _hours("cart_ttl_hours", form.get("cart_ttl_hours", "")))
    check("freshness_hours", lambda: _freshness(form.get("freshness_hours", "0")))
    for name in FIELDS:  # one by one: every wrong field is reported
        try:
            values.update(clean({name: form.get(name, "")}))
        except InvalidInput as exc:
            problems.append(exc.user_message)
    now = utcnow()
    async with db.write() as session:
        current = (await session.execute(select(config).where(config.c.id == 1))).mappings().first()
        if current is None:
            raise InvalidInput("the sales settings row is missing: run `otklik migrate`")
        known = {str(r.name): r for r in (await session.execute(select(series))).all()}
        order_series = form.get("series", "").strip()
        if order_series not in known:
            problems.append(f"series: no series named {order_series[:32]!r}")
        else:
            values["series"] = order_series
        if values.get("invoice_series", "") not in known and "invoice_series" in values:
            problems.append(f"invoice_series: no series named {values['invoice_series'][:32]!r}")
        if values.get("series") and values.get("series") == values.get("invoice_series"):
            problems.append("series: orders and invoices need two different series")
        series_changes: dict[str, dict[str, Any]] = {}
        for name, row in known.items():
            given = {k: form.get(f"{k}_{name}") for k in ("prefix", "width", "next")}
            if all(v is None for v in given.values()):
                continue
            prefix = (given["prefix"] or "").strip().upper()
            if not SERIES_PREFIX.fullmatch(prefix):
                problems.append(f"{name}: the prefix must be 1-16 capital letters, digits, spaces or . _ / -")
            width_text, next_text = (given["width"] or "").strip(), (given["next"] or "").strip()
            if not re.fullmatch(r"\d{1,2}", width_text) or not 1 <= int(width_text) <= 12:
                problems.append(f"{name}: the width must be a whole number from 1 to 12")
            if not re.fullmatch(r"\d{1,12}", next_text) or int(next_text) < 1:
                problems.append(f"{name}: the next number must be a whole number from 1 to 999999999999")
            elif int(next_text) < int(row.next_value):
                problems.append(f"{name}: the next number can only grow (it is {row.next_value}): a lower one "
                                "would repeat numbers already given")  # fmt: skip
            change = {"prefix": prefix, "width": int(width_text) if width_text.isdigit() else 0,
                      "next_value": int(next_text) if next_text.isdigit() else 0}  # fmt: skip
            if (change["prefix"], change["width"], change["next_value"]) != (row.prefix, row.width, row.next_value):
                series_changes[name] = change
        prefixes = {name: series_changes.get(name, {}).get("prefix", row.prefix) for name, row in known.items()}
        if len(set(prefixes.values())) < len(prefixes):
            problems.append("two series cannot share a prefix: their numbers would look alike")
        if problems:
            raise InvalidInput("\n".join(dict.fromkeys(problems)))
        changed = {k: v for k, v in values.items() if current[k] != v}
        if changed:
            await session.execute(update(config).where(config.c.id == 1).values(**changed))
        for name, change in series_changes.items():
            # conditional on the value read: an order numbered meanwhile makes this refuse, not go back
            result = await session.execute(
                update(series).where(series.c.name == name, series.c.next_value <= change["next_value"])
                .values(**change)
            )  # fmt: skip
            if not getattr(result, "rowcount", 0):
                raise InvalidInput(f"{name}: a number was given meanwhile; reload the page")
        names = sorted(changed) + [f"series {n}" for n in sorted(series_changes)]
        if names:
            data = {k: {"from": _plain(current[k]), "to": _plain(v)} for k, v in changed.items()}
            data.update({f"series {n}": c for n, c in series_changes.items()})
            audit(session, actor, "sales.settings", "sales_config", 1, data, now=now)
    return names


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def check_logo(data: bytes) -> str:
    """The logo's content type (`image/png` or `image/jpeg`) when it is one the documents can show;
    `InvalidInput` with the reason otherwise (size, type, a broken or huge image, one fpdf cannot place)."""
    if not data:
        raise InvalidInput("logo: the file is empty")
    if len(data) > MAX_LOGO_BYTES:
        raise TooLarge(f"logo: the file is larger than {MAX_LOGO_BYTES // 1024} KB")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = "image/png"
    elif data.startswith(b"\xff\xd8\xff"):
        kind = "image/jpeg"
    else:
        raise InvalidInput("logo: a PNG or JPEG image, please (this file is neither)")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with fpdf2
        Image = None  # type: ignore[assignment]
    if Image is not None:
        try:
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                if width > MAX_LOGO_SIDE or height > MAX_LOGO_SIDE:
                    raise InvalidInput(f"logo: at most {MAX_LOGO_SIDE} × {MAX_LOGO_SIDE} pixels "
                                       f"(this one is {width} × {height})")  # fmt: skip
                if (probe.format or "").upper() not in ("PNG", "JPEG", "MPO"):
                    raise InvalidInput("logo: a PNG or JPEG image, please")
                probe.verify()
        except InvalidInput:
            raise
        except Exception as exc:  # Pillow raises many kinds on a broken file (and a decompression bomb)
            raise InvalidInput(f"logo: the image cannot be read ({type(exc).__name__})") from None
    try:  # what the documents will do with it
        from fpdf import FPDF

        pdf = FPDF()
        pdf.add_page()
        pdf.image(io.BytesIO(data), x=10, y=10, h=18)
    except Exception as exc:
        raise InvalidInput(f"logo: the documents cannot show this image ({type(exc).__name__})") from None
    return kind


async def set_logo(db: Database, media: MediaStore, data: bytes | None, *, actor: str) -> str:
    """Store the logo (checked with `check_logo`) and put it on the documents; `None` removes it. Audited as
    `sales.logo`. Returns the media id ("" when removed)."""
    media_id, size, kind = "", 0, ""
    if data is not None:
        kind = check_logo(data)
        stored = await media.save(data, kind, "logo.png" if kind == "image/png" else "logo.jpg")
        media_id, size = stored.media_id, stored.size
    now = utcnow()
    async with db.write() as session:
        before = await session.scalar(select(config.c.logo_media_id).where(config.c.id == 1))
        await session.execute(update(config).where(config.c.id == 1).values(logo_media_id=media_id))
        audit(session, actor, "sales.logo", "sales_config", 1,
              {"from": before or "", "to": media_id, "size": size, "type": kind}, now=now)  # fmt: skip
    return media_id
