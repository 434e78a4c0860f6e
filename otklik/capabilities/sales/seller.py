"""The seller's letterhead on the pre-invoice and the invoice (name, CUIT, address, payment instructions) and
the series our invoices are numbered in: the `sales_config` row, set with `otklik catalog seller`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from otklik.adapters.db.engine import Database
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
