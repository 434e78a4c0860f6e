"""Settings → Channels: a Wildberries API key and the API webhook channel connected from the admin through
the same use case as `otklik channels add`, on SQLite and PostgreSQL, with WB calls going to the fake WB
server. Roles, CSRF, hostile input (nothing saved), masked tokens, the webhook secret shown once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import ChannelAccount, EventLog
from otklik.adapters.wildberries import accounts as wbaccounts
from otklik.bootstrap import Otklik
from otklik.platform.users import Role
from otklik.testing.fake_wb import FakeWB, make_token
from tests.conftest import make_settings
from tests.fixtures.admin import Admin


@pytest.fixture
async def fake_wb() -> AsyncIterator[FakeWB]:
    async with FakeWB() as server:
        yield server


@pytest.fixture
async def otklik(tmp_path: Path, db_url: str, fake_wb: FakeWB) -> AsyncIterator[Otklik]:
    """The admin fixtures' Otklik with every WB call going to the fake WB server."""
    app = Otklik.build(make_settings(tmp_path, db_url, wb_api_url=fake_wb.url))
    await app.start()
    try:
        yield app
    finally:
        await app.close()


async def accounts_of(otklik: Otklik, kind: str) -> list[ChannelAccount]:
    async with otklik.db.read() as session:
        return list((await session.execute(select(ChannelAccount).where(ChannelAccount.kind == kind))).scalars())


async def added_audits(otklik: Otklik) -> list[EventLog]:
    async with otklik.db.read() as session:
        return list((await session.execute(select(EventLog).where(EventLog.kind == "channel.add"))).scalars())


# --- Wildberries -----------------------------------------------------------------------------------


async def test_a_seller_connects_the_wb_key_in_settings_and_tests_it(as_role, otklik: Otklik, fake_wb: FakeWB) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/settings")
    assert 'action="/admin/settings/accounts/wildberries"' in page.text
    response = await admin.post(
        "/admin/settings/accounts/wildberries", {"token": f"Bearer {fake_wb.token}", "name": "", "pack": "care-ru"}
    )
    assert response.status_code == 200, response.text
    assert 'data-testid="notice"' in response.text and "Wildberries key connected" in response.text
    assert fake_wb.token not in response.text  # masked from now on
    assert fake_wb.calls_to("/ping"), "the token was checked with WB before it was stored"
    [account] = await accounts_of(otklik, "wildberries")
    assert account.name == "wildberries" and account.secret and fake_wb.token not in account.secret
    assert otklik.vault.decrypt(account.secret) == fake_wb.token  # the Bearer prefix is dropped
    [entry] = await added_audits(otklik)
    assert entry.actor == "user:admin" and entry.data["kind"] == "wildberries" and fake_wb.token not in str(entry.data)
    # the sync job sees it like a CLI-added key
    assert [a.name for a in await wbaccounts.wb_accounts(otklik.db, otklik.vault)] == ["wildberries"]

    listed = await admin.http.get("/admin/settings")
    assert fake_wb.token not in listed.text and 'data-account="wildberries"' in listed.text
    pings = len(fake_wb.calls_to("/ping"))
    tested = await admin.post_json(f"/admin/settings/accounts/{account.id}/test", {})
    assert tested.status_code == 200 and tested.json()["ok"] is True, tested.text
    assert len(fake_wb.calls_to("/ping")) == pings + 1  # a real call through the client

    fake_wb.valid_tokens.discard(fake_wb.token)  # revoked in the seller portal
    revoked = await admin.post_json(f"/admin/settings/accounts/{account.id}/test", {})
    assert revoked.json()["ok"] is False and "Wildberries" in revoked.json()["message"]
    assert fake_wb.token not in revoked.text

    again = await admin.post_json("/admin/settings/accounts/wildberries", {"token": fake_wb.token, "name": "second"})
    assert again.status_code in (409, 422)  # revoked now, or already stored: never a second copy
    assert len(await accounts_of(otklik, "wildberries")) == 1


async def test_the_same_wb_key_twice_is_a_conflict(as_role, otklik: Otklik, fake_wb: FakeWB) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.OWNER)
    first = await admin.post_json("/admin/settings/accounts/wildberries", {"token": fake_wb.token})
    assert first.status_code == 201 and first.json()["token"].endswith(fake_wb.token[-2:])
    assert fake_wb.token not in first.text
    second = await admin.post_json("/admin/settings/accounts/wildberries", {"token": fake_wb.token, "name": "wb2"})
    assert second.status_code == 409 and "already stored" in second.json()["detail"]
    assert len(await accounts_of(otklik, "wildberries")) == 1


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "paste the Wildberries API token"),
        ("   ", "paste the Wildberries API token"),
        ("x" * 100_000, "not a Wildberries API token"),
        ("not-a-token", "not a Wildberries API token"),
        ("123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-bs", "not a Wildberries API token"),  # a Telegram token
        ("a.b.c", "not a Wildberries API token"),
        ("<script>alert(1)</script>.e30.x", "not a Wildberries API token"),
        (make_token(categories=("statistics",)), "Feedbacks and questions"),
        (make_token(categories=("feedbacks", "content"), read_only=True), "read"),
        (make_token(expires_at=datetime.now(UTC) - timedelta(days=1)), "expired"),
    ],
)
async def test_bad_wb_tokens_get_a_clear_error_and_nothing_is_saved(
    as_role, otklik: Otklik, fake_wb: FakeWB, token: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    fake_wb.allow(token)  # WB itself would accept it: the refusal is otklik's own check
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post("/admin/settings/accounts/wildberries", {"token": token, "pack": "care-ru"})
    assert response.status_code == 422, response.text
    assert 'data-testid="errors"' in response.text and message.lower() in response.text.lower()
    assert "<script>alert(1)</script>" not in response.text
    if len(token) > 20:
        assert token not in response.text
    assert await accounts_of(otklik, "wildberries") == [] and await added_audits(otklik) == []
    assert not fake_wb.calls_to("/ping")  # refused before any call


async def test_a_wb_token_wb_refuses_is_reported_and_not_stored(as_role, otklik: Otklik, fake_wb: FakeWB) -> None:  # type: ignore[no-untyped-def]
    forged = make_token()  # well-formed, but WB never issued it
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post_json("/admin/settings/accounts/wildberries", {"token": forged})
    assert response.status_code == 422 and "Wildberries rejected the API token" in response.json()["detail"]
    assert forged not in response.text
    assert await accounts_of(otklik, "wildberries") == []


async def test_an_unreachable_wb_is_reported_not_crashed(as_role, otklik: Otklik, fake_wb: FakeWB) -> None:  # type: ignore[no-untyped-def]
    otklik.settings.wb_api_url = "http://127.0.0.1:9"  # nothing listens there
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post("/admin/settings/accounts/wildberries", {"token": fake_wb.token})
    assert response.status_code == 503 and 'data-testid="errors"' in response.text
    assert await accounts_of(otklik, "wildberries") == []


# --- the API webhook channel -----------------------------------------------------------------------


async def test_the_api_channel_is_added_and_its_secret_shown_once(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post(
        "/admin/settings/accounts/webhook", {"name": "crm", "url": "https://crm.example.com/otklik", "pack": "care-ru"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    [account] = await accounts_of(otklik, "webhook")
    assert account.secret is not None
    secret = otklik.vault.decrypt(account.secret)
    assert f'<code data-testid="webhook-secret">{secret}</code>' in response.text
    assert secret not in account.secret and account.config["url"] == "https://crm.example.com/otklik"
    later = await admin.http.get("/admin/settings")
    assert secret not in later.text and "crm.example.com" in later.text
    [entry] = await added_audits(otklik)
    assert entry.data["kind"] == "webhook" and secret not in str(entry.data)
    dup = await admin.post("/admin/settings/accounts/webhook", {"name": "crm", "url": "https://other.example.com/"})
    assert dup.status_code == 409 and "already exists" in dup.text
    assert len(await accounts_of(otklik, "webhook")) == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"url": ""}, "the URL is required"),
        ({"url": "javascript:alert(1)"}, "must start with https://"),
        ({"url": "JavaScript://%0aalert(1)"}, "must start with https://"),
        ({"url": "file:///etc/passwd"}, "must start with https://"),
        ({"url": "https://"}, "no host"),
        ({"url": "https://a.example/\nx"}, "control characters"),
        ({"url": "https://a.example/" + "x" * 5000}, "at most 2000"),
        ({"url": "https://a.example/", "name": "<script>"}, "account name"),
        ({"url": "https://a.example/", "name": "x" * 100_000}, "account name"),
        ({"url": "https://a.example/", "pack": "nope"}, "unknown pack"),
    ],
)
async def test_bad_api_channels_get_a_clear_error_and_nothing_is_saved(
    as_role, otklik: Otklik, form: dict[str, str], message: str
) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.ADMIN)
    response = await admin.post("/admin/settings/accounts/webhook", form)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert "<script>" not in response.text
    assert await accounts_of(otklik, "webhook") == [] and await added_audits(otklik) == []


# --- roles and CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ANALYST, Role.MODERATOR])
async def test_only_owners_and_admins_connect_channels(as_role, otklik: Otklik, fake_wb: FakeWB, role: Role) -> None:  # type: ignore[no-untyped-def]
    client: Admin = await as_role(role)
    wb = await client.post("/admin/settings/accounts/wildberries", {"token": fake_wb.token})
    hook = await client.post("/admin/settings/accounts/webhook", {"url": "https://a.example/"})
    assert wb.status_code == 403 and hook.status_code == 403
    async with otklik.db.read() as session:
        kinds = (await session.execute(select(ChannelAccount.kind))).scalars().all()
    assert set(kinds) == {"webchat"} and not fake_wb.calls_to("/ping")


async def test_connecting_channels_without_csrf_is_refused(as_role, otklik: Otklik, fake_wb: FakeWB) -> None:  # type: ignore[no-untyped-def]
    admin: Admin = await as_role(Role.OWNER)
    wb = await admin.http.post("/admin/settings/accounts/wildberries", data={"token": fake_wb.token})
    hook = await admin.http.post("/admin/settings/accounts/webhook", data={"url": "https://a.example/"})
    forged = await admin.http.post(
        "/admin/settings/accounts/webhook", data={"url": "https://a.example/", "csrf_token": "forged"}
    )
    assert {wb.status_code, hook.status_code, forged.status_code} == {403}
    async with otklik.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(ChannelAccount)) == 1  # the web chat only
