"""`GET /api/v1/bookings[/{id}]` and `GET /api/v1/bookings/leads[/{id}]`: tokens and scopes, cursor paging with
filters, refused cursors and filters in the documented error shape, unknown ids. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.service import NewBooking, NewLead
from otklik.platform.apitokens import create_token
from tests.capabilities.bookings.conftest import MSK, NOW, Shop


def _at(hour: int, day: int = 2) -> datetime:
    return datetime.combine(NOW.date() + timedelta(days=day), datetime.min.time(), MSK).replace(hour=hour)


@pytest.fixture
async def http(shop: Shop) -> httpx.AsyncClient:
    from otklik.web.app import create_app

    web = create_app(shop.app, worker=False, manage_lifecycle=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://api.test")


async def _auth(shop: Shop, scopes: str) -> dict[str, str]:
    _id, secret = await create_token(shop.app.db, f"t-{scopes.replace(',', '_')}", scopes, actor="test")
    return {"Authorization": f"Bearer {secret}"}


async def _book(shop: Shop, staff: int, start: datetime, name: str, contact_id: int | None = None) -> int:
    new = NewBooking(service_id=shop.salon.haircut, staff_id=staff, start=start, client_name=name,
                     phone="+79123456789", source="site", contact_id=contact_id)  # fmt: skip
    return await service.book_or_offer(shop.app.db, new, now=NOW)


async def test_bookings_page_filter_and_one(shop: Shop, http: httpx.AsyncClient) -> None:
    a, o = shop.salon.aigul, shop.salon.olga
    ids = [await _book(shop, a, _at(11), "Анна", 5), await _book(shop, a, _at(15), "Вера"),
           await _book(shop, o, _at(15), "Галя", 5), await _book(shop, a, _at(15, day=1), "Дина")]  # fmt: skip
    auth = await _auth(shop, "bookings.read")
    assert (await http.get("/api/v1/bookings")).status_code == 401
    leads_only = await _auth(shop, "leads,leads.read")
    refused = await http.get("/api/v1/bookings", headers=leads_only)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"

    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = (await http.get("/api/v1/bookings", params=params, headers=auth)).json()
        seen += [b["id"] for b in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids, reverse=True)

    async def only(**query: object) -> list[int]:
        answer = await http.get("/api/v1/bookings", params=query, headers=auth)
        assert answer.status_code == 200, answer.text
        return [b["id"] for b in answer.json()["data"]]

    assert await only(staff_id=o) == [ids[2]]
    assert await only(contact_id=5) == [ids[2], ids[0]]
    day2 = _at(0).isoformat()
    assert await only(**{"from": day2, "to": _at(14).isoformat()}) == [ids[0]]
    assert await only(**{"to": day2}) == [ids[3]]
    async with shop.app.db.write() as session:
        assert await service.set_status(session, ids[1], "cancelled", now=NOW)
    assert await only(status="cancelled") == [ids[1]]

    one = await http.get(f"/api/v1/bookings/{ids[2]}", headers=auth)
    assert one.status_code == 200, one.text
    got = one.json()
    assert got["id"] == got["booking_id"] == ids[2] and got["staff_id"] == o and got["client_name"] == "Галя"
    assert got["status"] == "pending" and got["price"].count(".") == 1 and got["created_at"].endswith("Z")
    assert got["start"] == _at(15).isoformat() and got["timezone"] == "Europe/Moscow" and got["contact_id"] == 5
    missing = await http.get("/api/v1/bookings/999999", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    huge = await http.get(f"/api/v1/bookings/{2**63}", headers=auth)
    assert huge.status_code == 422 and set(huge.json()) >= {"error", "message"}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("cursor=bogus!", "cursor"),
        ("cursor=bGVhZHM6MQ", "cursor"),  # a cursor of the leads list
        ("status=gone", "status"),
        ("from=tomorrow", "from"),
        ("to=2026-12-12T10:00:00", "to"),  # no offset
        ("staff_id=-1", None),
        ("staff_id=99999999999999999999", None),
        ("limit=0", None),
        ("limt=5", "invalid"),
    ],
)
async def test_bookings_bad_query_is_422(shop: Shop, http: httpx.AsyncClient, query: str, code: str | None) -> None:
    answer = await http.get(f"/api/v1/bookings?{query}", headers=await _auth(shop, "bookings.read"))
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["error"] == code


async def test_leads_page_filter_and_one(shop: Shop, http: httpx.AsyncClient) -> None:
    ids = []
    async with shop.app.db.write() as session:
        for i, source in enumerate(("site", "avito", "site")):
            lead = NewLead(client_name=f"Клиент {i}", phone=f"+7912000000{i}", source=source, comment="<b>hi</b>",
                           utm={"source": "yandex"})  # fmt: skip
            ids.append((await service.record_lead(session, lead, now=NOW)).lead_id)
    auth = await _auth(shop, "leads.read")
    assert (await http.get("/api/v1/bookings/leads", headers=await _auth(shop, "leads"))).status_code == 403
    assert (await http.get("/api/v1/bookings/leads", headers=await _auth(shop, "bookings.read"))).status_code == 403
    first = (await http.get("/api/v1/bookings/leads?limit=2", headers=auth)).json()
    assert [x["id"] for x in first["data"]] == [ids[2], ids[1]] and first["next_cursor"]
    rest = (await http.get("/api/v1/bookings/leads", params={"cursor": first["next_cursor"]}, headers=auth)).json()
    assert [x["id"] for x in rest["data"]] == [ids[0]] and rest["next_cursor"] is None
    sites = (await http.get("/api/v1/bookings/leads?source=site", headers=auth)).json()
    assert [x["id"] for x in sites["data"]] == [ids[2], ids[0]]
    bad = await http.get("/api/v1/bookings/leads?source=Site%20X", headers=auth)
    assert bad.status_code == 422 and bad.json()["error"] == "source"
    bad = await http.get("/api/v1/bookings/leads?cursor=Ym9va2luZ3M6MQ", headers=auth)  # a bookings cursor
    assert bad.status_code == 422 and bad.json()["error"] == "cursor"
    one = (await http.get(f"/api/v1/bookings/leads/{ids[1]}", headers=auth)).json()
    assert one["source"] == "avito" and one["phone"] == "+79120000001" and one["status"] == "new"
    assert one["utm"] == {"source": "yandex"} and one["comment"] == "<b>hi</b>" and one["created_at"].endswith("Z")
    missing = await http.get("/api/v1/bookings/leads/999999", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    spec = (await http.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/bookings", "/api/v1/bookings/{booking_id}", "/api/v1/bookings/leads/{lead_id}"):
        assert spec[path]["get"]["responses"]["200"]["content"]["application/json"]["example"], path
    assert spec["/api/v1/bookings/leads"]["get"]["responses"]["422"]
