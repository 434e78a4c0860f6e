"""Settings over HTTP on SQLite and PostgreSQL: roles, hostile input (nothing saved), masked tokens,
Telegram bots checked against the fake Bot API, and business hours / hand-off texts reaching the buyer
through the web chat without a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import ChannelAccount, EventLog, Setting
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.conversations.settings_store import HOURS_KEY, TEXTS_KEY
from otklik.platform.users import Role
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from tests.conftest import make_settings
from tests.fixtures.admin import Admin

SECRET_PART = DEFAULT_TOKEN.split(":")[1]
WEEK_ALL_DAY = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "00:00-24:00")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def otklik(tmp_path: Path, db_url: str, fake: FakeTelegramServer) -> AsyncIterator[Otklik]:
    """The admin fixtures' Otklik, with Telegram pointed at the fake Bot API."""
    app = Otklik.build(make_settings(tmp_path, db_url, telegram_api_url=fake.base_url))
    await app.start()
    try:
        yield app
    finally:
        await app.close()


async def audit_count(otklik: Otklik, prefix: str = "") -> int:
    async with otklik.db.read() as session:
        query = select(func.count()).select_from(EventLog).where(EventLog.kind.like(prefix + "%"))
        return int(await session.scalar(query) or 0)


async def setting(otklik: Otklik, key: str) -> dict[str, Any] | None:
    async with otklik.db.read() as session:
        row = await session.get(Setting, key)
        return dict(row.value) if row else None


# --- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ANALYST, Role.MODERATOR])
async def test_only_owners_and_admins_reach_settings(as_role, otklik: Otklik, role: Role) -> None:  # type: ignore[no-untyped-def]
    client: Admin = await as_role(role)
    for path in ("/admin/settings", "/admin/settings/hours", "/admin/settings/languages", "/admin/settings/texts"):
        page = await client.http.get(path, headers={"accept": "text/html"})
        assert page.status_code == 403, path
    refused = await client.post(
        "/admin/settings/hours", {"timezone": "Europe/Moscow", "enabled": "1", "mon": "09:00-18:00"}
    )
    assert refused.status_code == 403
    assert await setting(otklik, HOURS_KEY) is None
    assert await audit_count(otklik, "settings.") == 0


async def test_an_admin_opens_every_settings_page(as_role) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    for path, marker in (
        ("/admin/settings", "webchat"),
        ("/admin/settings/hours", 'name="timezone"'),
        ("/admin/settings/languages", "care-ru"),
        ("/admin/settings/texts", "text:handoff:ru"),
    ):
        page = await admin.http.get(path)
        assert page.status_code == 200 and marker in page.text, path


# --- business hours --------------------------------------------------------------------------------


async def test_business_hours_are_saved_from_the_form_and_audited(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    form = {"timezone": "Europe/Madrid", "enabled": "1", "mon": "09:00-13:00, 14:00-18:00", "fri": "22:00-02:00"}
    response = await admin.post(
        "/admin/settings/hours", {**form, "holidays": "2027-01-01\n2027-01-06"}, follow_redirects=True
    )
    assert response.status_code == 200, response.text
    assert "Saved." in response.text
    assert 'value="09:00-13:00, 14:00-18:00"' in response.text
    stored = await setting(otklik, HOURS_KEY)
    assert (
        stored is not None
        and stored["timezone"] == "Europe/Madrid"
        and stored["holidays"] == ["2027-01-01", "2027-01-06"]
    )
    assert otklik.live.snapshot.hours.timezone == "Europe/Madrid"  # live at once, no restart
    async with otklik.db.read() as session:
        entry = (await session.execute(select(EventLog).where(EventLog.kind == "settings.business_hours"))).scalar_one()
    assert entry.actor == "user:admin" and entry.data["new"]["week"]["fri"] == ["22:00-02:00"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"timezone": "Mars/Olympus", "enabled": True, "week": {"mon": "09:00-18:00"}}, "unknown time zone"),
        ({"timezone": "Europe/Moscow", "enabled": True, "week": {"mon": "09:00-12:00, 11:00-13:00"}}, "overlaps"),
        (
            {"timezone": "Europe/Moscow", "enabled": True, "week": {"mon": "18:00-09:00", "tue": "08:00-10:00"}},
            "overlaps",
        ),
        ({"timezone": "Europe/Moscow", "enabled": True, "week": {"mon": "9 to 18"}}, "not an interval"),
        ({"timezone": "Europe/Moscow", "enabled": True, "week": {"mon": [["09:00", "09:01"]] * 10_000}}, "at most 8"),
        ({"timezone": "Europe/Moscow", "enabled": True, "holidays": ["<script>"]}, "not a date"),
    ],
)
async def test_bad_hours_get_a_clear_error_and_nothing_is_saved(
    as_role, otklik: Otklik, body: dict[str, Any], message: str
) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post_json("/admin/settings/hours", body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert await setting(otklik, HOURS_KEY) is None
    assert await audit_count(otklik, "settings.") == 0


async def test_a_bad_form_keeps_what_was_typed_and_escapes_it(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post(
        "/admin/settings/hours", {"timezone": "<b>Moon</b>", "enabled": "1", "tue": "<script>alert(1)</script>"}
    )
    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in response.text and "&lt;script&gt;" in response.text
    assert "unknown time zone" in response.text
    assert await setting(otklik, HOURS_KEY) is None


async def test_oversized_and_malformed_json_bodies_are_refused(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    huge = await admin.http.post(
        "/admin/settings/hours",
        content=b'{"week": "' + b"x" * 600_000 + b'"}',
        headers={"X-CSRF-Token": admin.csrf, "content-type": "application/json"},
    )
    assert huge.status_code == 413 and "KB" in huge.json()["detail"]
    broken = await admin.http.post(
        "/admin/settings/hours",
        content=b"[1, 2",
        headers={"X-CSRF-Token": admin.csrf, "content-type": "application/json"},
    )
    assert broken.status_code == 400
    assert await setting(otklik, HOURS_KEY) is None


async def test_a_post_without_csrf_is_refused(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.http.post("/admin/settings/hours", data={"timezone": "Europe/Moscow", "enabled": "1"})
    assert response.status_code == 403
    assert await setting(otklik, HOURS_KEY) is None


# --- Telegram bots and tokens ------------------------------------------------------------------------


async def test_a_bot_is_connected_checked_and_its_token_never_shown(
    as_role, otklik: Otklik, fake: FakeTelegramServer
) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    added = await admin.post(
        "/admin/settings/accounts/telegram", {"token": DEFAULT_TOKEN, "name": "", "pack": "care-ru"}
    )
    assert added.status_code == 303, added.text  # post/redirect/get
    added = await admin.http.get(added.headers["location"])
    assert "@otklik_test_bot" in added.text and "123456:TE…ik" in added.text
    async with otklik.db.read() as session:
        account = (await session.execute(select(ChannelAccount).where(ChannelAccount.kind == "telegram"))).scalar_one()
    assert account.secret and SECRET_PART not in account.secret  # encrypted at rest
    assert account.id in otklik.ctx.accounts and account.id in otklik.ctx.senders  # live without a restart
    assert fake.calls_of("getMe")

    check = await admin.post(f"/admin/settings/accounts/{account.id}/test")
    assert check.status_code == 200 and "@otklik_test_bot answers" in check.text

    again = await admin.post(
        "/admin/settings/accounts/telegram", {"token": DEFAULT_TOKEN, "pack": "care-ru"}, follow_redirects=True
    )
    assert again.status_code == 200 and "already connected" in again.text

    off = await admin.post(f"/admin/settings/accounts/{account.id}/enabled", {"enabled": "0"})
    assert off.status_code == 303
    assert account.id not in otklik.ctx.accounts
    on = await admin.post(f"/admin/settings/accounts/{account.id}/enabled", {"enabled": "1"})
    assert on.status_code == 303 and account.id in otklik.ctx.accounts

    pages = [
        await admin.http.get(p)
        for p in ("/admin/settings", "/admin/settings/texts", "/admin/audit", "/admin/audit.csv")
    ]
    for page in pages:
        assert page.status_code == 200 and SECRET_PART not in page.text, page.url
    async with otklik.db.read() as session:
        entries = (await session.execute(select(EventLog).where(EventLog.kind.like("channel.%")))).scalars().all()
    assert [e.kind for e in entries] == ["channel.add", "channel.disable", "channel.enable"]
    assert all(SECRET_PART not in str(e.data) for e in entries)


async def test_a_webchat_check_is_always_ok(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    webchat_id = next(a.id for a in otklik.ctx.accounts.values() if a.kind == "webchat")
    response = await admin.http.post(
        f"/admin/settings/accounts/{webchat_id}/test",
        headers={"X-CSRF-Token": admin.csrf, "accept": "application/json"},
    )
    assert response.json() == {"ok": True, "message": "web chat: served by this server"}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"token": "1" * 5000}, "at most 200 characters"),
        ({"token": "not a token"}, "not a Telegram bot token"),
        ({"token": "999999:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "Telegram rejected the token 999999:AA…AA"),
        ({"token": DEFAULT_TOKEN, "name": "<b>shop</b>"}, "account name"),
        ({"token": DEFAULT_TOKEN, "pack": "../../etc"}, "unknown pack"),
    ],
)
async def test_bad_bots_get_a_clear_error_and_nothing_is_saved(
    as_role, otklik: Otklik, form: dict[str, str], message: str
) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post("/admin/settings/accounts/telegram", {"pack": "care-ru", "name": "", **form})
    assert response.status_code in (422, 400), response.text
    assert message in response.text
    assert "<b>shop</b>" not in response.text
    assert form["token"] not in response.text or len(form["token"]) < 12
    async with otklik.db.read() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(ChannelAccount).where(ChannelAccount.kind == "telegram")
            )
            == 0
        )
    assert await audit_count(otklik, "channel.") == 0


async def test_an_unreachable_telegram_is_reported_not_crashed(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    otklik.settings.telegram_api_url = "http://127.0.0.1:9"  # nothing listens there
    response = await admin.post("/admin/settings/accounts/telegram", {"token": DEFAULT_TOKEN, "pack": "care-ru"})
    assert response.status_code == 503 and "did not answer" in response.text


async def test_an_unknown_account_is_404(as_role) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    assert (await admin.post("/admin/settings/accounts/99999/enabled", {"enabled": "0"})).status_code == 404
    assert (await admin.post("/admin/settings/accounts/99999/test")).status_code == 404
    assert (await admin.post("/admin/settings/accounts/1/enabled", {"enabled": "maybe"})).status_code == 422


# --- languages and texts ---------------------------------------------------------------------------


async def test_languages_are_checked_against_the_pack(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    bad = await admin.post("/admin/settings/languages", {"pack": "care-ru", "default": "en", "enabled": "en"})
    assert bad.status_code == 422 and "has no texts in en" in bad.text
    good = await admin.post("/admin/settings/languages", {"pack": "care-ru", "default": "ru", "enabled": "ru"})
    assert good.status_code == 303
    assert otklik.live.snapshot.languages["care-ru"].enabled == ("ru",)
    assert (await admin.post("/admin/settings/languages", {"pack": "nope", "default": "ru"})).status_code == 404
    assert (await admin.post("/admin/settings/admin-language", {"language": "xx"})).status_code == 422
    assert (await admin.post("/admin/settings/admin-language", {"language": "es"})).status_code == 303
    assert otklik.live.snapshot.admin_language == "es"
    assert await audit_count(otklik, "settings.languages") == 1
    assert await audit_count(otklik, "settings.admin_language") == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("text:handoff:ru", "Привет {{ name | upper }}", "unsupported placeholder"),
        ("text:after_hours:ru", "Вернёмся {{ secret }}", "unknown placeholder"),
        ("text:handoff:ru", "я" * 5000, "at most 1000"),
        ("text:handoff:en", "Hello", "does not answer in"),
        ("text:greeting:ru", "Привет", "not an editable text"),
        ("text:handoff:ru", "bell\x07", "control characters"),
    ],
)
async def test_bad_texts_are_refused_and_nothing_is_saved(
    as_role, otklik: Otklik, field: str, value: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post("/admin/settings/texts", {"pack": "care-ru", field: value})
    assert response.status_code == 422 and message in response.text
    assert await setting(otklik, TEXTS_KEY) is None


# --- the buyer's side, through the web chat --------------------------------------------------------


async def chat_replies(http: httpx.AsyncClient, sid: str, after: int, expect: int) -> tuple[list[str], int]:
    got: list[str] = []
    for _ in range(10):
        body = (await http.get(f"/api/webchat/sessions/{sid}/messages", params={"after": after, "wait": 0.5})).json()
        got += [m["text"] for m in body["messages"]]
        after = body["cursor"]
        if len(got) >= expect:
            break
    return got, after


async def ask_for_operator(app: Any) -> list[str]:
    """A new buyer in the web chat asks for a person; everything the bot says after that."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chat") as http:
        sid = (await http.post("/api/webchat/sessions", json={})).json()["session_id"]
        _greeting, cursor = await chat_replies(http, sid, 0, 1)
        sent = await http.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "оператор"})
        assert sent.status_code == 202
        texts, cursor = await chat_replies(http, sid, cursor, 1)
        more = (await http.get(f"/api/webchat/sessions/{sid}/messages", params={"after": cursor, "wait": 0.3})).json()
        return texts + [m["text"] for m in more["messages"]]  # and anything still to come


async def test_business_hours_change_what_the_buyer_hears_at_hand_off(app, as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    today = utcnow().astimezone(otklik.live.snapshot.hours.zone).date()
    closed = [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    saved = await admin.post_json(
        "/admin/settings/hours",
        {"timezone": "Europe/Moscow", "enabled": True, "week": WEEK_ALL_DAY, "holidays": closed},
    )
    assert saved.status_code == 200, saved.text
    outside = await ask_for_operator(app)
    assert outside[0].startswith("Передаю ваш вопрос менеджеру")
    reopening = _on_day_ru(today + timedelta(days=2))
    assert outside[1] == f"Операторы отвечают ежедневно круглосуточно по Москве; ответим {reopening} в 0:00."

    opened = await admin.post_json(
        "/admin/settings/hours", {"timezone": "Europe/Moscow", "enabled": True, "week": WEEK_ALL_DAY}
    )
    assert opened.status_code == 200
    inside = await ask_for_operator(app)
    assert len(inside) == 1 and inside[0].startswith("Передаю ваш вопрос менеджеру")


def _on_day_ru(day: Any) -> str:
    days = ("в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу", "в воскресенье")
    return days[day.weekday()]


async def test_hand_off_texts_apply_without_a_restart(app, as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    today = utcnow().astimezone(otklik.live.snapshot.hours.zone).date()
    closed = [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    await admin.post_json(
        "/admin/settings/hours",
        {"timezone": "Europe/Moscow", "enabled": True, "week": WEEK_ALL_DAY, "holidays": closed},
    )
    saved = await admin.post(
        "/admin/settings/texts",
        {
            "pack": "care-ru",
            "text:handoff:ru": "Зову живого менеджера, {{ contact.first_name | default('друг') }}!",
            "text:after_hours:ru": "Сейчас выходной; вернёмся {{ next }}.",
        },
    )
    assert saved.status_code == 303, saved.text
    said = await ask_for_operator(app)
    assert said[0] == "Зову живого менеджера, друг!"
    assert said[1] == f"Сейчас выходной; вернёмся {_on_day_ru(today + timedelta(days=2))} в 0:00."
    reset = await admin.post(
        "/admin/settings/texts", {"pack": "care-ru", "text:handoff:ru": "", "text:after_hours:ru": ""}
    )
    assert reset.status_code == 303
    assert (await ask_for_operator(app))[0].startswith("Передаю ваш вопрос менеджеру")
    assert await audit_count(otklik, "settings.texts") == 2


async def test_another_process_picks_up_a_change(tmp_path: Path, db_url: str, as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    other = Otklik.build(make_settings(tmp_path / "other", db_url))
    await other.start(migrate=False)
    try:
        admin: Admin = await as_role(Role.ADMIN)
        await admin.post_json(
            "/admin/settings/hours", {"timezone": "Asia/Yekaterinburg", "enabled": True, "week": {"mon": "09:00-18:00"}}
        )
        assert other.live.snapshot.hours.timezone != "Asia/Yekaterinburg"
        await other._rebuild_engines()  # what the flows/settings watcher does every 2 s
        assert other.live.snapshot.hours.timezone == "Asia/Yekaterinburg"
    finally:
        await other.close()
