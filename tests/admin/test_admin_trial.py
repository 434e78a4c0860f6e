"""Issue 13 §3: what a new user's trial of the admin found (translations, one time zone, readable audit,
an admin 404 page and a favicon, the contact panel, flow names, one cashback menu entry)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from otklik.adapters.db.models import EventLog, Message
from otklik.bootstrap import Otklik
from otklik.platform.audit import audit
from otklik.platform.users import Role
from otklik.platform.webkit.i18n import catalog, load_catalog, translator
from tests.capabilities.inbox.inbox_helpers import waiting
from tests.fixtures.admin import Admin, locale_folders

ZONE = "Asia/Vladivostok"  # UTC+10 all year: every local time differs from the UTC one


def menu(html: str) -> str:
    match = re.search(r"<nav>(.*?)</nav>", html, re.S)
    assert match, "no menu on the page"
    return match.group(1)


async def in_russian(admin: Admin) -> None:
    assert (await admin.post("/admin/profile/language", {"language": "ru"})).status_code == 303


# --- 1. every visible string through the translator ------------------------------------------------


def test_regression_yes_no_keys_are_strings_in_the_catalog() -> None:
    """A bare `yes:` in YAML is the boolean True: the catalog had no "yes", and pages showed the key."""
    assert catalog()["yes"]["ru"] == "да" and catalog()["no"]["ru"] == "нет"
    assert translator("ru")("yes") == "да" and translator("es")("yes") == "sí"
    # `{ru: Размер, посадка, …}` read as two keys: the Russian text lost everything after the comma
    # (care's strings are in its own locales folder, read here as the admin merges them)
    texts = load_catalog(locale_folders())
    assert texts["care.cat.size_fit"]["ru"] == "Размер, посадка"
    assert all(isinstance(k, str) for k in texts)


async def test_regression_untranslated_yes_in_settings_and_users(as_role) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    await in_russian(admin)
    users = await admin.http.get("/admin/users")
    assert users.status_code == 200
    assert "<td>да</td>" in users.text and "<td>yes</td>" not in users.text
    settings = await admin.http.get("/admin/settings")
    assert settings.status_code == 200
    assert "<td>да</td>" in settings.text and "<td>yes</td>" not in settings.text


# --- 2. one time zone everywhere -------------------------------------------------------------------


async def test_regression_one_time_zone_on_audit_inbox_and_users(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    saved = await admin.post("/admin/settings/hours", {"timezone": ZONE, "enabled": "1", "mon": "09:00-18:00"})
    assert saved.status_code == 303
    zone = ZoneInfo(ZONE)
    conversation_id = await waiting(otklik, "buyer-tz")
    async with otklik.db.read() as session:
        entry = (await session.scalars(select(EventLog).where(EventLog.kind == "settings.business_hours"))).one()
        message = (
            await session.scalars(select(Message).where(Message.conversation_id == conversation_id).limit(1))
        ).one()

    def shown(moment: datetime, fmt: str) -> tuple[str, str]:
        return moment.astimezone(zone).strftime(fmt), moment.astimezone(UTC).strftime(fmt)

    audit = await admin.http.get("/admin/audit")
    local, utc = shown(entry.ts, "%Y-%m-%d %H:%M:%S")
    assert f'data-tz="{ZONE}">{local}</time>' in audit.text and utc not in audit.text

    conversation = await admin.http.get(f"/admin/inbox/c/{conversation_id}")
    local, utc = shown(message.created_at, "%d.%m %H:%M")
    assert f'data-tz="{ZONE}">{local}</time>' in conversation.text and f">{utc}<" not in conversation.text

    users = await admin.http.get("/admin/users")
    assert f'data-tz="{ZONE}"' in users.text
    for page in (audit, conversation, users):  # the zone is named on every page, and no other one
        assert 'data-testid="tz"' in page.text and ZONE in page.text
        assert set(re.findall(r'data-tz="([^"]+)"', page.text)) == {ZONE}
        assert "Europe/Moscow" not in page.text


# --- 3. readable audit entries ---------------------------------------------------------------------


async def test_regression_audit_shows_readable_kinds_and_key_value_details(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    async with otklik.db.write() as session:
        audit(session, "user:x", "user.something_new", "user", "1", {"why": "<b>bold</b>", "n": {"a": 1}})
    await in_russian(admin)
    page = await admin.http.get("/admin/audit")
    assert page.status_code == 200
    texts = re.findall(r'title="([^"]+)" data-testid="kind">([^<]+)</a>', page.text)
    assert ("user.login", "Вход в админку") in texts  # the admin's own sign-in
    assert ("user.something_new", "user.something_new") in texts  # unknown kind: shown as it is
    assert "<dt>why:</dt> <dd>&lt;b&gt;bold&lt;/b&gt;</dd>" in page.text and "<b>bold</b>" not in page.text
    assert "<dt>n:</dt> <dd>{&#34;a&#34;: 1}</dd>" in page.text
    assert '{"why"' not in page.text and "{&#34;why&#34;" not in page.text  # no raw JSON object per entry


# --- 4. an admin 404 page, a favicon ---------------------------------------------------------------


async def test_regression_unknown_admin_page_is_an_html_404_with_the_menu(as_role, anon) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/no-such-page", headers={"accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and 'data-nav="/admin/inbox"' in menu(page.text)
    assert page.headers["cache-control"] == "no-store"
    api = await admin.http.get("/admin/no-such-page", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    # anonymous visitors learn nothing about which pages exist
    redirect = await anon.get("/admin/no-such-page", headers={"accept": "text/html"})
    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/admin/login")
    assert (await anon.get("/admin/no-such-page", headers={"accept": "application/json"})).status_code == 401
    # outside the admin the default answer is kept
    outside = await anon.get("/no-such-page")
    assert outside.status_code == 404 and outside.json() == {"detail": "Not Found"}


async def test_regression_favicon(as_role, anon) -> None:  # type: ignore[no-untyped-def]
    icon = await anon.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")
    admin: Admin = await as_role(Role.ADMIN)
    home = await admin.http.get("/admin")
    assert '<link rel="icon" href="/favicon.ico"' in home.text


# --- 5. contact panel, flow names, one cashback entry ----------------------------------------------


async def test_regression_long_channel_id_does_not_overflow_the_contact_panel(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    long_id = "visitor-" + "x" * 120
    conversation_id = await waiting(otklik, long_id)
    admin: Admin = await as_role(Role.ADMIN)
    page = await admin.http.get(f"/admin/inbox/c/{conversation_id}")
    assert f'<code class="ident" title="{long_id}" data-testid="identity">{long_id}</code>' in page.text
    css = (await admin.http.get("/static/inbox/admin-inbox.css")).text
    rule = re.search(r"\.inbox-contact \.identities code\.ident \{([^}]*)\}", css)
    assert rule and "text-overflow: ellipsis" in rule.group(1) and "min-width: 0" in rule.group(1)


async def test_regression_flow_list_shows_names(as_role) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/flows")
    row = re.search(r'<tr data-flow="care.main">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    assert 'data-testid="flow-name">Главное меню</a>' in row.group(1) and "care.main" in row.group(1)


async def test_regression_cashback_is_one_menu_entry(as_role) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    nav = menu((await admin.http.get("/admin")).text)
    assert nav.count(">Cashback<") == 1
    assert 'data-nav="/admin/claims"' not in nav and 'data-nav="/admin/payouts"' not in nav
    payouts = menu((await admin.http.get("/admin/payouts")).text)
    assert re.search(r'class="active" data-nav="/admin/campaigns">Cashback<', payouts)

    moderator: Admin = await as_role(Role.MODERATOR)  # may not open campaigns: the entry leads to moderation
    nav = menu((await moderator.http.get("/admin")).text)
    assert nav.count(">Cashback<") == 1 and 'data-nav="/admin/claims">Cashback<' in nav
    assert 'data-nav="/admin/payouts"' not in nav and 'data-nav="/admin/campaigns"' not in nav
