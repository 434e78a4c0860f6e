"""`POST /api/v1/financing/simulate`: API tokens (401/403/revoked), bad bodies (422 with a clear message),
OpenAPI, and the same figures as the CLI for the same input."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from otklik.adapters.db.models import ApiToken
from otklik.bootstrap import Otklik
from otklik.capabilities.financing import service
from otklik.cli.main import app as cli
from otklik.platform.apitokens import create_token, revoke_token
from tests.capabilities.financing.tables import ISSUE_YAML

URL = "/api/v1/financing/simulate"


@pytest.fixture
async def http(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


@pytest.fixture
async def token(otklik: Otklik) -> str:
    async with otklik.db.write() as session:
        await service.save(session, "visa", ISSUE_YAML, actor="test")
    _id, secret = await create_token(otklik.db, "shop", "financing", actor="test")
    return secret


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_worked_example(http: httpx.AsyncClient, token: str, otklik: Otklik) -> None:
    response = await http.post(URL, json={"amount": "150000.00", "installments": 6}, headers=_auth(token))
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["installment"], data["last_installment"], data["total"]) == ("29401.58", "29401.57", "176409.47")
    assert (data["interest"], data["iva"], data["tea"], data["cftea"]) == ("21826.01", "4583.46", "60.10", "76.33")
    number = await http.post(URL, content=b'{"amount": 99999.99, "installments": "18"}', headers=_auth(token))
    assert number.json()["total"] == "194999.98"  # a JSON number read as a decimal, not a float
    async with otklik.db.read() as session:
        row = await session.scalar(select(ApiToken))
    assert (
        row is not None and row.last_used_at is not None and row.token_hash != token and token not in row.prefix + "x"
    )


async def test_tokens(http: httpx.AsyncClient, token: str, otklik: Otklik) -> None:
    body = {"amount": "1000", "installments": 1}
    missing = await http.post(URL, json=body)
    assert missing.status_code == 401 and "Bearer" in missing.json()["message"]
    assert missing.headers["www-authenticate"] == "Bearer"
    for bad in ("Bearer nonsense", "Bearer otk_" + "A" * 43, f"Basic {token}", "Bearer "):
        response = await http.post(URL, json=body, headers={"Authorization": bad})
        assert response.status_code == 401, bad
    _id, other = await create_token(otklik.db, "metrics", "metrics,orders", actor="test")
    wrong = await http.post(URL, json=body, headers=_auth(other))
    assert wrong.status_code == 403 and "financing" in wrong.json()["message"]
    assert (await http.post(URL, json=body, headers=_auth(token))).status_code == 200
    await revoke_token(otklik.db, "shop", actor="test")
    revoked = await http.post(URL, json=body, headers=_auth(token))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"{not json", "invalid", "not JSON"),
        (b"[1, 2]", "invalid", "JSON object"),
        (b'{"installments": 3}', "invalid", "amount: required"),
        (b'{"amount": "100", "installments": 3, "rate": 0}', "invalid", "unknown field 'rate'"),
        (b'{"amount": NaN, "installments": 3}', "invalid", "NaN"),
        (b'{"amount": 1e400, "installments": 3}', "amount", "at most 999999999999.99"),
        (b'{"amount": 123456789012345678901234567890, "installments": 3}', "amount", "at most"),
        (b'{"amount": ' + b"9" * 5000 + b', "installments": 3}', "invalid", "too long"),
        (b'{"amount": "mucho", "installments": 3}', "amount", "number"),
        (b'{"amount": true, "installments": 3}', "amount", "number"),
        (b'{"amount": "100000", "installments": "seis"}', "installments", "whole number"),
        (b'{"amount": "100000", "installments": 2.5}', "installments", "whole number"),
        (b'{"amount": "100000", "installments": 15}', "installments", "1-12, 18"),
        (b'{"amount": "100000", "installments": 3, "down_payment": "100000"}', "down_payment", "less than"),
        (b'{"amount": "5000", "installments": 12}', "min_installment", "1000.00"),
        (b'{"amount": "100", "installments": 3, "table": 5}', "invalid", "table"),
    ],
)
async def test_bad_bodies(http: httpx.AsyncClient, token: str, body: bytes, code: str, words: str) -> None:
    response = await http.post(URL, content=body, headers={**_auth(token), "content-type": "application/json"})
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["error"] == code and words in data["message"], data


async def test_tables_and_size(http: httpx.AsyncClient, token: str) -> None:
    unknown = await http.post(URL, json={"amount": "100", "installments": 3, "table": "amex"}, headers=_auth(token))
    assert unknown.status_code == 404 and unknown.json()["error"] == "no_rates"
    named = await http.post(URL, json={"amount": "100000", "installments": 3, "table": "visa"}, headers=_auth(token))
    assert named.status_code == 200 and named.json()["last_installment"] == "33333.34"
    big = await http.post(URL, content=b" " * 20_000 + b"{}", headers=_auth(token))
    assert big.status_code == 413


async def test_no_table_yet(http: httpx.AsyncClient, otklik: Otklik) -> None:
    _id, secret = await create_token(otklik.db, "shop", "financing", actor="test")
    response = await http.post(URL, json={"amount": "100", "installments": 3}, headers=_auth(secret))
    assert response.status_code == 409 and response.json()["error"] == "no_rates"


async def test_openapi_documents_it(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    operation = spec["paths"][URL]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"amount", "installments", "down_payment", "table"} <= set(schema["properties"])
    assert {"200", "401", "403", "422"} <= set(operation["responses"])


@pytest.mark.parametrize(
    "args",
    [
        {"amount": "150000.00", "installments": "6"},
        {"amount": "99999.99", "installments": "18"},
        {"amount": "123456.78", "installments": "11", "down_payment": "23456.78"},
        {"amount": "7777.77", "installments": "1"},
        {"amount": "5000", "installments": "12"},
        {"amount": "100", "installments": "3", "down_payment": "-1"},
    ],
)
async def test_cli_and_api_give_identical_figures(
    http: httpx.AsyncClient, token: str, tmp_path: Path, args: dict[str, str]
) -> None:
    rates = tmp_path / "rates.yaml"
    rates.write_text(ISSUE_YAML, encoding="utf-8")
    argv = ["financing", "simulate", "--rates", str(rates), "--amount", args["amount"],
            "--installments", args["installments"], "--json"]  # fmt: skip
    if "down_payment" in args:
        argv += ["--down-payment", args["down_payment"]]
    result = CliRunner().invoke(cli, argv)
    api = await http.post(URL, json=args, headers=_auth(token))
    assert json.loads(result.output) == api.json()
    assert (result.exit_code == 0) == (api.status_code == 200)
