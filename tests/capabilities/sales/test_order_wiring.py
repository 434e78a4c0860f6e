"""After "Confirmar": the order.confirmed webhook (signed, received by a local receiver), the executive
assigned and notified by e-mail (aiosmtpd), the pre-invoice PDF received on the web chat and parsed with
pypdf, the payment through the API, the invoice, order.paid; the admin's documents and deliveries; the
payments API's bad input; cancel → order.cancelled with the stock returned. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import email
import io
import time
from collections.abc import AsyncIterator, Callable
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from otklik.bootstrap import Otklik
from otklik.capabilities.sales import fulfil, orders
from otklik.capabilities.sales.importer import import_catalog
from otklik.capabilities.sales.models import documents, payments, products
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx
from otklik.platform.apitokens import create_token
from otklik.platform.staff.members import add_member
from otklik.platform.users import Role, create_user
from otklik.platform.webhooks.service import add_endpoint
from otklik.testing.fake_webhook_receiver import FakeWebhookReceiver
from otklik.web.app import create_app
from tests.capabilities.care.conftest import Chat
from tests.capabilities.sales.shop_catalog import rows
from tests.conftest import make_settings
from tests.fixtures.admin import PASSWORD, csrf_of
from tests.platform.staff.conftest import Smtp, free_port

SECRET = "whsec_test_secret_0123456789abcdef"


class Shop:
    def __init__(self, app: Otklik, web: Any, http: httpx.AsyncClient, smtp: Smtp, receiver: FakeWebhookReceiver,
                 token: str) -> None:  # fmt: skip
        self.app, self.web, self.http, self.smtp, self.receiver, self.token = app, web, http, smtp, receiver, token

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def pay(self, number: str, body: Any, token: str | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else None
        return await self.http.post(f"/api/v1/orders/{number}/payments", headers=self.auth(token),
                                    json=None if content is not None else body, content=content)  # fmt: skip


@pytest.fixture
async def shop(tmp_path: Path, db_url: str) -> AsyncIterator[Shop]:
    smtp = Smtp(free_port())
    smtp.start()
    settings = make_settings(
        tmp_path, db_url, default_pack="sales-es", smtp_host="127.0.0.1", smtp_port=smtp.port,
        smtp_security="none", smtp_from="bot@microcom.example", public_url="https://shop.example", smtp_timeout=5,
    )  # fmt: skip
    app = Otklik.build(settings)
    await app.start()
    report = await import_catalog(app.db, rows())
    assert report.applied
    async with app.db.write() as session:  # the seller's letterhead (sales_config, docs/sales.md)
        from otklik.capabilities.sales.models import config

        await session.execute(config.update().values(seller_name="MICROCOM S.A.", seller_cuit="30-71234567-9",
                                                     seller_address="Av. Corrientes 1234, CABA",
                                                     payment_instructions="Transferencia: CBU 0000003100012345678901"))  # fmt: skip
    await add_member(app.db, "Ana", email="ana@microcom.example", packs="sales-es", actor="test")
    _id, token = await create_token(app.db, "erp", "sales.payments", actor="test")
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with FakeWebhookReceiver(SECRET) as receiver:
            await add_endpoint(app.db, app.vault, receiver.url, "order.*", secret=SECRET, actor="test")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
                yield Shop(app, web, http, smtp, receiver, token)
    finally:
        await app.close()
        smtp.stop()


async def _drain_webhooks(shop: Shop, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "webhooks did not arrive in time"
        assert shop.app.webhooks is not None
        if not await shop.app.webhooks.run_once():
            await asyncio.sleep(0.03)


def _types(receiver: FakeWebhookReceiver) -> list[str]:
    return [e["type"] for e in receiver.accepted.values()]


async def _confirmed_order(http: httpx.AsyncClient) -> tuple[Chat, str]:
    response = await http.post("/api/webchat/sessions", json={"language": "es"})
    chat = Chat(http, str(response.json()["session_id"]))
    await chat.send(text="¿qué cámaras Hikvision tienen?")
    *_hello, listing = await chat.replies(3)
    assert "DS-2CD1143G2-I" in listing["text"]
    await chat.send(text="quiero 3 de la DS-2CD1143G2 y 2 discos de 1 TB")
    assert "Total: $ 312.500,00" in (await chat.replies(3))[2]["text"]
    await chat.send(text="pasame el resumen")
    (summary,) = await chat.replies(1)
    confirm = {b["title"]: b["payload"] for b in summary["buttons"]}["✅ Confirmar"]
    await chat.send(button=confirm)
    await chat.replies(2)
    for answer in ("Seguridad Norte SRL", "30-71234567-1", "Responsable Inscripto"):
        await chat.send(text=answer)
        await chat.replies(1)
    await chat.send(text="Retiro en el local")
    (done,) = await chat.replies(1)
    assert "quedó confirmado por $ 312.500,00" in done["text"]
    number = done["text"].split("Tu pedido ")[1].split(" ")[0]
    return chat, number


async def _pdf_of(shop: Shop, chat: Chat, message: dict[str, Any]) -> tuple[bytes, str]:
    (attachment,) = message["attachments"]
    assert attachment["content_type"] == "application/pdf"
    response = await shop.http.get(f"/api/webchat/sessions/{chat.sid}/media/{attachment['media_id']}")
    assert response.status_code == 200
    pdf = response.content
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return pdf, text


async def _status(app: Otklik, number: str) -> orders.Order:
    async with app.db.read() as session:
        order = await orders.get_by_number(as_tx(session), number)
    assert order is not None
    return order


async def test_confirm_pre_invoice_webhook_executive_payment_invoice(shop: Shop) -> None:
    app, http = shop.app, shop.http
    chat, number = await _confirmed_order(http)
    assert number == "PV-000001"

    # order.confirmed was written with the order; the receiver gets it signed
    await _drain_webhooks(shop, lambda: "order.confirmed" in _types(shop.receiver))
    got = next(r for r in shop.receiver.requests if r.json()["type"] == "order.confirmed")
    assert got.signature_ok and got.answered == 200
    data = got.json()["data"]
    assert data["number"] == number and data["total"] == "312500.00" and data["subtotal"] == "258264.46"
    assert data["iva"] == "54235.54" and data["currency"] == "ARS" and data["customer"]["cuit"] == "30-71234567-1"
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in data["lines"]] == [
        ("DS-2CD1143G2-I", 3, "61500.00"), ("WD10PURZ", 2, "64000.00")]  # fmt: skip
    assert data["conversation_id"] and data["created_at"].endswith("Z")

    # the job: executive, then the pre-invoice on the web chat
    assert await fulfil.process(app.ctx) >= 2
    (sent,) = await chat.replies(1)
    assert f"prefactura del pedido {number} por $ 312.500,00" in sent["text"]
    pdf, text = await _pdf_of(shop, chat, sent)
    assert "PREFACTURA" in text and number in text and "MICROCOM S.A." in text and "Seguridad Norte SRL" in text
    assert "$ 312.500,00" in text and "$ 258.264,46" in text and "$ 54.235,54" in text and "CBU" in text
    order = await _status(app, number)
    assert order.status == "pre_invoiced" and order.assignee_id is not None
    assert await fulfil.process(app.ctx) == 0  # nothing more to do: nothing sent twice
    async with app.db.read() as session:
        history = [h["to_status"] for h in await orders.history_of(as_tx(session), order.id)]
    assert history == ["confirmed", "pre_invoiced"]

    # the executive's e-mail, with the summary and the admin link
    assert app.staff is not None
    await app.staff.run_once()
    (envelope,) = shop.smtp.inbox.envelopes
    assert envelope.rcpt_tos == ["ana@microcom.example"]
    mail = email.message_from_bytes(envelope.original_content, policy=policy.default)
    body = mail.get_content()
    assert number in str(mail["Subject"]) and "$ 312.500,00" in str(mail["Subject"])
    assert "DS-2CD1143G2-I" in body and "3 × $ 61.500,00" in body and "Seguridad Norte SRL" in body
    assert f"https://shop.example/admin/sales/orders/{number}" in body

    # the ERP reports the payment; a repeat with the same reference changes nothing
    paid = await shop.pay(number, {"amount": "312500.00", "reference": "TRX-1"})
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "paid" and paid.json()["payment"]["amount"] == "312500.00"
    again = await shop.pay(number, {"amount": "312500.00", "reference": "TRX-1"})
    assert again.status_code == 200 and again.json()["repeated"] is True
    other = await shop.pay(number, {"amount": "312500.00", "reference": "TRX-2"})
    assert other.status_code == 409
    assert await fulfil.process(app.ctx) == 1
    (invoice,) = await chat.replies(1)
    assert f"Recibimos el pago del pedido {number}" in invoice["text"] and "FC-000001" in invoice["text"]
    _pdf, text = await _pdf_of(shop, chat, invoice)
    assert "FACTURA FC-000001" in text and "$ 312.500,00" in text and "PREFACTURA" not in text
    assert (await _status(app, number)).status == "invoiced"
    assert await fulfil.process(app.ctx) == 0
    await shop.pay(number, {"amount": "312500.00", "reference": "TRX-1"})
    async with app.db.read() as session:
        assert len((await session.execute(select(payments))).all()) == 1
        kinds = sorted(r.kind for r in (await session.execute(select(documents))).all())
    assert kinds == ["invoice", "pre_invoice"]  # one payment, one invoice

    await _drain_webhooks(shop, lambda: "order.paid" in _types(shop.receiver))
    paid_event = next(e for e in shop.receiver.accepted.values() if e["type"] == "order.paid")
    assert paid_event["data"]["payment"]["reference"] == "TRX-1" and paid_event["data"]["status"] == "paid"
    assert all(r.signature_ok for r in shop.receiver.requests)

    # the admin: documents (download behind the login) and the webhook deliveries of the order
    await create_user(app.db, "op", Role.OPERATOR, password=PASSWORD, language="en")
    operator = httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.web), base_url="https://shop.example")
    login = await operator.get("/admin/login")
    signed = await operator.post("/admin/login", data={"login": "op", "password": PASSWORD, "next": "/admin",
                                                        "csrf_token": csrf_of(login.text)})  # fmt: skip
    assert signed.status_code == 303, signed.text
    page = await operator.get(f"/admin/sales/orders/{number}")
    assert page.status_code == 200
    assert "FC-000001" in page.text and "order.confirmed" in page.text and "order.paid" in page.text
    assert "Ana" in page.text
    async with app.db.read() as session:
        doc_id = await session.scalar(select(documents.c.id).where(documents.c.kind == "pre_invoice"))
    link = f"/admin/sales/orders/{number}/documents/{doc_id}"
    assert link in page.text
    download = await operator.get(link)
    assert download.status_code == 200 and download.content == pdf
    assert download.headers["content-type"] == "application/pdf"
    anon = await http.get(link)
    assert anon.status_code in (303, 401, 403) and anon.content != pdf
    assert (await operator.get(f"/admin/sales/orders/PV-000099/documents/{doc_id}")).status_code == 404
    await operator.aclose()


async def test_the_erp_invoice_is_sent_instead_of_ours(shop: Shop) -> None:
    chat, number = await _confirmed_order(shop.http)
    await fulfil.process(shop.app.ctx)
    await chat.replies(1)  # the pre-invoice
    erp_pdf = b"%PDF-1.4\n% the ERP's invoice\n%%EOF\n"
    body = {"amount": "312500", "reference": "B-7", "invoice_number": "A-0001-00000123",
            "invoice_pdf": base64.b64encode(erp_pdf).decode()}  # fmt: skip
    response = await shop.pay(number, body)
    assert response.status_code == 201, response.text
    assert await fulfil.process(shop.app.ctx) == 1
    (invoice,) = await chat.replies(1)
    assert "A-0001-00000123" in invoice["text"]
    (attachment,) = invoice["attachments"]
    media = await shop.http.get(f"/api/webchat/sessions/{chat.sid}/media/{attachment['media_id']}")
    assert media.content == erp_pdf
    assert (await _status(shop.app, number)).status == "invoiced"
    async with shop.app.db.read() as session:  # our series was not used
        numbers = [r.number for r in (await session.execute(select(documents))).all()]
    assert sorted(numbers) == ["A-0001-00000123", number]


async def test_payments_bad_input_and_cancel(shop: Shop) -> None:
    chat, number = await _confirmed_order(shop.http)
    ok = {"amount": "312500.00", "reference": "R-1"}
    assert (await shop.http.post(f"/api/v1/orders/{number}/payments", json=ok)).status_code == 401
    bad_token = await shop.pay(number, ok, token="otk_" + "x" * 43)
    assert bad_token.status_code == 401
    _id, other = await create_token(shop.app.db, "metrics", "financing", actor="test")
    assert (await shop.pay(number, ok, token=other)).status_code == 403
    assert (await shop.pay("PV-999999", ok)).status_code == 404
    for body, code in (
        (b"{not json", "invalid"), (b"[1, 2]", "invalid"), (b"\xff\xfe", "invalid"),
        ({"amount": "doce"}, "amount"), ({"amount": "-5"}, "amount"), ({"amount": "1.001"}, "amount"),
        ({"amount": 1.005}, "amount"), ({"amount": "NaN"}, "amount"), ({"amount": True}, "amount"),
        ({}, "amount"), ({"amount": "312500.00", "extra": 1}, "invalid"),
        ({"amount": "312500.01"}, "amount"),  # over the total: overpayments are refused
        ({"amount": "100.00", "invoice_number": "F-1", "invoice_pdf": base64.b64encode(b"%PDF-1.4").decode()},
         "invoice_pdf"),  # the ERP's invoice comes with the payment that completes the order
        ({"amount": "312500.00", "reference": "x" * 121}, "reference"),
        ({"amount": "312500.00", "reference": "a\nb"}, "reference"),
        ({"amount": "312500.00", "invoice_number": "F-1", "invoice_pdf": "@@not base64@@"}, "invoice_pdf"),
        ({"amount": "312500.00", "invoice_number": "F-1", "invoice_pdf": base64.b64encode(b"MZ exe").decode()},
         "invoice_pdf"),
        ({"amount": "312500.00", "invoice_pdf": base64.b64encode(b"%PDF-1.4").decode()}, "invoice_number"),
    ):  # fmt: skip
        response = await shop.pay(number, body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == code, (body, response.json())
    huge = {"amount": "312500.00", "invoice_number": "F-1",
            "invoice_pdf": base64.b64encode(b"%PDF-" + b"0" * (2 * 1024 * 1024)).decode()}  # fmt: skip
    assert (await shop.pay(number, huge)).status_code == 413
    assert (await _status(shop.app, number)).status == "confirmed"  # nothing was recorded
    async with shop.app.db.read() as session:
        assert (await session.execute(select(payments))).first() is None

    # cancel (the admin's service call): order.cancelled with the stock returned; a payment is refused
    async with shop.app.db.read() as session:
        before = await session.scalar(select(products.c.stock).where(products.c.sku == "DS-2CD1143G2-I"))
    order = await _status(shop.app, number)
    async with shop.app.db.write() as session:
        await orders.set_status(as_tx(session), order.id, orders.CANCELLED, "admin", utcnow(), "desistió")
    async with shop.app.db.read() as session:
        after = await session.scalar(select(products.c.stock).where(products.c.sku == "DS-2CD1143G2-I"))
    assert after == before + 3
    cancelled = await shop.pay(number, ok)
    assert cancelled.status_code == 409 and "cancelled" in cancelled.json()["message"]
    await _drain_webhooks(shop, lambda: "order.cancelled" in _types(shop.receiver))
    event = next(e for e in shop.receiver.accepted.values() if e["type"] == "order.cancelled")
    assert event["data"]["stock_returned"] == [{"sku": "DS-2CD1143G2-I", "quantity": 3},
                                               {"sku": "WD10PURZ", "quantity": 2}]  # fmt: skip
    assert event["data"]["previous_status"] == "confirmed"
    # the events of the order arrived in order: confirmed before cancelled
    assert _types(shop.receiver) == ["order.confirmed", "order.cancelled"]
    assert await fulfil.process(shop.app.ctx) == 1  # marked done: no executive bothered, no pre-invoice
    assert await fulfil.process(shop.app.ctx) == 0
    assert shop.app.staff is not None
    await shop.app.staff.run_once()
    assert shop.smtp.inbox.envelopes == []
    assert (await _status(shop.app, number)).assignee_id is None
    async with shop.app.db.read() as session:
        assert (await session.execute(select(documents))).first() is None
    assert chat.sid


async def test_two_workers_at_once_send_one_pre_invoice_and_one_notification(shop: Shop) -> None:
    chat, number = await _confirmed_order(shop.http)
    ctx = shop.app.ctx
    done = await asyncio.gather(*(fulfil.process(ctx) for _ in range(3)))
    assert sum(done) == 2  # one assignment and one pre-invoice among the three rounds
    (sent,) = await chat.replies(1)
    assert number in sent["text"] and len(sent["attachments"]) == 1
    assert (await _status(shop.app, number)).status == "pre_invoiced"
    assert shop.app.staff is not None
    await shop.app.staff.run_once()
    assert len(shop.smtp.inbox.envelopes) == 1
    async with shop.app.db.read() as session:
        assert len((await session.execute(select(documents))).all()) == 1


async def test_orders_are_read_through_the_api(shop: Shop) -> None:
    _chat, number = await _confirmed_order(shop.http)
    _id, reader = await create_token(shop.app.db, "crm", "orders.read", actor="test")
    listed = await shop.http.get("/api/v1/orders", headers=shop.auth(reader))
    assert listed.status_code == 200, listed.text
    assert [o["number"] for o in listed.json()["data"]] == [number] and listed.json()["next_cursor"] is None
    one = (await shop.http.get(f"/api/v1/orders/{number}", headers=shop.auth(reader))).json()
    assert one["total"] == "312500.00" and one["status"] == "confirmed" and one["payments"] == []
    assert one["paid"] == "0.00" and one["balance"] == "312500.00"
    assert one["history"][-1]["to"] == "confirmed" and one["created_at"].endswith("Z")
    assert {ln["quantity"] for ln in one["lines"]} == {3, 2}
    assert (await shop.pay(number, {"amount": "312500.00", "reference": "R-9"})).status_code == 201
    paid = (await shop.http.get(f"/api/v1/orders/{number}", headers=shop.auth(reader))).json()
    assert [(p["reference"], p["amount"]) for p in paid["payments"]] == [("R-9", "312500.00")]
    assert paid["paid"] == "312500.00" and paid["balance"] == "0.00"
    assert (await shop.http.get("/api/v1/orders?status=paid", headers=shop.auth(reader))).json()["data"][0][
        "number"
    ] == number
    forbidden = await shop.http.get("/api/v1/orders", headers=shop.auth())  # the payments token: no read scope
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"
    for url, code in (("/api/v1/orders/PV-999999", "not_found"), ("/api/v1/orders?cursor=bm9wZQ", "cursor"),
                      ("/api/v1/orders?status=lost", "status"), ("/api/v1/orders?limit=500", "limit")):  # fmt: skip
        refused = await shop.http.get(url, headers=shop.auth(reader))
        assert refused.json()["error"] == code, (url, refused.text)
