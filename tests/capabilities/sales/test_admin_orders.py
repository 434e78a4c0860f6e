"""Orders beyond the first assignment: partial payments (the payments API and the admin — the balance, the
status `partially_paid`, the invoice only when fully paid, overpayment refused, repeats by reference), the
admin's reassignment (the new executive notified, history, audit) and the list filtered by executive.
Hostile input, CSRF, permissions. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select

from otklik.adapters.db.models import EventLog, StaffNotification, WebhookEvent
from otklik.bootstrap import Otklik
from otklik.capabilities.sales import fulfil, orders
from otklik.capabilities.sales.models import documents, payments
from otklik.conversations.repo import as_tx
from otklik.platform.apitokens import create_token
from otklik.platform.staff.members import add_member
from otklik.platform.users import Role
from otklik.platform.webhooks.service import add_endpoint
from tests.capabilities.sales.test_admin import _order

PDF = base64.b64encode(b"%PDF-1.4 the ERP's invoice").decode()


async def _status(otklik: Otklik, number: str) -> orders.Order:
    async with otklik.db.read() as session:
        order = await orders.get_by_number(as_tx(session), number)
    assert order is not None
    return order


async def _count(otklik: Otklik, query: Any) -> int:
    async with otklik.db.read() as session:
        return int(await session.scalar(query) or 0)


async def test_partial_payments_through_the_api(otklik: Otklik, app) -> None:  # type: ignore[no-untyped-def]
    await add_endpoint(otklik.db, otklik.vault, "https://erp.example.com/hooks", "order.*", actor="test")
    order = await _order(otklik)  # 2 × WD10PURZ = $ 128.000,00
    assert order.total == Decimal("128000.00")
    _id, token = await create_token(otklik.db, "erp", "sales.payments", actor="test")
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test",
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    async def pay(body: dict[str, Any]) -> httpx.Response:
        return await api.post(f"/api/v1/orders/{order.number}/payments", json=body)

    first = await pay({"amount": "50000.00", "reference": "R-1"})
    assert first.status_code == 201, first.text
    assert first.json() | {"payment": None} == {"number": order.number, "status": "partially_paid", "paid": "50000.00",
                                               "balance": "78000.00", "repeated": False, "payment": None}  # fmt: skip
    repeat = await pay({"amount": "50000.00", "reference": "R-1"})
    assert repeat.status_code == 200 and repeat.json()["repeated"] is True and repeat.json()["balance"] == "78000.00"
    over = await pay({"amount": "78000.01", "reference": "R-2"})
    assert over.status_code == 422 and over.json()["error"] == "amount" and "overpayments are refused" in over.text
    with_invoice = await pay({"amount": "1000", "invoice_number": "A-1", "invoice_pdf": PDF})
    assert with_invoice.status_code == 422 and with_invoice.json()["error"] == "invoice_pdf"
    assert await fulfil.process(otklik.ctx) >= 1  # the pre-invoice still goes out; no invoice yet
    second = await pay({"amount": "28000", "reference": "R-2"})
    assert second.status_code == 201 and second.json()["status"] == "partially_paid"
    assert second.json()["balance"] == "50000.00"
    assert (await _status(otklik, order.number)).status == "partially_paid"
    async with otklik.db.read() as session:
        kinds = {r.kind for r in (await session.execute(select(documents))).all()}
    assert kinds == {"pre_invoice"}  # the invoice waits for the whole amount

    last = await pay({"amount": "50000", "reference": "R-3", "invoice_number": "A-0001-9", "invoice_pdf": PDF})
    assert last.status_code == 201 and last.json()["status"] == "paid" and last.json()["balance"] == "0.00"
    more = await pay({"amount": "1", "reference": "R-4"})
    assert more.status_code == 409 and "paid already" in more.json()["message"]
    assert await fulfil.process(otklik.ctx) >= 1
    assert (await _status(otklik, order.number)).status == "invoiced"
    async with otklik.db.read() as session:
        tx = as_tx(session)
        history = [(h["from_status"], h["to_status"]) for h in await orders.history_of(tx, order.id)]
        events = [(e.type, e.payload["data"].get("balance")) for e in
                  (await session.execute(select(WebhookEvent).order_by(WebhookEvent.id))).scalars()]  # fmt: skip
        docs = {r.kind: r.source for r in (await session.execute(select(documents))).all()}
    assert history == [(None, "confirmed"), ("confirmed", "partially_paid"), ("partially_paid", "partially_paid"),
                       ("partially_paid", "partially_paid"), ("partially_paid", "paid"), ("paid", "invoiced")]  # fmt: skip
    assert events == [("order.confirmed", None), ("order.partially_paid", "78000.00"),
                      ("order.partially_paid", "50000.00"), ("order.paid", "0.00")]  # fmt: skip
    assert docs == {"pre_invoice": "ours", "invoice": "erp"}
    assert await _count(otklik, select(func.count()).select_from(payments)) == 3
    assert await _count(otklik, select(func.count()).where(EventLog.kind == "sales.order_payment")) == 2
    assert await _count(otklik, select(func.count()).where(EventLog.kind == "sales.order_paid")) == 1
    await api.aclose()


async def test_payments_reassignment_and_filter_in_the_admin(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    ana = await add_member(otklik.db, "Ana Pérez", email="ana@example.com", actor="test")
    beto = await add_member(otklik.db, "Beto <b>Gómez</b>", email="beto@example.com", actor="test")
    off = await add_member(otklik.db, "Carla", email="carla@example.com", actor="test")
    async with otklik.db.write() as session:
        from otklik.adapters.db.models import StaffMember

        (await session.get(StaffMember, off.id)).active = False  # type: ignore[union-attr]
    order = await _order(otklik)
    assert await fulfil.process(otklik.ctx) >= 1  # assigned (round robin: Ana) and pre-invoiced
    assigned = await _status(otklik, order.number)
    assert assigned.assignee_id == ana.id
    operator = await as_role(Role.OPERATOR)
    page = await operator.http.get(f"/admin/sales/orders/{order.number}")
    assert 'data-testid="reassign-form"' in page.text and "Beto &lt;b&gt;Gómez&lt;/b&gt;" in page.text
    assert ">Carla<" not in page.text  # an inactive member is not offered

    for executive, reason in ((str(off.id), "not active"), (str(ana.id), "already"), ("999999", "no such executive"),
                              ("99999999999999999999999", "executive: a whole number"), ("x", "executive")):  # fmt: skip
        refused = await operator.post(f"/admin/sales/orders/{order.number}/assign", {"executive": executive})
        assert refused.status_code == 422 and reason in refused.text, (executive, refused.text[-300:])
    forged = await operator.http.post(f"/admin/sales/orders/{order.number}/assign", data={"executive": str(beto.id)})
    assert forged.status_code in (400, 403)
    before = await _count(otklik, select(func.count()).select_from(StaffNotification))
    moved = await operator.post(f"/admin/sales/orders/{order.number}/assign",
                                {"executive": str(beto.id), "note": "Ana está de vacaciones"})  # fmt: skip
    assert moved.status_code == 303
    assert (await _status(otklik, order.number)).assignee_id == beto.id
    async with otklik.db.read() as session:
        sent = (
            (await session.execute(select(StaffNotification).order_by(StaffNotification.id.desc()))).scalars().first()
        )
        [entry] = (await session.execute(select(EventLog).where(EventLog.kind == "sales.order_reassign"))).scalars()
        history = await orders.history_of(as_tx(session), order.id)
    assert await _count(otklik, select(func.count()).select_from(StaffNotification)) == before + 1
    assert sent is not None and sent.staff_id == beto.id and order.number in sent.subject
    assert "Ana está de vacaciones" in sent.body and sent.link.endswith(f"/admin/sales/orders/{order.number}")
    assert entry.data == {"from": "Ana Pérez", "to": "Beto <b>Gómez</b>", "to_id": beto.id,
                          "note": "Ana está de vacaciones"}  # fmt: skip
    assert history[-1]["note"].startswith("reassigned from Ana Pérez to Beto <b>Gómez</b>")

    by_beto = await operator.http.get("/admin/sales/orders", params={"executive": str(beto.id)})
    assert f'data-order="{order.number}"' in by_beto.text and "Beto &lt;b&gt;Gómez&lt;/b&gt;" in by_beto.text
    by_ana = await operator.http.get("/admin/sales/orders", params={"executive": str(ana.id)})
    assert f'data-order="{order.number}"' not in by_ana.text
    unassigned = await operator.http.get("/admin/sales/orders", params={"executive": "none"})
    assert f'data-order="{order.number}"' not in unassigned.text
    for hostile in ("99999999999999999999999", "' OR 1=1", "-1", "x" * 5000):
        shown = await operator.http.get("/admin/sales/orders", params={"executive": hostile})
        assert shown.status_code == 200 and f'data-order="{order.number}"' in shown.text  # the filter is ignored

    for amount, status, reason in (("abc", 422, "amount: a positive number"), ("0", 422, "amount"),
                                   ("-5", 422, "amount"), ("1.001", 422, "amount"), ("1e5", 422, "amount"),
                                   ("128000.01", 422, "overpayments are refused")):  # fmt: skip
        refused = await operator.post(f"/admin/sales/orders/{order.number}/payments", {"amount": amount})
        assert refused.status_code == status and reason in refused.text, (amount, refused.text[-300:])
    part = await operator.post(
        f"/admin/sales/orders/{order.number}/payments", {"amount": "28000,50", "reference": "T-1"}
    )
    assert part.status_code == 303
    detail = await operator.http.get(f"/admin/sales/orders/{order.number}")
    assert 'data-status="partially_paid"' in detail.text and "$ 99.999,50" in detail.text  # the balance
    rest = await operator.post(f"/admin/sales/orders/{order.number}/payments", {"amount": "99999.50"})
    assert rest.status_code == 303 and (await _status(otklik, order.number)).status == "paid"
    assert 'data-testid="payment-form"' not in (await operator.http.get(f"/admin/sales/orders/{order.number}")).text
    assert (await operator.post("/admin/sales/orders/PV-999999/payments", {"amount": "1"})).status_code == 404
    analyst = await as_role(Role.ANALYST)
    assert (
        await analyst.post(f"/admin/sales/orders/{order.number}/assign", {"executive": str(ana.id)})
    ).status_code == 403
    assert (await analyst.post(f"/admin/sales/orders/{order.number}/payments", {"amount": "1"})).status_code == 403
