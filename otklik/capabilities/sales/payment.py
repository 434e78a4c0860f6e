"""Recording a payment of an order (the payments API and the admin share it): partial payments, the
balance, idempotency by reference, overpayment refused; the order becomes `partially_paid` while a balance
remains and `paid` when the payments reach the total (then the `sales-orders` job sends the invoice).

`record(session, number, amount, reference, actor, now, invoice_number=None, invoice=None) -> Recorded` runs
in the caller's write transaction (which it locks the order in: `FOR UPDATE` on PostgreSQL, the write lock on
SQLite) and raises `Refused(status, code, message)`; nothing is written when it raises.

- `reference` (optional): a payment with a reference already recorded on this order is a repeat — nothing
  changes, `Recorded.repeated` (the caller answers 200).
- an order cancelled, or paid / invoiced already → 409; an amount over the balance → 422 (overpayment).
- the ERP's invoice (`invoice_number` + the stored PDF) only with the payment that completes the total.
- each partial payment: a history row (the first moves `confirmed`/`pre_invoiced` → `partially_paid`), the
  audit entry `sales.order_payment` and the webhook `order.partially_paid` (with `payment`, `payments`,
  `paid`, `balance`); the completing one: status `paid`, `sales.order_paid`, `order.paid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.media import StoredMedia
from otklik.capabilities.sales import orders
from otklik.capabilities.sales.models import documents, payments
from otklik.capabilities.sales.models import orders as order_table
from otklik.capabilities.sales.pricing import money
from otklik.conversations.repo import as_tx
from otklik.core.errors import InvalidInput
from otklik.platform.audit import audit
from otklik.platform.webhooks import emit

PAYABLE = (orders.CONFIRMED, orders.PRE_INVOICED, orders.PARTIALLY_PAID)


class Refused(InvalidInput):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True, slots=True)
class Recorded:
    order: orders.Order
    payment: dict[str, Any]
    paid: Decimal
    balance: Decimal
    repeated: bool

    def to_json(self) -> dict[str, Any]:
        p = self.payment
        return {"number": self.order.number, "status": self.order.status, "repeated": self.repeated,
                "paid": str(self.paid), "balance": str(self.balance),
                "payment": {"amount": str(Decimal(p["amount"])), "reference": p["reference"],
                            "invoice_number": p["invoice_number"]}}  # fmt: skip


def balance_of(order: orders.Order, rows: list[dict[str, Any]]) -> tuple[Decimal, Decimal]:
    paid = sum((Decimal(r["amount"]) for r in rows), Decimal("0.00"))
    return paid, order.total - paid


async def record(
    session: AsyncSession, number: str, amount: Decimal, reference: str, actor: str, now: datetime, *,
    invoice_number: str | None = None, invoice: StoredMedia | None = None,
) -> Recorded:  # fmt: skip
    tx = as_tx(session)
    order = await orders.get_by_number(tx, number[:40])
    if order is None:
        raise Refused(404, "not_found", f"no order {number[:40]!r}")
    if session.get_bind().dialect.name == "postgresql":  # serialise two reports of one order
        await session.execute(select(order_table.c.id).where(order_table.c.id == order.id).with_for_update())
        order = await orders.get(tx, order.id)
        assert order is not None
    rows = await orders.payments_of(tx, order.id)
    paid, balance = balance_of(order, rows)
    if reference:
        same = next((r for r in rows if r["reference"] == reference), None)
        if same is not None:
            return Recorded(order, same, paid, balance, True)
    if order.status == orders.CANCELLED:
        raise Refused(409, "conflict", f"the order {order.number} is cancelled")
    if order.status not in PAYABLE:
        last = rows[-1]["reference"] if rows else ""
        raise Refused(409, "conflict", f"the order {order.number} is paid already (reference {last or 'none'})")
    if amount > balance:
        raise Refused(422, "amount", f"amount: {amount} is more than the balance {balance} of the order "
                                     f"{order.number} (total {order.total}, paid {paid}): overpayments are refused")  # fmt: skip
    completes = amount == balance
    if invoice_number is not None and not completes:
        raise Refused(422, "invoice_pdf", "invoice_pdf: the ERP's invoice comes with the payment that completes "
                                          f"the order (the balance is {balance})")  # fmt: skip
    await session.execute(insert(payments).values(order_id=order.id, amount=amount, reference=reference,
                                                  invoice_number=invoice_number, actor=actor, created_at=now))  # fmt: skip
    if invoice is not None and invoice_number is not None:
        await session.execute(insert(documents).values(
            order_id=order.id, kind="invoice", number=invoice_number, source="erp", media_id=invoice.media_id,
            filename=f"factura-{invoice_number}.pdf"[:120], size=invoice.size, created_at=now))  # fmt: skip
    paid, balance = paid + amount, balance - amount
    text = f"payment {amount} {reference}".strip()[:300] + f"; paid {paid}, balance {balance}"
    details = {"amount": str(amount), "reference": reference, "invoice_number": invoice_number,
               "paid": str(paid), "balance": str(balance)}  # fmt: skip
    if completes:
        changed = await orders.set_status(tx, order.id, orders.PAID, actor, now, note=text)
        audit(session, actor, "sales.order_paid", "sales_order", order.number, details, now=now)
    else:
        if order.status == orders.PARTIALLY_PAID:
            await orders.note(tx, order.id, actor, now, text)
            changed = order
        else:
            changed = await orders.set_status(tx, order.id, orders.PARTIALLY_PAID, actor, now, note=text)
        audit(session, actor, "sales.order_payment", "sales_order", order.number, details, now=now)
        data = await orders.payment_data(tx, changed)
        await emit(tx, "order.partially_paid", data, now=now, subject=orders.subject_of(changed))
    row = (await session.execute(select(payments).where(payments.c.order_id == order.id)
                                 .order_by(payments.c.id.desc()).limit(1))).mappings().one()  # fmt: skip
    return Recorded(changed, dict(row), paid, balance, False)


def balance_text(order: orders.Order, rows: list[dict[str, Any]]) -> dict[str, str]:
    paid, balance = balance_of(order, rows)
    return {"paid": money(paid, order.currency), "balance": money(balance, order.currency)}
