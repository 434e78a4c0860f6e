"""`POST /api/v1/orders/{number}/payments` (API token with the `sales.payments` scope): the ERP or a payment
provider reports that an order was paid.

In: `{"amount": "316500.00", "reference": "TRX-991", "invoice_number": "A-0001-00000123",
"invoice_pdf": "<base64>"}` — `amount` a string (or a JSON number read as a decimal, never a float) equal to
the order's total; `reference` (optional, at most 120 printable characters) the payment's id at the
payer: repeating a call with the same reference answers 200 with the payment already recorded (one
payment, one invoice); `invoice_number` and `invoice_pdf` (optional, together): the ERP's invoice, sent to
the buyer instead of ours — a PDF (checked by its `%PDF-` header), at most 2 MiB decoded.

Out 201 (200 on a repeat): `{"number", "status", "payment": {"amount", "reference", "invoice_number"},
"repeated": bool}`. The order becomes `paid` (`order.paid` webhook), then the worker's `sales-orders` job
sends the invoice to the buyer and the order becomes `invoiced`.
Errors: 401 no/unknown token, 403 scope, 404 unknown order, 409 order cancelled or already paid with
another reference, 413 body too large, 422 `{"error": FIELD, "message"}` malformed JSON or field.
"""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from otklik.capabilities.sales import orders, payment
from otklik.capabilities.sales.models import orders as order_table
from otklik.capabilities.sales.models import payments
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx
from otklik.core.errors import InvalidInput
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.restapi import (
    ApiError,
    check_query,
    decode_cursor,
    encode_cursor,
    error_responses,
    page_limit,
    plain,
)
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped, too_large

SCOPE = "sales.payments"
MAX_PDF = 2 * 1024 * 1024
MAX_BODY = MAX_PDF * 4 // 3 + 16 * 1024  # the base64 of the largest PDF and the other fields
FIELDS = ("amount", "reference", "invoice_number", "invoice_pdf")
CENT = Decimal("0.01")

router = APIRouter(prefix="/api/v1/orders", tags=["sales"])


class PaymentIn(BaseModel):
    amount: str | int = Field(description='the amount paid, at most the balance: a string like "316500.00"')
    reference: str | None = Field(None, description="the payment's id at the payer (idempotency key)")
    invoice_number: str | None = Field(None, description="the ERP's invoice number (with invoice_pdf)")
    invoice_pdf: str | None = Field(None, description="the ERP's invoice PDF, base64, at most 2 MiB decoded")


class PaymentView(BaseModel):
    amount: str
    reference: str
    invoice_number: str | None


class PaymentOut(BaseModel):
    number: str
    status: str = Field(description="partially_paid while a balance remains, then paid")
    paid: str = Field(description="the sum of the order's payments")
    balance: str = Field(description="the total minus what was paid")
    payment: PaymentView
    repeated: bool = Field(description="true: this reference was recorded before; nothing changed")


class ErrorOut(BaseModel):
    error: str = Field(description="amount | reference | invoice_number | invoice_pdf | invalid | not_found | conflict")
    message: str


class Refused(InvalidInput):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit or not value.isprintable():
        raise Refused(name, f"{name}: 1-{limit} printable characters")
    return value.strip()


def parse(raw: bytes) -> tuple[Decimal, str, str | None, bytes | None]:
    """The body's amount, reference ("" when none), invoice number and PDF bytes; `Refused` otherwise."""

    def as_decimal(text: str) -> Decimal:
        try:
            return Decimal(text)
        except InvalidOperation:
            raise Refused("amount", f"{text[:20]} is not a number") from None

    def no_constant(name: str) -> Any:
        raise Refused("invalid", f"{name} is not a number")

    try:
        data = json.loads(raw.decode("utf-8"), parse_float=as_decimal, parse_constant=no_constant)
    except UnicodeDecodeError:
        raise Refused("invalid", "the body must be UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise Refused("invalid", f"the body is not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError):
        raise Refused("invalid", "the body has a number too long or nesting too deep") from None
    if not isinstance(data, dict):
        raise Refused("invalid", 'the body must be a JSON object like {"amount": "316500.00"}')
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        raise Refused("invalid", f"unknown field {str(unknown[0])[:40]!r}; the fields are {', '.join(FIELDS)}")
    value = data.get("amount")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise Refused("amount", 'amount: required, a string like "316500.00"')
    try:
        amount = Decimal(str(value).strip()) if len(str(value)) <= 30 else Decimal("NaN")
    except InvalidOperation:
        raise Refused("amount", f"amount: {str(value)[:20]!r} is not a number") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT) or amount >= Decimal(10) ** 12:
        raise Refused("amount", "amount: a positive number with at most 2 decimals")
    reference = _text(data, "reference", 120) or ""
    invoice_number = _text(data, "invoice_number", 40)
    encoded = data.get("invoice_pdf")
    pdf = None
    if encoded is not None:
        if not isinstance(encoded, str):
            raise Refused("invoice_pdf", "invoice_pdf: the PDF as a base64 string")
        if len(encoded) > MAX_PDF * 4 // 3 + 8:
            raise Refused("too_large", f"invoice_pdf: at most {MAX_PDF // (1024 * 1024)} MiB")
        try:
            pdf = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise Refused("invoice_pdf", "invoice_pdf: not valid base64") from None
        if len(pdf) > MAX_PDF:
            raise Refused("too_large", f"invoice_pdf: at most {MAX_PDF // (1024 * 1024)} MiB")
        if not pdf.startswith(b"%PDF-"):
            raise Refused("invoice_pdf", "invoice_pdf: not a PDF (it must start with %PDF-)")
    if (pdf is None) != (invoice_number is None):
        raise Refused("invoice_number", "invoice_number and invoice_pdf go together (or neither: our invoice)")
    return amount.quantize(CENT), reference, invoice_number, pdf


@router.post(
    "/{number}/payments",
    response_model=None,
    summary="Report an order's payment",
    responses={
        200: {"model": PaymentOut, "description": "a repeat: this reference was recorded before"},
        201: {
            "model": PaymentOut,
            "description": "recorded: the order is paid (the invoice follows) or partially paid",
        },
        404: {"model": ErrorOut, "description": "no order with that number"},
        409: {"model": ErrorOut, "description": "the order is cancelled, or paid already"},
        413: {"description": "body or invoice PDF too large"},
        422: {"model": ErrorOut, "description": "refused: the code names the field"},
    }
    | error_responses(401, 403),
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": PaymentIn.model_json_schema()}}}
    },
)
async def report_payment(
    request: Request, number: str, caller: ApiCaller = Depends(require_scope(SCOPE))
) -> JSONResponse:
    if declared_too_large(request, MAX_BODY):
        return too_large()
    try:
        raw = await read_capped(request, MAX_BODY)
    except BodyTooLarge:
        return too_large()
    try:
        amount, reference, invoice_number, pdf = parse(raw)
    except Refused as exc:
        if exc.code == "too_large":
            return _error(413, "invoice_pdf", exc.user_message)
        return _error(422, exc.code, exc.user_message)
    otklik = request.app.state.otklik
    stored = await otklik.ctx.media.save(pdf, "application/pdf", f"factura-{invoice_number}.pdf") if pdf else None
    try:
        async with otklik.db.write() as session:
            done = await payment.record(session, number, amount, reference, f"api:{caller.name}"[:120], utcnow(),
                                        invoice_number=invoice_number, invoice=stored)  # fmt: skip
    except payment.Refused as exc:
        return _error(exc.status, exc.code, exc.user_message)
    return JSONResponse(done.to_json(), status_code=200 if done.repeated else 201)


# --- reading orders: `GET /api/v1/orders`, `GET /api/v1/orders/{number}` (scope `orders.read`) ---------------
# The REST API's conventions (docs/api.md): cursor paging, errors as {"error", "message"}.

READ_SCOPE = "orders.read"
ORDER_EXAMPLE = {
    "number": "A-0017", "status": "confirmed", "currency": "ARS", "subtotal": "48677.69", "iva_rate": "21.00",
    "iva": "10222.31", "total": "58900.00",
    "lines": [{"sku": "DS-2CD1043G0-I", "name": "Cámara IP 4 MP", "quantity": 3, "unit_price": "19633.33",
               "prices_include_iva": True, "line_total": "58900.00"}],
    "customer": {"name": "Ana Pérez"}, "plan": None, "contact_id": 17, "conversation_id": 40,
    "created_at": "2026-12-05T17:20:00.000Z", "valid_until": "2026-12-08T17:20:00.000Z",
    "updated_at": "2026-12-05T17:20:00.000Z", "payments": [], "paid": "0.00", "balance": "58900.00",
    "history": [{"from": None, "to": "confirmed", "actor": "bot", "note": "", "at": "2026-12-05T17:20:00.000Z"}],
}  # fmt: skip




async def _order_view(tx: Any, order: orders.Order, full: bool) -> dict[str, Any]:
    data = await orders.event_data(tx, order)
    data["updated_at"] = order.updated_at
    if full:
        rows = await tx.fetch(select(payments).where(payments.c.order_id == order.id).order_by(payments.c.id))
        paid, balance = payment.balance_of(order, [dict(r._mapping) for r in rows])
        data["payments"] = [
            {
                "amount": str(Decimal(r.amount)),
                "reference": r.reference,
                "invoice_number": r.invoice_number,
                "at": r.created_at,
            }
            for r in rows
        ]
        data["paid"], data["balance"] = str(paid), str(balance)
        data["history"] = [
            {"from": h["from_status"], "to": h["to_status"], "actor": h["actor"], "note": h["note"], "at": h["at"]}
            for h in await orders.history_of(tx, order.id)
        ]
    return plain(data)  # type: ignore[no-any-return]


@router.get(
    "",
    response_model=None,
    summary="List orders, newest first",
    responses={
        200: {
            "description": "a page of orders",
            "content": {"application/json": {"example": {"data": [ORDER_EXAMPLE], "next_cursor": None}}},
        }
    }
    | error_responses(401, 403, 422, 429),
)
async def list_orders(
    request: Request,
    limit: int | None = Query(None, ge=1, le=200, description="1-200, default 50"),
    cursor: str | None = Query(None, max_length=64, description="next_cursor of the previous page"),
    status: str | None = Query(None, max_length=20, description="only orders in this status"),
    _caller: ApiCaller = Depends(require_scope(READ_SCOPE)),
) -> JSONResponse:
    check_query(request, ("limit", "cursor", "status"))
    size = page_limit(limit)
    after = decode_cursor("orders", cursor)
    query = select(order_table).order_by(order_table.c.id.desc()).limit(size + 1)
    if after is not None:
        query = query.where(order_table.c.id < after)
    if status is not None:
        if status not in orders.NEXT:
            raise ApiError(422, "status", f"status: one of {', '.join(sorted(orders.NEXT))}")
        query = query.where(order_table.c.status == status)
    async with request.app.state.otklik.db.read() as session:
        tx = as_tx(session)
        rows = await tx.fetch(query)
        items = [await _order_view(tx, orders._order(row), False) for row in rows[:size]]
    more = len(rows) > size
    return JSONResponse(
        {"data": items, "next_cursor": encode_cursor("orders", int(rows[size - 1].id)) if more else None}
    )


@router.get(
    "/{number}",
    response_model=None,
    summary="An order, with its payment and history",
    responses={200: {"description": "the order", "content": {"application/json": {"example": ORDER_EXAMPLE}}}}
    | error_responses(401, 403, 404, 429),
)
async def get_order(
    request: Request,
    number: str = Path(max_length=40),
    _caller: ApiCaller = Depends(require_scope(READ_SCOPE)),
) -> JSONResponse:
    check_query(request, ())
    async with request.app.state.otklik.db.read() as session:
        tx = as_tx(session)
        order = await orders.get_by_number(tx, number)
        if order is None:
            raise ApiError(404, "not_found", f"no order {number[:40]!r}")
        return JSONResponse(await _order_view(tx, order, True))
