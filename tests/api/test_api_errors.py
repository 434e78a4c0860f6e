"""The REST API's shared rules: tokens and scopes, the one error shape, paging cursors, body limits and
unknown fields, idempotency keys, the per-token pace, OpenAPI."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import ApiIdempotency, Message
from otklik.bootstrap import Otklik
from otklik.platform.apitokens import revoke_token
from otklik.platform.restapi import ApiError, TokenPace, decode_cursor, encode_cursor
from tests.api.conftest import say


def _shape(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "message"} and body["error"] == code and body["message"], body


async def test_tokens_scopes_and_revocation(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    url = "/api/v1/contacts"
    _shape(await http.get(url), 401, "unauthorized")
    for bad in ("Bearer", "Bearer otk_short", "Basic dXNlcjpwYXNz", "Bearer otk_" + "A" * 43):
        _shape(await http.get(url, headers={"Authorization": bad}), 401, "unauthorized")
    assert (await http.get(url)).headers["www-authenticate"] == "Bearer"
    other = await token("flows.read", name="flows-only")
    _shape(await http.get(url, headers=other), 403, "forbidden")
    reader = await token("contacts.read", name="crm")
    assert (await http.get(url, headers=reader)).status_code == 200
    _shape(await http.post("/api/v1/contacts/1/erase", headers=reader), 403, "forbidden")  # erase: its own scope
    await revoke_token(otklik.db, "crm", actor="test")
    revoked = await http.get(url, headers=reader)
    _shape(revoked, 401, "unauthorized")
    assert "revoked" in revoked.json()["message"]


async def test_every_error_is_in_the_one_shape(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    auth = await token("contacts.read,contacts.write,conversations.read,conversations.write,flows.read")
    conversation = await say(otklik, "/start")
    _shape(await http.get("/api/v1/nothing-here", headers=auth), 404, "not_found")
    _shape(await http.delete("/api/v1/contacts", headers=auth), 405, "method_not_allowed")
    _shape(await http.get("/api/v1/contacts/0", headers=auth), 422, "contact_id")
    _shape(await http.get("/api/v1/contacts/99999999999999999999", headers=auth), 422, "contact_id")
    _shape(await http.get("/api/v1/contacts/abc", headers=auth), 422, "contact_id")
    _shape(await http.get("/api/v1/contacts?limit=0", headers=auth), 422, "limit")
    _shape(await http.get("/api/v1/contacts?limit=201", headers=auth), 422, "limit")
    _shape(await http.get("/api/v1/contacts?limt=2", headers=auth), 422, "invalid")  # a typo is not ignored
    _shape(await http.get("/api/v1/conversations?status=open", headers=auth), 422, "status")
    for cursor in (
        "zzz",
        "!!",
        "a" * 65,
        encode_cursor("contacts", 5),
        encode_cursor("conversations", 0),
        "Y29udmVyc2F0aW9uczot",
    ):
        _shape(await http.get("/api/v1/conversations", params={"cursor": cursor}, headers=auth), 422, "cursor")
    _shape(await http.get("/api/v1/flows/bad%20id", headers=auth), 422, "flow_id")
    send = f"/api/v1/conversations/{conversation}/messages"
    _shape(await http.post(send, json={"text": "hi", "colour": "red"}, headers=auth), 422, "invalid")
    _shape(await http.post(send, json={}, headers=auth), 422, "text")
    _shape(await http.post(send, json={"text": "   "}, headers=auth), 422, "text")
    _shape(await http.post(send, json={"text": 5}, headers=auth), 422, "text")
    _shape(await http.post(send, json={"text": "x" * 5000}, headers=auth), 422, "text")
    _shape(await http.post(send, json=["text"], headers=auth), 422, "invalid")
    _shape(await http.post(send, content=b'{"text": "hi"', headers=auth), 422, "invalid")
    _shape(await http.post(send, content=b'{"text": NaN}', headers=auth), 422, "invalid")
    _shape(await http.post(send, content=b"\xff\xfe", headers=auth), 422, "invalid")
    _shape(await http.post(send, content=b"[" * 100_000 + b"]" * 100_000, headers=auth), 413, "too_large")
    nested = b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    _shape(await http.post(send, content=nested, headers=auth), 422, "invalid")
    form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
    _shape(await http.post(send, content=b"text=hi", headers=form), 415, "unsupported_media_type")
    big = {**auth, "Content-Length": str(10 * 1024 * 1024), "Content-Type": "application/json"}
    _shape(await http.post(send, content=b"{}", headers=big), 413, "too_large")
    _shape(await http.post(f"/api/v1/conversations/{conversation}/handoff", json={"reason": "x" * 201}, headers=auth),
           422, "reason")  # fmt: skip
    _shape(await http.post(f"/api/v1/conversations/{conversation}/handoff", json={"priority": "yes"}, headers=auth),
           422, "priority")  # fmt: skip
    async with otklik.db.read() as session:
        operator = await session.scalar(select(func.count()).select_from(Message).where(Message.author == "operator"))
    assert operator == 0  # nothing of the refused requests was sent
    assert (await http.get("/api/webchat/nothing")).json().get("detail")  # outside /api/v1: unchanged


def test_cursors_round_trip_and_refuse_strangers() -> None:
    assert decode_cursor("contacts", encode_cursor("contacts", 2**63 - 1)) == 2**63 - 1
    assert decode_cursor("contacts", None) is None and decode_cursor("contacts", "") is None
    for bad in (encode_cursor("orders", 7), encode_cursor("contacts", 2**63), "=" * 8, "Y29udGFjdHM6LTE"):
        with pytest.raises(ApiError) as caught:
            decode_cursor("contacts", bad)
        assert caught.value.code == "cursor"


async def test_idempotency_keys_replay_the_first_answer(otklik: Otklik, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    auth = await token("conversations.write")
    conversation = await say(otklik, "/start")
    url = f"/api/v1/conversations/{conversation}/messages"
    keyed = {**auth, "Idempotency-Key": "order-17-shipped"}
    first = await http.post(url, json={"text": "Enviado"}, headers=keyed)
    again = await http.post(url, json={"text": "Enviado"}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    async with otklik.db.read() as session:
        sent = await session.scalar(select(func.count()).select_from(Message).where(Message.text == "Enviado"))
    assert sent == 1
    _shape(await http.post(url, json={"text": "Otro"}, headers=keyed), 422, "idempotency_key")
    other_token = {**(await token("conversations.write")), "Idempotency-Key": "order-17-shipped"}
    assert (
        await http.post(url, json={"text": "Enviado"}, headers=other_token)
    ).status_code == 201  # keys are per token
    for bad in ("", "a b", "x" * 201, "ключ".encode()):
        _shape(
            await http.post(url, json={"text": "x"}, headers={**auth, "Idempotency-Key": bad}), 422, "idempotency_key"
        )
    # a refused request keeps no key: the same key works once the request is right
    fixed = {**auth, "Idempotency-Key": "retry-me"}
    _shape(await http.post(url, json={"text": ""}, headers=fixed), 422, "text")
    assert (await http.post(url, json={"text": "ok"}, headers=fixed)).status_code == 201
    # a key still running (reserved, no answer yet) is a 409
    async with otklik.db.write() as session:
        row = await session.scalar(select(ApiIdempotency).where(ApiIdempotency.key == "retry-me"))
        assert row is not None
        row.status_code, row.response = None, None
    _shape(await http.post(url, json={"text": "ok"}, headers=fixed), 409, "idempotency_in_progress")


async def test_a_token_over_its_pace_gets_429(otklik: Otklik, app, http: httpx.AsyncClient, token) -> None:  # type: ignore[no-untyped-def]
    app.state.api_pace = TokenPace(per_minute=1, burst=2)
    slow = await token("contacts.read")
    fresh = await token("contacts.read")
    assert (await http.get("/api/v1/contacts", headers=slow)).status_code == 200
    assert (await http.get("/api/v1/contacts", headers=slow)).status_code == 200
    limited = await http.get("/api/v1/contacts", headers=slow)
    _shape(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert (await http.get("/api/v1/contacts", headers=fresh)).status_code == 200  # per token


def test_the_pace_refills_with_time() -> None:
    now = [0.0]
    pace = TokenPace(per_minute=60, burst=1, clock=lambda: now[0])
    assert pace.take(1) == 0 and pace.take(1) == pytest.approx(1.0)
    now[0] = 1.0
    assert pace.take(1) == 0
    assert TokenPace(per_minute=0, burst=1).take(1) == 0  # 0: no limit


async def test_openapi_documents_the_resources_with_examples(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_id}/erase",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/conversations/{conversation_id}/handoff",
        "/api/v1/flows/{flow_id}/versions",
        "/api/v1/orders/{number}",
    ):
        assert path in paths, path
    erase = paths["/api/v1/contacts/{contact_id}/erase"]["post"]
    assert erase["responses"]["200"]["content"]["application/json"]["example"]["erased"] is True
    assert erase["responses"]["403"]["content"]["application/json"]["example"]["error"] == "forbidden"
    send = paths["/api/v1/conversations/{conversation_id}/messages"]["post"]
    assert send["requestBody"]["content"]["application/json"]["example"]["text"]


async def test_every_api_route_declares_the_bearer_token_and_its_refusals(http: httpx.AsyncClient) -> None:
    """OpenAPI tells clients (Swagger UI, n8n, generators) to send the token, on every route of the REST API —
    the kernel's and each capability's — and documents 401 and 403 in the one error shape."""
    spec = (await http.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["apiToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/v1/") or path == "/api/lead"
        for method, op in ops.items()
        if method in ("get", "post", "patch", "put", "delete")
    ]
    assert len(operations) >= 25  # contacts, conversations, flows, orders, bookings, broadcasts, metrics, …
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert {"apiToken": []} in op.get("security", []), where
        for status in ("401", "403"):
            example = op["responses"][status]["content"]["application/json"]["example"]
            assert set(example) == {"error", "message"}, where
