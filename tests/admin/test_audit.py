"""The audit log page and its CSV export: roles, filters, cursor pages, escaping (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

import pytest

from otklik.adapters.db.models import EventLog
from otklik.bootstrap import Otklik
from otklik.platform.audit import audit
from otklik.platform.users import Role
from tests.fixtures.admin import Admin

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)  # after the users' own sign-in entries


async def seed(otklik: Otklik) -> None:
    """120 settings changes by two people a minute apart, bot events in between, one hostile entry."""
    async with otklik.db.write() as session:
        for n in range(120):
            actor = "user:alice" if n % 2 else "user:bob"
            audit(
                session,
                actor,
                "settings.business_hours",
                "settings",
                "business_hours",
                {"n": n},
                now=T0 + timedelta(minutes=n),
            )
            session.add(
                EventLog(
                    ts=T0 + timedelta(minutes=n, seconds=1),
                    actor="bot",
                    kind="handoff",
                    subject_type="conversation",
                    subject_id=str(n),
                    data={},
                )
            )
        audit(
            session,
            "user:<img src=x onerror=alert(1)>",
            "channel.add",
            "channel_account",
            "7",
            {"name": "<script>alert(1)</script>", "f": "=HYPERLINK(1)"},
            now=T0 + timedelta(days=2),
        )
        session.add(
            EventLog(
                ts=T0 + timedelta(days=3), actor="llm", kind="llm_usage", subject_type="llm", subject_id="x", data={}
            )
        )


def kinds(page: str) -> list[str]:
    return re.findall(r'<tr data-kind="([^"]+)"', page)


def numbers(page: str) -> list[int]:
    return [int(n) for n in re.findall(r"<dt>n:</dt> <dd>(\d+)</dd>", html.unescape(page))]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ANALYST, Role.MODERATOR])
async def test_only_owners_and_admins_read_the_audit_log(as_role, role: Role) -> None:  # type: ignore[no-untyped-def]
    client: Admin = await as_role(role)
    assert (await client.http.get("/admin/audit", headers={"accept": "text/html"})).status_code == 403
    assert (await client.http.get("/admin/audit.csv")).status_code == 403


async def test_newest_first_only_audit_kinds_and_escaped(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    await seed(otklik)
    admin: Admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/audit")
    assert page.status_code == 200
    shown = kinds(page.text)
    assert shown[0] == "channel.add" and "handoff" not in shown and "llm_usage" not in shown
    assert len(shown) == 50
    assert "<script>alert(1)</script>" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;" in page.text


async def test_cursor_pages_cover_everything_once(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    await seed(otklik)
    admin: Admin = await as_role(Role.ADMIN)
    seen: list[int] = []
    url = "/admin/audit?kind=settings.business_hours"
    for _ in range(5):
        page = await admin.http.get(url)
        assert page.status_code == 200
        seen += numbers(page.text)
        older = re.search(r'href="(/admin/audit\?[^"]*cursor=[^"]+)" data-testid="older"', page.text)
        if older is None:
            break
        url = older.group(1).replace("&amp;", "&")
        assert "kind=settings.business_hours" in url  # the filter is kept
    assert seen == list(range(119, -1, -1))


async def test_filters_by_actor_kind_subject_and_dates(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    await seed(otklik)
    admin: Admin = await as_role(Role.ADMIN)
    alice = await admin.http.get("/admin/audit", params={"actor": "user:alice"})
    assert set(kinds(alice.text)) == {"settings.business_hours"} and all(n % 2 for n in numbers(alice.text))
    channel = await admin.http.get("/admin/audit", params={"kind": "channel."})
    assert kinds(channel.text) == ["channel.add"]
    subject = await admin.http.get("/admin/audit", params={"subject": "channel_account:7"})
    assert kinds(subject.text) == ["channel.add"]
    none = await admin.http.get("/admin/audit", params={"subject": "channel_account:8"})
    assert kinds(none.text) == [] and 'data-testid="empty"' in none.text
    # 2030-06-01 12:00 UTC is 15:00 in Moscow (the default zone); the hostile entry is on 2030-06-03
    day = await admin.http.get("/admin/audit", params={"from": "2030-06-03", "to": "2030-06-03"})
    assert kinds(day.text) == ["channel.add"]
    hidden = await admin.http.get("/admin/audit", params={"kind": "llm_usage"})
    assert kinds(hidden.text) == []  # not an audit kind


@pytest.mark.parametrize(
    "params",
    [{"from": "yesterday"}, {"cursor": "!!!not-a-cursor"}, {"actor": "x" * 500}, {"kind": "a\x00b"}],
)
async def test_bad_filters_get_a_clear_error(as_role, params: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/audit", params=params)
    assert page.status_code == 422 and 'role="alert"' in page.text


async def test_csv_export_follows_the_filter_and_defuses_formulas(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    await seed(otklik)
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.http.get("/admin/audit.csv", params={"kind": "settings."})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["time", "actor", "kind", "subject_type", "subject_id", "data"]
    assert len(rows) == 121 and {r[2] for r in rows[1:]} == {"settings.business_hours"}
    everything = list(csv.reader(io.StringIO((await admin.http.get("/admin/audit.csv")).text)))
    hostile = next(r for r in everything if r[2] == "channel.add")
    assert hostile[5].startswith("{") and "=HYPERLINK" in hostile[5]
    assert not any(cell.startswith(("=", "+", "@")) for row in everything for cell in row)
    assert (await admin.http.get("/admin/audit.csv", params={"to": "nope"})).status_code == 422


async def test_a_settings_change_appears_in_the_log(as_role) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    saved = await admin.post(
        "/admin/settings/hours", {"timezone": "Europe/Moscow", "enabled": "1", "mon": "09:00-18:00"}
    )
    assert saved.status_code == 303
    page = await admin.http.get("/admin/audit", params={"actor": "user:admin"})
    assert kinds(page.text)[0] == "settings.business_hours" and "09:00-18:00" in page.text
