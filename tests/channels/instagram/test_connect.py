"""Connecting Instagram and Zenvia from the Settings page (login, role, CSRF, masked secrets, escaped errors)
and Instagram from the command line (`otklik channels add instagram`) against the fakes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from otklik.adapters.db.models import ChannelAccount
from otklik.bootstrap import Otklik
from otklik.cli.main import app as cli
from otklik.platform.users import Role, create_user
from otklik.testing.fake_instagram import DEFAULT_APP_SECRET, DEFAULT_TOKEN, FakeInstagramServer
from otklik.testing.fake_zenvia import DEFAULT_SENDER, FakeZenviaServer
from otklik.testing.fake_zenvia import DEFAULT_TOKEN as ZENVIA_TOKEN
from otklik.web.app import create_app
from tests.conftest import make_settings
from tests.fixtures.admin import PASSWORD, Admin, csrf_of

runner = CliRunner()


async def sign_in(app: object, login: str) -> Admin:
    """As tests.fixtures.admin.sign_in, over https: with a public https URL the session cookie is Secure."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://admin.test")  # type: ignore[arg-type]
    page = await http.get("/admin/login")
    form = {"login": login, "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/admin"}
    assert (await http.post("/admin/login", data=form)).status_code == 303
    return Admin(http, csrf_of((await http.get("/admin")).text), login)


async def _accounts(app: Otklik, kind: str) -> list[ChannelAccount]:
    async with app.db.read() as session:
        return list((await session.execute(select(ChannelAccount).where(ChannelAccount.kind == kind))).scalars())


async def test_connect_both_kinds_from_settings(tmp_path: Path, db_url: str, fake: FakeInstagramServer) -> None:
    async with FakeZenviaServer() as zenvia:
        app = Otklik.build(make_settings(tmp_path, db_url, instagram_api_url=fake.base_url,
                                         zenvia_api_url=zenvia.base_url, public_url="https://bot.example.com"))  # fmt: skip
        await app.start()
        try:
            await create_user(app.db, "owner", Role.OWNER, password=PASSWORD)
            await create_user(app.db, "agent", Role.OPERATOR, password=PASSWORD)
            web = create_app(app, worker=False, manage_lifecycle=False)
            admin = await sign_in(web, "owner")
            page = (await admin.http.get("/admin/settings")).text
            assert 'id="add-instagram"' in page and 'id="add-zenvia"' in page
            form = {"page_id": fake.page_id, "token": DEFAULT_TOKEN, "app_secret": DEFAULT_APP_SECRET,
                    "name": "ig", "pack": "care-ru"}  # fmt: skip
            for bad, message in (
                ({"token": "EAAwrong-token-that-meta-refuses"}, "Meta rejected"),
                ({"page_id": "<script>1</script>"}, "digits only"),
                ({"app_secret": "short"}, "app secret"),
                ({"token": "x" * 5000}, "page access token"),
            ):
                response = await admin.post("/admin/settings/accounts/instagram", {**form, **bad})
                assert response.status_code == 422 and message in response.text, (bad, response.status_code)
                assert "<script>1" not in response.text
            ok = await admin.post("/admin/settings/accounts/instagram", {**form, "human_agent": "on"})
            assert ok.status_code == 200 and f"/webhooks/instagram/{fake.page_id}" in ok.text
            (account,) = await _accounts(app, "instagram")
            assert account.config["human_agent"] is True and account.config["instagram_id"] == fake.ig_id
            assert DEFAULT_TOKEN not in json.dumps(account.config) and DEFAULT_APP_SECRET not in json.dumps(account.config)  # fmt: skip
            listed = (await admin.http.get("/admin/settings")).text
            assert DEFAULT_TOKEN not in listed and DEFAULT_APP_SECRET not in listed

            zform = {"token": ZENVIA_TOKEN, "sender": DEFAULT_SENDER, "name": "zv", "pack": "care-ru"}
            bad = await admin.post("/admin/settings/accounts/zenvia", {**zform, "token": "FAKEwrongTokenNotReal000"})
            assert bad.status_code == 422 and "Zenvia rejected" in bad.text
            ok = await admin.post("/admin/settings/accounts/zenvia", zform)
            assert ok.status_code == 200 and "https://bot.example.com/webhooks/zenvia/" in ok.text
            assert len(zenvia.state.subscriptions) == 2 and len(await _accounts(app, "zenvia")) == 1

            operator = await sign_in(web, "agent")
            refused = await operator.post("/admin/settings/accounts/zenvia", zform)
            assert refused.status_code in (403, 303)
            no_csrf = await admin.http.post("/admin/settings/accounts/instagram", data=form)
            assert no_csrf.status_code in (400, 403)
            assert len(zenvia.state.subscriptions) == 2
        finally:
            await app.close()


@pytest.fixture
def threaded() -> Iterator[FakeInstagramServer]:
    server = FakeInstagramServer()
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with server:
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield server
    stop.set()
    thread.join(10)


def test_add_instagram_from_the_command_line(threaded: FakeInstagramServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for key in ("OTKLIK_DATABASE_URL", "OTKLIK_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")
    monkeypatch.setenv("OTKLIK_DEMO", "false")
    monkeypatch.setenv("OTKLIK_INSTAGRAM_API_URL", threaded.base_url)
    monkeypatch.setenv("OTKLIK_PUBLIC_URL", "https://bot.example.com")
    args = ["channels", "add", "instagram", "--page-id", threaded.page_id, "--token", DEFAULT_TOKEN,
            "--app-secret", DEFAULT_APP_SECRET]  # fmt: skip
    added = runner.invoke(cli, [*args, "--verify-token", "my-verify-token", "--human-agent"])
    assert added.exit_code == 0, added.output
    assert f"https://bot.example.com/webhooks/instagram/{threaded.page_id}" in added.output
    assert "my-verify-token" in added.output and DEFAULT_TOKEN not in added.output
    again = runner.invoke(cli, args)
    assert again.exit_code == 0 and "updated" in again.output
    for change, message in (
        (("--token", "EAAnot-the-right-token-for-meta"), "Meta rejected"),
        (("--page-id", "12ab"), "digits only"),
        (("--verify-token", "<b>"), "verify token"),
    ):
        result = runner.invoke(cli, [*args, *change])
        assert result.exit_code == 2 and message in result.output, result.output
