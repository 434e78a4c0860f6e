"""In-stock alternatives to a product (typically one out of stock): same category, closest attributes, price
within a band, with the reason in Spanish ("misma resolución, lente 2.8 mm en lugar de 3.6 mm").

Candidates: active, stock > 0, same category (compared folded: "Cámaras" = "camaras"), same currency, price
within `band` of the product's (default ±30 %), never the product itself. Ranking: the weighted share of the
compared attributes that are equal (an attribute either side has counts; one side only counts as a
difference), then the closer price, then the sku.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.sales.models import products
from otklik.capabilities.sales.search import TECH, canonical_value, describe, fold, vocabulary

WEIGHTS: dict[str, float] = {
    "tech": 3, "resolution": 3, "channels": 3, "capacity": 3, "type": 2, "form": 2, "lens_mm": 1,
    "outdoor": 1, "poe": 1,
}  # fmt: skip
BAND = Decimal("0.30")
SAME = {
    "tech": "misma tecnología", "resolution": "misma resolución", "channels": "mismos canales",
    "capacity": "misma capacidad", "type": "mismo tipo", "form": "mismo formato", "lens_mm": "misma lente",
    "outdoor": "mismo uso", "poe": "mismo PoE",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Alternative:
    product: dict[str, Any]
    same: list[str]
    differs: list[str]
    score: float

    @property
    def reason(self) -> str:
        return ", ".join([*self.same, *self.differs])


def _value(key: str, value: str) -> str:
    """An attribute value as the reply says it (without its label)."""
    if key == "lens_mm":
        return f"{value} mm"
    if key == "tech":
        return TECH.get(value, value)
    return value


def _differs(key: str, new: str | None, old: str | None) -> str:
    if new is None or old is None:
        shown = new if new is not None else old
        assert shown is not None
        return f"sin dato de {describe(key, shown).split(' ')[0]}" if new is None else f"{describe(key, new)}"
    if key in ("outdoor", "poe"):
        return f"{describe(key, new)} en lugar de {describe(key, old)}"
    if key == "channels":
        return f"{new} canales en lugar de {old}"
    label = describe(key, new).removesuffix(_value(key, new)).strip()
    return f"{label} {_value(key, new)} en lugar de {_value(key, old)}".strip()


def compare(
    product: Mapping[str, Any], other: Mapping[str, Any], weights: Mapping[str, float]
) -> tuple[float, list[str], list[str]]:
    vocab = vocabulary()
    mine = {
        str(k).lower(): canonical_value(str(k).lower(), str(v), vocab) for k, v in (product["attributes"] or {}).items()
    }
    theirs = {
        str(k).lower(): canonical_value(str(k).lower(), str(v), vocab) for k, v in (other["attributes"] or {}).items()
    }
    same: list[str] = []
    differs: list[str] = []
    total = equal = 0.0
    for key, weight in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
        if weight <= 0 or (key not in mine and key not in theirs):
            continue
        total += weight
        if mine.get(key) == theirs.get(key):
            equal += weight
            same.append(describe(key, mine[key]) if key in ("outdoor", "poe") else SAME.get(key, f"mismo {key}"))
        else:
            differs.append(_differs(key, theirs.get(key), mine.get(key)))
    return (equal / total if total else 0.0), same, differs


async def similar(
    session: AsyncSession,
    product: Mapping[str, Any],
    weights: Mapping[str, float] | None = None,
    *,
    band: Decimal = BAND,
    limit: int = 3,
) -> list[Alternative]:
    """The in-stock products most like `product` (a row of `sales_products`), best first."""
    price = Decimal(product["price"])
    low, high = price * (1 - band), price * (1 + band)
    query = select(products).where(
        products.c.active.is_(True), products.c.stock > 0, products.c.id != product["id"],
        products.c.currency == product["currency"], products.c.price >= low, products.c.price <= high,
    )  # fmt: skip
    rows = [dict(r) for r in (await session.execute(query)).mappings()]
    return rank(product, rows, weights, band=band, limit=limit)


def rank(
    product: Mapping[str, Any],
    rows: list[dict[str, Any]],
    weights: Mapping[str, float] | None = None,
    *,
    band: Decimal = BAND,
    limit: int = 3,
) -> list[Alternative]:
    """The rule on rows already read (the query pre-filters; every condition is checked again here)."""
    weights = WEIGHTS if weights is None else weights
    price = Decimal(product["price"])
    low, high = price * (1 - band), price * (1 + band)
    category = fold(str(product["category"])).strip()
    found: list[Alternative] = []
    for row in rows:
        if (
            not row["active"] or int(row["stock"]) <= 0 or row["id"] == product["id"] or row["sku"] == product["sku"]
            or row["currency"] != product["currency"] or not low <= Decimal(row["price"]) <= high
            or fold(str(row["category"])).strip() != category
        ):  # fmt: skip
            continue
        score, same, differs = compare(product, row, weights)
        found.append(Alternative(row, same, differs, round(score, 3)))
    found.sort(key=lambda a: (-a.score, abs(Decimal(a.product["price"]) - price), str(a.product["sku"])))
    return found[: max(0, limit)]
