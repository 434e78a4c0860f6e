"""The dashboards (roles, filters, KPIs, drill-down into the inbox, CSV / XLSX of every table), `GET
/api/v1/metrics` (tokens and scopes) and bad input on both: one hand-built install (fixture.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable

import httpx
import pytest
from openpyxl import load_workbook

from otklik.bootstrap import Otklik
from otklik.capabilities.metrics.aggregate import recompute
from otklik.platform.apitokens import create_token, revoke_token
from otklik.platform.users import Role
from tests.capabilities.metrics import fixture as fx
from tests.fixtures.admin import Admin

RANGE = {"from": "2026-03-01", "to": "2026-03-10"}
HOSTILE = '=HYPERLINK("http://evil","x")'


@pytest.fixture
async def data(otklik: Otklik) -> fx.Builder:
    b = fx.Builder(otklik)
    await fx.phase_one(b)
    await fx.phase_two(b)
    await b.conversation(6, "hook")  # a source a spreadsheet would run as a formula
    await b.buyer(6, fx.at(5, 10))
    await b.event(6, fx.at(5, 10), "start", {"payload": HOSTILE})
    await recompute(otklik.db, fx.COUNTERS, now=fx.NOW)
    return b


async def test_the_dashboard_is_for_analysts_and_above(
    as_role: Callable[[Role], Awaitable[Admin]], data: fx.Builder
) -> None:
    for role in (Role.OPERATOR, Role.MODERATOR):
        client = await as_role(role)
        assert (await client.http.get("/admin/metrics")).status_code == 403, role
        assert (await client.http.get("/admin/metrics/export.csv?table=days")).status_code == 403, role
        assert (await client.http.get("/admin/metrics/behind?metric=handoffs")).status_code == 403, role
    analyst = await as_role(Role.ANALYST)
    page = await analyst.http.get("/admin/metrics", params=RANGE)
    assert page.status_code == 200
    assert 'data-k="conversations"><strong><a href="/admin/metrics/behind?' in page.text
    assert 'data-testid="chart-conversations"' in page.text and 'data-testid="table-flows"' in page.text
    assert 'data-k="handled_by_bot_share" data-met="True"' in page.text  # 6 of 9 >= 60 %
    assert 'data-k="bot_p90" data-met="False"' in page.text  # 15 s > 10 s
    assert HOSTILE not in page.text and "=HYPERLINK(&#34;http://evil&#34;" in page.text  # escaped
    for language, word in (("ru", "Возобновлённые"), ("es", "Reabiertas"), ("en", "Reopened")):
        await analyst.post("/admin/profile/language", {"language": language})
        assert word in (await analyst.http.get("/admin/metrics", params=RANGE)).text


async def test_behind_a_number_are_links_into_the_inbox(
    as_role: Callable[[Role], Awaitable[Admin]], data: fx.Builder
) -> None:
    analyst = await as_role(Role.ANALYST)
    page = await analyst.http.get("/admin/metrics/behind", params={**RANGE, "metric": "seen_unanswered"})
    assert page.status_code == 200
    for number in (1, 5, 7):
        assert f'href="/admin/inbox/c/{data.conversations[number]}"' in page.text
    assert f'/admin/inbox/c/{data.conversations[2]}"' not in page.text
    bad = await analyst.http.get("/admin/metrics/behind", params={**RANGE, "metric": "everything"})
    assert bad.status_code == 422 and "metric: one of" in bad.text


async def test_every_table_exports_as_csv_and_xlsx_without_formulas(
    as_role: Callable[[Role], Awaitable[Admin]], data: fx.Builder
) -> None:
    analyst = await as_role(Role.ANALYST)
    for table in ("channels", "accounts", "sources", "flows", "operators", "days"):
        response = await analyst.http.get("/admin/metrics/export.csv", params={**RANGE, "table": table})
        assert response.status_code == 200 and "attachment" in response.headers["content-disposition"], table
        rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
        assert len(rows) >= 2 and all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
        book = await analyst.http.get("/admin/metrics/export.xlsx", params={**RANGE, "table": table})
        sheet = load_workbook(io.BytesIO(book.content)).active
        assert sheet is not None and sheet.max_row == len(rows), table
    sources = await analyst.http.get("/admin/metrics/export.csv", params={**RANGE, "table": "sources"})
    assert "'" + HOSTILE.replace('"', '""') in sources.text
    days = list(csv.reader(io.StringIO((await analyst.http.get(
        "/admin/metrics/export.csv", params={**RANGE, "table": "days"})).text.lstrip("\ufeff"))))  # fmt: skip
    assert sum(int(row[1]) for row in days[1:]) == 9  # the fixture's 8 conversations and the hostile one


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, "reversed"),
        ({"from": "2016-01-01", "to": "2026-01-01"}, "at most 400"),
        ({"from": "yesterday"}, "from: a date like"),
        ({"colour": "red"}, "unknown filter 'colour'"),
        ({"account": "99999999999999999999999"}, "account: a channel account id"),
        ({"account": "424242"}, "no channel account 424242"),
        ({"channel": "pigeon"}, "no channel kind 'pigeon'"),
        ({"source": "<script>"}, "source: letters"),
        ({"flow": "x" * 500}, "longer than 200"),
    ],
)
async def test_bad_filters_are_refused_clearly(
    as_role: Callable[[Role], Awaitable[Admin]],
    otklik: Otklik,
    app,
    params: dict[str, str],
    words: str,  # type: ignore[no-untyped-def]
) -> None:
    analyst = await as_role(Role.ANALYST)
    page = await analyst.http.get("/admin/metrics", params=params)
    assert page.status_code == 422 and words in page.text.replace("&#39;", "'"), page.text[-800:]
    export = await analyst.http.get("/admin/metrics/export.csv", params={**params, "table": "days"})
    assert export.status_code == 422
    _id, token = await create_token(otklik.db, "m", "metrics", actor="test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        api = await http.get("/api/v1/metrics", params=params, headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 422 and api.json()["error"] == "invalid" and words in api.json()["message"]


async def test_the_api_needs_a_token_with_the_metrics_scope(app, otklik: Otklik, data: fx.Builder) -> None:  # type: ignore[no-untyped-def]
    _id, token = await create_token(otklik.db, "bi", "metrics", actor="test")
    _id, other = await create_token(otklik.db, "shop", "financing", actor="test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        assert (await http.get("/api/v1/metrics")).status_code == 401
        assert (await http.get("/api/v1/metrics", headers={"Authorization": f"Bearer {other}"})).status_code == 403
        ok = await http.get("/api/v1/metrics", params={**RANGE, "channel": "telegram"},
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert ok.status_code == 200
        body = ok.json()
        for key in ("conversations", "handoffs", "handled_by_bot_share", "bot_response_ms",
                    "operator_first_response_ms", "seen_unanswered", "leads", "bookings", "orders"):  # fmt: skip
            assert key in body, key
        assert body["conversations"] == 6 and body["filters"] == {"channel": "telegram"}
        assert set(body["bot_response_ms"]) >= {"p50", "p90", "p99"}
        twice = await http.get("/api/v1/metrics?channel=telegram&channel=webhook",
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert twice.status_code == 422 and "once" in twice.json()["message"]
        await revoke_token(otklik.db, "bi", actor="test")
        assert (await http.get("/api/v1/metrics", headers={"Authorization": f"Bearer {token}"})).status_code == 401
        spec = (await http.get("/openapi.json")).json()
    assert "/api/v1/metrics" in spec["paths"]
