"""Orders: made from a confirmed cart summary, numbered from a series, with their life cycle.

Service API (every function runs on the caller's transaction: a `QuickTx`, or an ORM session through
`repo.as_tx`):

- `create_from_cart(tx, cart, summary, customer, now, actor)` → `Order`: takes the next number of the series,
  copies the lines with the prices of the summary the buyer confirmed, keeps the financing plan and the
  customer data, reserves the stock, closes the cart's generation, writes the first history row — then calls
  `after_confirmation` in the same transaction. One order per (cart, generation), enforced by a unique
  constraint: a second "Confirmar" finds the order made by the first.
- `set_status(tx, order_id, to, actor, now, note="")` → `Order`: confirmed → pre_invoiced → paid →
  invoiced, or cancelled (from confirmed, pre_invoiced, paid); each change is a history row. Admin changes
  also go to the audit log (the admin route writes it).
- `get_by_number(tx, number)`, `get(tx, order_id)`, `latest_for_contact(tx, contact_id)`, `lines_of`,
  `history_of`.
- `next_number(tx, series)`: `UPDATE sales_series SET next_value = next_value + 1 … RETURNING`, serialised by
  the row lock on PostgreSQL and by the write lock on SQLite: no duplicates, no gaps among committed orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from otklik.capabilities.sales.cart import Cart, Summary, close_generation
from otklik.capabilities.sales.models import order_history, order_lines, orders, payments, products, series
from otklik.conversations.timers import QuickTx
from otklik.core.errors import InvalidInput
from otklik.platform.webhooks import emit

CONFIRMED, PRE_INVOICED, PAID, INVOICED, CANCELLED = "confirmed", "pre_invoiced", "paid", "invoiced", "cancelled"
PARTIALLY_PAID = "partially_paid"  # some payments, less than the total (the balance is the total minus them)
STATUSES = (CONFIRMED, PRE_INVOICED, PARTIALLY_PAID, PAID, INVOICED, CANCELLED)
NEXT: dict[str, frozenset[str]] = {
    CONFIRMED: frozenset({PRE_INVOICED, PARTIALLY_PAID, PAID, CANCELLED}),
    PRE_INVOICED: frozenset({PARTIALLY_PAID, PAID, CANCELLED}),
    PARTIALLY_PAID: frozenset({PAID, CANCELLED}),
    PAID: frozenset({INVOICED, CANCELLED}),
    INVOICED: frozenset(),
    CANCELLED: frozenset(),
}


class StockChanged(InvalidInput):
    """A line's stock went below its quantity between the check and the reservation (another buyer)."""


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    number: str
    status: str
    currency: str
    subtotal: Decimal
    iva: Decimal
    iva_rate: Decimal
    total: Decimal
    plan: dict[str, Any] | None
    customer: dict[str, Any]
    valid_until: datetime
    created_at: datetime
    updated_at: datetime
    conversation_id: int | None
    contact_id: int | None
    assignee_id: int | None = None
    created: bool = False  # made by this call (False: the cart's generation had its order already)
    to_check: list[str] | None = None  # SKUs "sujeto a confirmación": no pre-invoice until an executive confirms


_TAKE = (
    update(series)
    .where(series.c.name == bindparam("series"))
    .values(next_value=series.c.next_value + 1)
    .returning(series.c.prefix, series.c.width, series.c.next_value)
)
_BY_CART = select(orders).where(orders.c.cart_id == bindparam("cart_id"), orders.c.cart_generation == bindparam("gen"))
_BY_NUMBER = select(orders).where(orders.c.number == bindparam("number"))
_BY_ID = select(orders).where(orders.c.id == bindparam("order_id"))
_LATEST = select(orders).where(orders.c.contact_id == bindparam("contact_id")).order_by(orders.c.id.desc()).limit(1)
_NEW = insert(orders)
_NEW_LINE = insert(order_lines)
_NEW_HISTORY = insert(order_history)
_RESERVE = (
    update(products)
    .where(products.c.id == bindparam("product_id"), products.c.stock >= bindparam("quantity"))
    .values(stock=products.c.stock - bindparam("quantity"))
)
_RELEASE = (
    update(products)
    .where(products.c.id == bindparam("product_id"))
    .values(stock=products.c.stock + bindparam("quantity"))
)
_STATUS = (
    update(orders)
    .where(orders.c.id == bindparam("order_id"), orders.c.status == bindparam("was"))
    .values(status=bindparam("b_status"), updated_at=bindparam("now"))
)
_LINES = select(order_lines).where(order_lines.c.order_id == bindparam("order_id")).order_by(order_lines.c.id)
_PAYMENTS = select(payments).where(payments.c.order_id == bindparam("order_id")).order_by(payments.c.id)
_HISTORY = select(order_history).where(order_history.c.order_id == bindparam("order_id")).order_by(order_history.c.id)


def _order(row: Any, created: bool = False) -> Order:
    return Order(
        int(row.id), str(row.number), str(row.status), str(row.currency), Decimal(row.subtotal), Decimal(row.iva),
        Decimal(row.iva_rate), Decimal(row.total), row.plan, dict(row.customer or {}), row.valid_until,
        row.created_at, row.updated_at, row.conversation_id, row.contact_id,
        None if row.assignee_id is None else int(row.assignee_id), created, list(row.to_check) if row.to_check else None,
    )  # fmt: skip


async def next_number(tx: QuickTx, series_name: str = "PV") -> str:
    rows = await tx.fetch(_TAKE, {"series": series_name})
    if not rows:
        raise InvalidInput(f"no order number series {series_name!r}")
    prefix, width, after = rows[0]
    return f"{prefix}{int(after) - 1:0{int(width)}d}"


async def get(tx: QuickTx, order_id: int) -> Order | None:
    rows = await tx.fetch(_BY_ID, {"order_id": order_id})
    return _order(rows[0]) if rows else None


async def get_by_number(tx: QuickTx, number: str) -> Order | None:
    rows = await tx.fetch(_BY_NUMBER, {"number": number.strip().upper()[:40]})
    return _order(rows[0]) if rows else None


async def latest_for_contact(tx: QuickTx, contact_id: int) -> Order | None:
    rows = await tx.fetch(_LATEST, {"contact_id": contact_id})
    return _order(rows[0]) if rows else None


async def for_cart(tx: QuickTx, cart_id: int, generation: int) -> Order | None:
    rows = await tx.fetch(_BY_CART, {"cart_id": cart_id, "gen": generation})
    return _order(rows[0]) if rows else None


async def lines_of(tx: QuickTx, order_id: int) -> list[dict[str, Any]]:
    return [dict(r._asdict()) for r in await tx.fetch(_LINES, {"order_id": order_id})]


async def history_of(tx: QuickTx, order_id: int) -> list[dict[str, Any]]:
    return [dict(r._asdict()) for r in await tx.fetch(_HISTORY, {"order_id": order_id})]


async def create_from_cart(
    tx: QuickTx,
    cart: Cart,
    summary: Summary,
    customer: dict[str, Any],
    now: datetime,
    *,
    series_name: str = "PV",
    actor: str = "buyer",
) -> Order:
    """The order of the summary the buyer confirmed (the caller checked it equals the live one)."""
    existing = await for_cart(tx, cart.id, cart.generation)
    if existing is not None:
        return existing
    if not summary.lines:
        raise InvalidInput("an empty cart cannot become an order")
    # Reserve the stock; another buyer may have taken it since the check. In product order (two carts holding
    # the same products never wait on each other crosswise); a line that no longer fits gives back the lines
    # already taken before refusing: the caller shows a new summary and its step still commits.
    taken: list[dict[str, Any]] = []
    for line in sorted(summary.lines, key=lambda ln: int(ln["product_id"])):
        reserved = {"product_id": line["product_id"], "quantity": line["quantity"]}
        if await tx.execute(_RESERVE, reserved) != 1:
            for back in taken:
                await tx.execute(_RELEASE, back)
            raise StockChanged(f"the stock of {line['sku']} changed")
        taken.append(reserved)
    number = await next_number(tx, series_name)
    values = {
        "number": number, "cart_id": cart.id, "cart_generation": cart.generation,
        "conversation_id": cart.conversation_id, "contact_id": cart.contact_id, "status": CONFIRMED,
        "currency": summary.currency, "subtotal": summary.subtotal, "iva": summary.iva,
        "iva_rate": summary.iva_rate, "total": summary.total, "plan": summary.plan, "customer": customer,
        "valid_until": summary.valid_until, "created_at": now, "updated_at": now, "to_check": summary.stale or None,
    }  # fmt: skip
    order_id = await tx.insert_id(_NEW, values)
    for line in summary.lines:
        await tx.execute(_NEW_LINE, {
            "order_id": order_id, "product_id": line["product_id"], "sku": line["sku"], "name": line["name"],
            "quantity": line["quantity"], "unit_price": Decimal(line["unit_price"]),
            "prices_include_iva": line["include_iva"], "line_total": Decimal(line["line_total"]),
        })  # fmt: skip
    await _history(tx, order_id, None, CONFIRMED, actor, "", now)
    await close_generation(tx, cart, now)
    order = await get(tx, order_id)
    assert order is not None
    order = Order(**{**{f: getattr(order, f) for f in Order.__dataclass_fields__}, "created": True})
    await after_confirmation(tx, order, now)
    return order


async def event_data(tx: QuickTx, order: Order) -> dict[str, Any]:
    """The `data` of the `order.*` webhooks (docs/sales.md "Webhooks"): money as strings, never floats."""
    lines = await lines_of(tx, order.id)
    return {
        "number": order.number,
        "status": order.status,
        "currency": order.currency,
        "subtotal": str(order.subtotal),
        "iva_rate": str(order.iva_rate),
        "iva": str(order.iva),
        "total": str(order.total),
        "lines": [
            {
                "sku": ln["sku"],
                "name": ln["name"],
                "quantity": int(ln["quantity"]),
                "unit_price": str(Decimal(ln["unit_price"])),
                "prices_include_iva": bool(ln["prices_include_iva"]),
                "line_total": str(Decimal(ln["line_total"])),
            }
            for ln in lines
        ],
        "customer": order.customer,
        "plan": order.plan,
        "contact_id": order.contact_id,
        "conversation_id": order.conversation_id,
        "created_at": order.created_at,
        "valid_until": order.valid_until,
    }


async def payments_of(tx: QuickTx, order_id: int) -> list[dict[str, Any]]:
    return [dict(r._asdict()) for r in await tx.fetch(_PAYMENTS, {"order_id": order_id})]


def _payment_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"amount": str(Decimal(row["amount"])), "reference": row["reference"],
            "invoice_number": row["invoice_number"], "at": row["created_at"]}  # fmt: skip


async def payment_data(tx: QuickTx, order: Order) -> dict[str, Any]:
    """`event_data` with the payments: `payment` (the latest), `payments` (all, oldest first), `paid` and
    `balance` (money as strings)."""
    data = await event_data(tx, order)
    rows = await payments_of(tx, order.id)
    paid = sum((Decimal(r["amount"]) for r in rows), Decimal("0.00"))
    if rows:
        data["payment"] = _payment_view(rows[-1])
    data["payments"] = [_payment_view(r) for r in rows]
    data["paid"], data["balance"] = str(paid), str(order.total - paid)
    return data


async def note(tx: QuickTx, order_id: int, actor: str, now: datetime, text: str) -> None:
    """A history row that changes no status (a payment on a partially paid order, a reassignment)."""
    order = await get(tx, order_id)
    if order is not None:
        await _history(tx, order_id, order.status, order.status, actor, text, now)


_CHECKED = (
    update(orders).where(orders.c.id == bindparam("order_id"), orders.c.to_check.is_not(None))
    .values(to_check=None, updated_at=bindparam("now"))
)  # fmt: skip


async def confirm_check(tx: QuickTx, order_id: int, actor: str, now: datetime) -> Order:
    """An executive confirmed the price and stock of the lines quoted "sujeto a confirmación": the pre-invoice
    may go out (the worker's next pass). `InvalidInput` when there was nothing to confirm (or already done)."""
    order = await get(tx, order_id)
    if order is None or not order.to_check or order.status == CANCELLED:
        raise InvalidInput("this order has nothing waiting for a confirmation")
    if await tx.execute(_CHECKED, {"order_id": order_id, "now": now}) != 1:
        raise InvalidInput("this order has nothing waiting for a confirmation")
    await _history(tx, order_id, order.status, order.status, actor,
                   "precio y stock confirmados: " + ", ".join(order.to_check), now)  # fmt: skip
    done = await get(tx, order_id)
    assert done is not None
    return done


def subject_of(order: Order) -> str:
    """The webhook subject that keeps one order's events in order for each receiver."""
    return f"order:{order.number}"


async def after_confirmation(tx: QuickTx, order: Order, now: datetime) -> None:
    """Runs in the transaction that made the order (a failure undoes the order too); no I/O here — this runs
    inside the quick flow action `sales.turn`.

    - the outgoing webhook `order.confirmed` (`emit`: the event and its deliveries are rows of this
      transaction, sent by the webhook worker once it commits);
    - the rest is durable work keyed on the order row itself, done by the worker's `sales-orders` job
      (`fulfil.py`): the executive's assignment and notification (`assigned_at` still null), then the
      pre-invoice PDF (rendering is CPU work of tens of milliseconds and more for long orders: it is kept out of
      the buyer's turn), sent on the conversation's channel through the outbox, status `pre_invoiced`."""
    await emit(tx, "order.confirmed", await event_data(tx, order), now=now, subject=subject_of(order))


async def after_status(tx: QuickTx, order: Order, previous: str, now: datetime) -> None:
    """Runs in the transaction of every status change: `order.paid` and `order.cancelled` (with the stock
    returned to the catalog) go out as webhooks; the invoice after a payment is the `sales-orders` job's."""
    if order.status == PAID:
        data = await payment_data(tx, order)
        await emit(tx, "order.paid", data, now=now, subject=subject_of(order))
    elif order.status == CANCELLED:
        data = await event_data(tx, order)
        data["previous_status"] = previous
        data["stock_returned"] = [{"sku": ln["sku"], "quantity": ln["quantity"]} for ln in data["lines"]]
        await emit(tx, "order.cancelled", data, now=now, subject=subject_of(order))


async def _history(
    tx: QuickTx, order_id: int, was: str | None, status: str, actor: str, note: str, now: datetime
) -> None:
    await tx.execute(_NEW_HISTORY, {"order_id": order_id, "from_status": was, "to_status": status,
                                    "actor": actor[:120], "note": note[:500], "at": now})  # fmt: skip


async def set_status(tx: QuickTx, order_id: int, status: str, actor: str, now: datetime, note: str = "") -> Order:
    """Move the order to `status` if its life cycle allows it (else `InvalidInput`, nothing written)."""
    order = await get(tx, order_id)
    if order is None:
        raise InvalidInput("no such order")
    if status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}")
    if status not in NEXT[order.status]:
        raise InvalidInput(f"an order {order.status} cannot become {status}")
    params = {"order_id": order_id, "was": order.status, "b_status": status, "now": now}
    if await tx.execute(_STATUS, params) != 1:
        raise InvalidInput("the order changed meanwhile; reload it")
    await _history(tx, order_id, order.status, status, actor, note, now)
    if status == CANCELLED:  # the reserved stock goes back
        for line in await lines_of(tx, order_id):
            if line["product_id"] is not None:
                await tx.execute(_RELEASE, {"product_id": line["product_id"], "quantity": line["quantity"]})
    changed = await get(tx, order_id)
    assert changed is not None
    await after_status(tx, changed, order.status, now)
    return changed
