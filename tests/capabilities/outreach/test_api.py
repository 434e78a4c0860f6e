"""`/api/v1/broadcasts` on SQLite and PostgreSQL: tokens and scopes, create (refused input named, nothing
stored; an idempotent replay gives the same answer and one broadcast), start, bad moves, progress, paging,
and `broadcast.finished` recorded with its counts when the runner finishes it."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import WebhookEvent
from otklik.bootstrap import Otklik
from otklik.capabilities.outreach.models import broadcasts
from otklik.platform.apitokens import create_token
from otklik.platform.webhooks.service import add_endpoint
from otklik.testing.fake_telegram import FakeTelegramServer
from tests.capabilities.outreach.seed import seed_contacts
from tests.capabilities.outreach.test_broadcasts import app, fake, run_until_settled  # noqa: F401 (fixtures)

URL = "/api/v1/broadcasts"


@pytest.fixture
async def http(app: tuple[Otklik, int]) -> httpx.AsyncClient:  # noqa: F811
    from otklik.web.app import create_app

    web = create_app(app[0], worker=False, manage_lifecycle=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://api.test")


async def _auth(otk: Otklik, scopes: str) -> dict[str, str]:
    _id, secret = await create_token(otk.db, f"t-{scopes.replace(',', '_')}", scopes, actor="test")
    return {"Authorization": f"Bearer {secret}"}


async def _count(otk: Otklik) -> int:
    async with otk.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(broadcasts)) or 0)


async def test_create_start_finish_and_the_event(
    app: tuple[Otklik, int],  # noqa: F811
    fake: FakeTelegramServer,  # noqa: F811
    http: httpx.AsyncClient,
) -> None:
    otk, account = app
    await add_endpoint(otk.db, otk.vault, "http://127.0.0.1:9/hook", "broadcast.*", actor="test")
    await seed_contacts(otk.db, account, 4, subscribed=lambda i: i != 0)
    write = await _auth(otk, "broadcasts.write")
    read = await _auth(otk, "broadcasts.read")
    body = {"name": "Зимняя распродажа", "account": "shop_bot", "text": "Скидка 20%"}
    assert (await http.post(URL, json=body)).status_code == 401
    refused = await http.post(URL, json=body, headers=read)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"

    key = {"Idempotency-Key": "bc-1"}
    made = await http.post(URL, json=body, headers=write | key)
    assert made.status_code == 201, made.text
    again = await http.post(URL, json=body, headers=write | key)
    assert again.status_code == 201 and again.json() == made.json()
    assert again.headers.get("Idempotent-Replayed") == "true" and await _count(otk) == 1
    created = made.json()
    assert created["status"] == "draft" and created["account"] == "shop_bot" and created["segment"] is None
    assert created["message"] == {"text": "Скидка 20%"}
    bid = created["id"]

    assert (await http.post(f"{URL}/{bid}/start", headers=read)).status_code == 403
    started = await http.post(f"{URL}/{bid}/start", headers=write)
    assert started.status_code == 200 and started.json()["status"] == "running"
    twice = await http.post(f"{URL}/{bid}/start", headers=write)
    assert twice.status_code == 409 and twice.json()["error"] == "conflict"
    assert (await http.post(f"{URL}/999999/start", headers=write)).status_code == 404

    assert await run_until_settled(otk, bid) == "done"
    one = await http.get(f"{URL}/{bid}", headers=read)
    assert one.status_code == 200, one.text
    shown = one.json()
    assert shown["status"] == "done" and shown["total"] == 3 and shown["counts"]["sent"] == 3
    assert shown["done"] == 3 and shown["finished_at"].endswith("Z")
    async with otk.db.read() as session:
        rows = (await session.execute(select(WebhookEvent).where(WebhookEvent.type == "broadcast.finished"))).scalars()
        events = [(r.subject, r.payload["data"]) for r in rows]
    assert len(events) == 1
    subject, data = events[0]
    assert subject == f"broadcast:{bid}" and data["broadcast_id"] == bid and data["name"] == "Зимняя распродажа"
    assert data["total"] == 3 and data["counts"]["sent"] == 3
    missing = await http.get(f"{URL}/999999", headers=read)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"text": "hi"}, "name"),  # no name
        ({"name": "x", "text": ""}, "invalid"),  # neither text nor template
        ({"name": "x", "text": "hi", "segment": "nobody"}, "segment"),
        ({"name": "x", "text": "hi", "account": "nope"}, "account"),
        ({"name": "x", "text": "a" * 5000}, "invalid"),
        ({"name": "x", "text": "hi", "at": "someday"}, "invalid"),
        ({"name": "x", "text": "hi", "timezone": "Mars/Base"}, "invalid"),
        ({"name": "x", "text": "hi", "sneaky": 1}, "invalid"),  # unknown field
        ({"name": "<script>", "text": "hi"}, "invalid"),
    ],
)
async def test_bad_bodies_are_422_and_store_nothing(
    app: tuple[Otklik, int],  # noqa: F811
    http: httpx.AsyncClient,
    body: dict[str, object],
    code: str,
) -> None:
    otk, _ = app
    answer = await http.post(URL, json=body, headers=await _auth(otk, "broadcasts.write"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == code and answer.json()["message"]
    assert await _count(otk) == 0


async def test_oversized_body_list_paging_and_bad_cursor(
    app: tuple[Otklik, int],  # noqa: F811
    http: httpx.AsyncClient,
) -> None:
    otk, _ = app
    write = await _auth(otk, "broadcasts.write")
    read = await _auth(otk, "broadcasts.read")
    big = await http.post(URL, content=b'{"name": "x", "text": "' + b"a" * 70_000 + b'"}', headers=write
                          | {"Content-Type": "application/json"})  # fmt: skip
    assert big.status_code == 413 and big.json()["error"] == "too_large" and await _count(otk) == 0
    ids = [(await http.post(URL, json={"name": f"b{i}", "text": "hi"}, headers=write)).json()["id"] for i in range(3)]
    first = (await http.get(f"{URL}?limit=2", headers=read)).json()
    assert [b["id"] for b in first["data"]] == ids[::-1][:2] and first["next_cursor"]
    rest = (await http.get(URL, params={"cursor": first["next_cursor"]}, headers=read)).json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["next_cursor"] is None
    bad = await http.get(f"{URL}?cursor=Ym9va2luZ3M6MQ", headers=read)
    assert bad.status_code == 422 and bad.json()["error"] == "cursor"
    assert (await http.get(URL, headers=write)).status_code == 403
    spec = (await http.get("/openapi.json")).json()["paths"]
    create = spec[URL]["post"]
    assert create["requestBody"]["content"]["application/json"]["example"]["name"]
    assert create["responses"]["201"]["content"]["application/json"]["example"]["status"] == "draft"
    shown = spec[f"{URL}/{{broadcast_id}}"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    assert "counts" in shown and spec[f"{URL}/{{broadcast_id}}/start"]["post"]["responses"]["409"]
