"""The cart of a conversation and its summary, on the step's transaction (`QuickTx`; an ORM session through
`repo.as_tx`). Prices and stock are always read from the live product rows, never kept in the cart: a
cart line is (product, quantity).

The summary is computed from the live rows and stored on the cart (`summary`) with the cart's `version`;
"Confirmar" carries that version. At confirmation the summary is computed again: if any line, price, stock,
the plan or the validity differs from what was shown, a new summary is shown instead of an order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from otklik.capabilities.sales import pricing
from otklik.capabilities.sales.models import cart_lines, carts, config, products, sync_runs
from otklik.conversations.timers import QuickTx

MAX_QUANTITY = 100_000  # a line above this is refused outright ("un millón")
MAX_LINES = 30


@dataclass(frozen=True, slots=True)
class Config:
    iva_rate: Decimal = Decimal(21)
    validity_hours: int = 48
    cart_ttl_hours: int = 72
    series: str = "PV"
    freshness_hours: int = 0  # 0: every stored row is quoted as is


@dataclass(frozen=True, slots=True)
class Cart:
    id: int
    conversation_id: int
    contact_id: int
    generation: int
    version: int
    summary: dict[str, Any] | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Line:
    product: dict[str, Any]  # the live row
    quantity: int


@dataclass(slots=True)
class Summary:
    lines: list[dict[str, Any]]
    currency: str
    subtotal: Decimal
    iva: Decimal
    iva_rate: Decimal
    total: Decimal
    plan: dict[str, Any] | None
    valid_until: datetime
    notes: list[str] = field(default_factory=list)  # what had to change (stock dropped, product gone)

    def comparable(self) -> dict[str, Any]:
        """What a confirmation must find unchanged."""
        return {
            "lines": [{k: ln[k] for k in ("product_id", "sku", "quantity", "unit_price", "include_iva")}
                      for ln in self.lines],
            "total": str(self.total), "iva_rate": str(self.iva_rate), "currency": self.currency, "plan": self.plan,
        }  # fmt: skip

    @property
    def stale(self) -> list[str]:
        """The SKUs quoted from a row older than the configured freshness ("sujeto a confirmación")."""
        return [str(ln["sku"]) for ln in self.lines if ln.get("stale")]

    def to_json(self, version: int, generation: int) -> dict[str, Any]:
        return {
            **self.comparable(),
            "stale": self.stale,
            "names": {ln["sku"]: ln["name"] for ln in self.lines},
            "subtotal": str(self.subtotal), "iva": str(self.iva), "valid_until": self.valid_until.isoformat(),
            "version": version, "generation": generation,
        }  # fmt: skip


def _dicts(rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(r._asdict()) for r in rows]


_CONFIG = select(config).where(config.c.id == 1)
_CART = select(carts).where(carts.c.conversation_id == bindparam("conversation_id"))
_CART_BY_ID = select(carts).where(carts.c.id == bindparam("cart_id"))
_NEW_CART = insert(carts)
_LINES = (
    select(cart_lines.c.quantity, products)
    .join(products, products.c.id == cart_lines.c.product_id)
    .where(cart_lines.c.cart_id == bindparam("cart_id"))
    .order_by(cart_lines.c.id)
)
_LINE = select(cart_lines.c.quantity).where(
    cart_lines.c.cart_id == bindparam("cart_id"), cart_lines.c.product_id == bindparam("product_id")
)
_SET_LINE = (
    update(cart_lines)
    .where(cart_lines.c.cart_id == bindparam("b_cart"), cart_lines.c.product_id == bindparam("b_product"))
    .values(quantity=bindparam("b_quantity"))
)
_ADD_LINE = insert(cart_lines)
_DROP_LINE = delete(cart_lines).where(
    cart_lines.c.cart_id == bindparam("cart_id"), cart_lines.c.product_id == bindparam("product_id")
)
_CLEAR = delete(cart_lines).where(cart_lines.c.cart_id == bindparam("cart_id"))
_TOUCH = (
    update(carts)
    .where(carts.c.id == bindparam("cart_id"))
    .values(version=carts.c.version + 1, updated_at=bindparam("now"), expires_at=bindparam("expires"))
)
_SAVE_SUMMARY = (
    update(carts)
    .where(carts.c.id == bindparam("cart_id"))
    .values(version=bindparam("b_version"), summary=bindparam("b_summary"), updated_at=bindparam("now"))
)
_NEXT_GENERATION = (
    update(carts)
    .where(carts.c.id == bindparam("cart_id"), carts.c.generation == bindparam("b_generation"))
    .values(
        generation=carts.c.generation + 1,
        version=carts.c.version + 1,
        summary=None,
        expires_at=None,
        updated_at=bindparam("now"),
    )
)
PRODUCT = select(products).where(products.c.id == bindparam("product_id"))


async def load_config(tx: QuickTx) -> Config:
    rows = await tx.fetch(_CONFIG)
    if not rows:
        return Config()
    row = rows[0]
    return Config(Decimal(row.iva_rate), int(row.validity_hours), int(row.cart_ttl_hours), str(row.series),
                  int(row.freshness_hours))  # fmt: skip


def _cart(row: Any) -> Cart:
    return Cart(int(row.id), int(row.conversation_id), int(row.contact_id), int(row.generation), int(row.version),
                row.summary, row.expires_at)  # fmt: skip


async def get(tx: QuickTx, conversation_id: int) -> Cart | None:
    rows = await tx.fetch(_CART, {"conversation_id": conversation_id})
    return _cart(rows[0]) if rows else None


async def by_id(tx: QuickTx, cart_id: int) -> Cart | None:
    rows = await tx.fetch(_CART_BY_ID, {"cart_id": cart_id})
    return _cart(rows[0]) if rows else None


async def ensure(tx: QuickTx, conversation_id: int, contact_id: int, now: datetime) -> Cart:
    found = await get(tx, conversation_id)
    if found is not None:
        return found
    values = {"conversation_id": conversation_id, "contact_id": contact_id, "generation": 1, "version": 0,
              "summary": None, "created_at": now, "updated_at": now, "expires_at": None}  # fmt: skip
    cart_id = await tx.insert_id(_NEW_CART, values)
    return Cart(cart_id, conversation_id, contact_id, 1, 0, None, None)


async def lines(tx: QuickTx, cart_id: int) -> list[Line]:
    rows = _dicts(await tx.fetch(_LINES, {"cart_id": cart_id}))
    return [Line({k: v for k, v in r.items() if k != "quantity"}, int(r["quantity"])) for r in rows]


async def product(tx: QuickTx, product_id: int) -> dict[str, Any] | None:
    rows = _dicts(await tx.fetch(PRODUCT, {"product_id": product_id}))
    return rows[0] if rows else None


async def quantity_of(tx: QuickTx, cart_id: int, product_id: int) -> int:
    rows = await tx.fetch(_LINE, {"cart_id": cart_id, "product_id": product_id})
    return int(rows[0][0]) if rows else 0


async def touch(tx: QuickTx, cart: Cart, cfg: Config, now: datetime, *, empty: bool = False) -> None:
    expires = None if empty else now + timedelta(hours=cfg.cart_ttl_hours)
    await tx.execute(_TOUCH, {"cart_id": cart.id, "now": now, "expires": expires})


async def set_quantity(tx: QuickTx, cart: Cart, product_id: int, quantity: int, cfg: Config, now: datetime) -> None:
    """The line's quantity (0 removes it); the caller checked the quantity against the stock."""
    params = {"cart_id": cart.id, "product_id": product_id}
    if quantity <= 0:
        await tx.execute(_DROP_LINE, params)
    elif await tx.execute(_SET_LINE, {"b_cart": cart.id, "b_product": product_id, "b_quantity": quantity}) == 0:
        await tx.execute(_ADD_LINE, {**params, "quantity": quantity, "added_at": now})
    await touch(tx, cart, cfg, now, empty=not await lines(tx, cart.id))


async def clear(tx: QuickTx, cart: Cart, cfg: Config, now: datetime) -> None:
    await tx.execute(_CLEAR, {"cart_id": cart.id})
    await touch(tx, cart, cfg, now, empty=True)


async def close_generation(tx: QuickTx, cart: Cart, now: datetime) -> bool:
    """The cart became an order or expired: its lines go, the next generation starts. False when another
    step closed this generation first."""
    if await tx.execute(_NEXT_GENERATION, {"cart_id": cart.id, "b_generation": cart.generation, "now": now}) != 1:
        return False
    await tx.execute(_CLEAR, {"cart_id": cart.id})
    return True


def plan_of(variables: Any) -> dict[str, Any] | None:
    """The financing plan the buyer chose in this conversation (flow variables `financing.chosen` and
    `financing.plan`, written by the financing simulator), as the summary and the order keep it."""
    financing = variables.get("financing") if hasattr(variables, "get") else None
    if not isinstance(financing, dict) or not financing.get("chosen") or not isinstance(financing.get("plan"), dict):
        return None
    plan = financing["plan"]
    keep = ("installments", "installment", "last_installment", "total", "interest", "cftea")
    return {"installments": financing["chosen"], "amount": str(financing.get("amount") or ""),
            "table": str(financing.get("table") or ""), **{k: plan.get(k) for k in keep if k in plan}}  # fmt: skip


_LAST_SYNC = select(func.max(sync_runs.c.finished_at)).where(sync_runs.c.status == "ok")


async def stale_before(tx: QuickTx, cfg: Config, now: datetime) -> datetime | None:
    """A product row last refreshed before this is quoted "sujeto a confirmación" (None: freshness is off,
    or the last successful catalog sync is recent enough to vouch for every row). A row is refreshed when
    an import or a sync writes it (`updated_at`) — and by a successful sync that found it unchanged, which
    does not rewrite it: so the newest successful sync run also counts."""
    if cfg.freshness_hours <= 0:
        return None
    cutoff = now - timedelta(hours=cfg.freshness_hours)
    rows = await tx.fetch(_LAST_SYNC)
    synced = rows[0][0] if rows else None
    if synced is not None and synced >= cutoff:
        return None
    return cutoff


def is_stale(row: Mapping[str, Any], cutoff: datetime | None) -> bool:
    return cutoff is not None and row.get("updated_at") is not None and row["updated_at"] < cutoff


async def summarise(
    tx: QuickTx, cart: Cart, cfg: Config, now: datetime, plan: dict[str, Any] | None, *, fix: bool
) -> Summary:
    """The cart as it stands on the live rows. A line whose product is inactive or out of stock is dropped,
    one above the stock is lowered to it; with `fix` the cart is changed accordingly (the notes say what)."""
    found = await lines(tx, cart.id)
    cutoff = await stale_before(tx, cfg, now) if found else None
    kept: list[dict[str, Any]] = []
    notes: list[str] = []
    currency = ""
    for line in found:
        row, qty = line.product, line.quantity
        sku, name, stock = str(row["sku"]), str(row["name"]), int(row["stock"])
        if not row["active"] or stock <= 0:
            notes.append(f"{name} ({sku}) ya no tiene stock: lo saqué del carrito.")
            if fix:
                await set_quantity(tx, cart, int(row["id"]), 0, cfg, now)
            continue
        if stock < qty:
            notes.append(f"De {name} ({sku}) quedan {stock} unidades: ajusté la cantidad de {qty} a {stock}.")
            qty = stock
            if fix:
                await set_quantity(tx, cart, int(row["id"]), qty, cfg, now)
        price = pricing.cents(Decimal(row["price"]))
        currency = currency or str(row["currency"])
        kept.append({
            "product_id": int(row["id"]), "sku": sku, "name": name, "quantity": qty, "unit_price": str(price),
            "include_iva": bool(row["prices_include_iva"]), "line_total": str(pricing.line_total(price, qty)),
            "currency": str(row["currency"]), "stale": is_stale(row, cutoff),
        })  # fmt: skip
    sums = pricing.totals(((Decimal(ln["line_total"]), ln["include_iva"]) for ln in kept), cfg.iva_rate)
    return Summary(kept, currency or "ARS", sums.subtotal, sums.iva, cfg.iva_rate, sums.total, plan,
                   now + timedelta(hours=cfg.validity_hours), notes)  # fmt: skip


async def save_summary(tx: QuickTx, cart: Cart, summary: Summary, now: datetime) -> int:
    """Store what is shown; returns the version the "Confirmar" button must carry."""
    version = cart.version + 1
    snapshot = summary.to_json(version, cart.generation)
    await tx.execute(_SAVE_SUMMARY, {"cart_id": cart.id, "b_version": version, "b_summary": snapshot, "now": now})
    return version


def differences(old: dict[str, Any], new: Summary) -> list[str]:
    """What changed between a shown summary and the live one, in the buyer's words."""
    out: list[str] = []
    before = {ln["sku"]: ln for ln in old.get("lines", [])}
    after = {ln["sku"]: ln for ln in new.lines}
    for sku, line in after.items():
        was = before.get(sku)
        if was is None:
            out.append(f"se agregó {line['name']} ({sku})")
            continue
        if was["unit_price"] != line["unit_price"]:
            currency = line["currency"]
            out.append(f"el precio de {line['name']} ({sku}) pasó de "
                       f"{pricing.money(Decimal(was['unit_price']), currency)} a "
                       f"{pricing.money(Decimal(line['unit_price']), currency)}")  # fmt: skip
        if was["quantity"] != line["quantity"]:
            out.append(f"la cantidad de {sku} pasó de {was['quantity']} a {line['quantity']}")
    for sku in before.keys() - after.keys():
        out.append(f"{old.get('names', {}).get(sku, sku)} ({sku}) ya no está en el carrito")
    if old.get("plan") != new.plan:
        out.append("cambió el plan de financiación")
    if old.get("iva_rate") != str(new.iva_rate):
        out.append("cambió la alícuota de IVA")
    return out
