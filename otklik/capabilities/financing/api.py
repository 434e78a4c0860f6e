"""`POST /api/v1/financing/simulate` (API token with the `financing` scope): the CLI's fields in and out.

In: `{"amount": "150000.00", "installments": 6, "down_payment": "0", "table": "visa"}` — money as a string
or a JSON number (read as a decimal, never through a float), `table` optional (the default table).
Out: the plan exactly as `otklik financing simulate --json` prints it. A refusal is 422 with
`{"error": CODE, "message": …}` (CODE: amount, down_payment, installments, min_installment; `invalid` for a
body that is not what is documented); no rates table is 409 `no_rates`, an unknown one 404.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from otklik.capabilities.financing import service
from otklik.capabilities.financing.rules import Refused, simulate
from otklik.core.errors import InvalidInput
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.restapi import error_responses
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped, too_large

SCOPE = "financing"
MAX_BODY = 8 * 1024
FIELDS = ("amount", "installments", "down_payment", "table")

router = APIRouter(prefix="/api/v1/financing", tags=["financing"])


class SimulateIn(BaseModel):
    amount: str | int = Field(description='the price; a string like "150000.00" or a number, at most 2 decimals')
    installments: int | str = Field(description="the number of installments")
    down_payment: str | int = Field("0", description="paid up front (default 0)")
    table: str | None = Field(None, description="the rates table's name (default: the default table)")


class Row(BaseModel):
    n: int
    payment: str
    interest: str | None = Field(None, description="absent on a coefficient plan")
    iva: str | None = None
    principal: str | None = None
    balance: str | None = None


class SimulateOut(BaseModel):
    amount: str
    down_payment: str
    financed: str
    installments: int
    installment: str = Field(description="the regular payment")
    last_installment: str
    total: str
    interest: str
    iva: str
    tna: str | None = Field(description="percent; null on a coefficient plan (also tem, tea, cftea)")
    tem: str | None
    tea: str | None
    cftea: str | None
    schedule: list[Row]


class ErrorOut(BaseModel):
    error: str = Field(description="amount | down_payment | installments | min_installment | invalid | no_rates")
    message: str


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _body(raw: bytes) -> dict[str, Any]:
    def no_constant(name: str) -> Any:
        raise InvalidInput(f"{name} is not a number")

    def as_decimal(text: str) -> Decimal:
        try:
            return Decimal(text)
        except InvalidOperation:
            raise InvalidInput(f"{text[:20]} is not a number") from None

    try:
        data = json.loads(raw.decode("utf-8"), parse_float=as_decimal, parse_constant=no_constant)
    except UnicodeDecodeError:
        raise InvalidInput("the body must be UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError):  # an integer of thousands of digits; absurd nesting
        raise InvalidInput("the body has a number too long or nesting too deep") from None
    if not isinstance(data, dict):
        raise InvalidInput('the body must be a JSON object like {"amount": "150000.00", "installments": 6}')
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        raise InvalidInput(f"unknown field {str(unknown[0])[:40]!r}; the fields are {', '.join(FIELDS)}")
    missing = [k for k in ("amount", "installments") if k not in data]
    if missing:
        raise InvalidInput(f"{missing[0]}: required")
    table = data.get("table")
    if table is not None and not isinstance(table, str):
        raise InvalidInput("table: the name of a rates table, or leave it out for the default table")
    return data


@router.post(
    "/simulate",
    response_model=None,
    summary="Simulate an installment plan",
    responses={
        200: {"model": SimulateOut, "description": "the plan, figures as strings with two decimals"},
        404: {"model": ErrorOut, "description": "no rates table of that name"},
        409: {"model": ErrorOut, "description": "no rates table yet"},
        413: {"description": "body too large"},
        422: {"model": ErrorOut, "description": "refused: the code names the limit"},
    }
    | error_responses(401, 403),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SimulateIn.model_json_schema()}},
        }
    },
)
async def simulate_plan(request: Request, _caller: ApiCaller = Depends(require_scope(SCOPE))) -> JSONResponse:
    if declared_too_large(request, MAX_BODY):
        return too_large()
    try:
        raw = await read_capped(request, MAX_BODY)
    except BodyTooLarge:
        return too_large()
    try:
        data = _body(raw)
    except InvalidInput as exc:
        return _error(422, "invalid", exc.user_message)
    name = data.get("table")
    try:
        async with request.app.state.otklik.db.read() as session:
            stored = await service.load(
                service.session_fetch(session), None if name is None else service.clean_name(name)
            )
    except InvalidInput as exc:
        return _error(404, "no_rates", exc.user_message)
    if stored is None:
        if name is None:
            return _error(409, "no_rates", "no rates table yet: add one in the admin (Financing) first")
        return _error(404, "no_rates", f"no rates table named {name!r}")
    try:
        plan = simulate(stored.table, data["amount"], data["installments"], data.get("down_payment", 0))
    except Refused as exc:
        return _error(422, exc.code, exc.user_message)
    return JSONResponse(plan.to_json())
