"""Issue 13, the HTTP edge: capped webhook bodies, accounts added while running, private data files,
security headers, the client address behind a proxy, offline API docs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from otklik.adapters.db.models import ChannelAccount
from otklik.bootstrap import Otklik
from otklik.channels.api.adapter import sign
from otklik.platform.channel_accounts import add_account, new_secret
from otklik.platform.webkit.bodies import MAX_BODY
from otklik.platform.webkit.client_ip import client_address
from otklik.web.app import create_app
from tests.conftest import make_settings
from tests.fixtures.admin import template_folders
from tests.integration.receiver import Receiver


@pytest.fixture
async def running(otklik: Otklik) -> AsyncIterator[httpx.AsyncClient]:
    """The app as the server runs it: lifespan (watchers) and worker started, before any account is added."""
    app = create_app(otklik, worker=True, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://x") as http:
        yield http


async def _signed(http: httpx.AsyncClient, secret: str, account: str, payload: object) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"X-Otklik-Signature": sign(secret, body), "Content-Type": "application/json"}
    return await http.post(f"/webhooks/api/{account}", content=body, headers=headers)


async def _wait_for(receiver: Receiver, count: int = 1) -> None:
    for _ in range(200):
        if len(receiver.accepted) >= count:
            return
        await asyncio.sleep(0.05)


async def test_regression_webhook_account_added_while_running_works_without_restart(
    running: httpx.AsyncClient, otklik: Otklik
) -> None:
    secret = new_secret()
    receiver = Receiver(secret=secret).serve()
    try:
        # what `otklik channels add webhook` does, from outside the running server
        await add_account(
            otklik.db,
            otklik.vault,
            kind="webhook",
            name="late",
            pack="echo",
            secret=secret,
            config={"url": receiver.url},
        )
        response = await _signed(running, secret, "late", {"id": "m1", "sender": "c-1", "text": "привет"})
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": True, "duplicate": False}
        await _wait_for(receiver)
        assert [b["message"]["text"] for b in receiver.accepted.values()] == ["готов"]
        assert all(b["recipient"] == "c-1" for b in receiver.accepted.values())
    finally:
        receiver.stop()


async def test_regression_changed_webhook_account_url_takes_effect_without_restart(
    running: httpx.AsyncClient, otklik: Otklik
) -> None:
    secret = new_secret()
    first, second = Receiver(secret=secret).serve(), Receiver(secret=secret).serve()
    try:
        account_id = await add_account(
            otklik.db, otklik.vault, kind="webhook", name="moved", pack="echo", secret=secret, config={"url": first.url}
        )
        assert (await _signed(running, secret, "moved", {"id": "a", "sender": "c", "text": "hi"})).status_code == 200
        await _wait_for(first)
        async with otklik.db.write() as session:
            await session.execute(
                update(ChannelAccount).where(ChannelAccount.id == account_id).values(config={"url": second.url})
            )
        for _ in range(60):  # the watcher notices within its 2 s round
            if getattr(otklik.ctx.senders.get(account_id), "url", None) == second.url:
                break
            await asyncio.sleep(0.1)
        assert (await _signed(running, secret, "moved", {"id": "b", "sender": "c", "text": "hi"})).status_code == 200
        await _wait_for(second)
        assert len(first.accepted) == 1 and len(second.accepted) == 1
    finally:
        first.stop()
        second.stop()


class _Body:
    """A request body that counts how much of it the server pulled."""

    def __init__(self, size: int, chunk: int = 64 * 1024) -> None:
        self.size, self.chunk, self.sent = size, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            piece = b"x" * min(self.chunk, self.size - self.sent)
            self.sent += len(piece)
            yield piece


@pytest.fixture
async def crm(otklik: Otklik) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    secret = new_secret()
    await add_account(
        otklik.db,
        otklik.vault,
        kind="webhook",
        name="crm",
        pack="echo",
        secret=secret,
        config={"url": "http://127.0.0.1:9/"},
    )
    await otklik.reload()
    app = create_app(otklik, worker=False, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        yield http, secret


@pytest.mark.parametrize("route", ["/webhooks/api/crm", "/webhooks/api/nobody", "/webhooks/telegram/1"])
async def test_regression_webhook_large_body_refused_by_content_length(
    crm: tuple[httpx.AsyncClient, str], route: str
) -> None:
    http, _secret = crm
    body = _Body(10 * 1024 * 1024)
    response = await http.post(route, content=body, headers={"Content-Length": str(body.size)})
    assert response.status_code == 413
    assert body.sent <= 64 * 1024  # refused before the body was read (at most the first chunk was pulled)


async def test_regression_webhook_unknown_account_is_refused_before_reading_the_body(
    crm: tuple[httpx.AsyncClient, str],
) -> None:
    http, _secret = crm
    body = _Body(MAX_BODY)  # under the cap, no Content-Length: only the account lookup can refuse it early
    response = await http.post("/webhooks/api/nobody", content=body)
    assert response.status_code == 401
    assert body.sent <= 64 * 1024


async def test_regression_webhook_streamed_body_is_cut_at_the_cap(crm: tuple[httpx.AsyncClient, str]) -> None:
    http, secret = crm
    body = _Body(10 * 1024 * 1024)  # chunked: no Content-Length to refuse by
    response = await http.post("/webhooks/api/crm", content=body, headers={"X-Otklik-Signature": sign(secret, b"")})
    assert response.status_code == 413
    assert body.sent <= MAX_BODY + 2 * body.chunk


async def test_regression_data_dir_and_media_are_private(tmp_path: Path, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url)
    if db_url.startswith("sqlite"):
        settings = make_settings(tmp_path, None)  # type: ignore[arg-type]  # the default: <data_dir>/otklik.db
    otk = Otklik.build(settings)
    await otk.start()
    try:
        stored = await otk.ctx.media.save(b"\x89PNG a photo of the parcel", "image/png", "p.png")
        async with otk.db.write() as session:  # something in the WAL
            await session.execute(update(ChannelAccount).values(enabled=True))
        data = settings.data_dir
        media_file = otk.ctx.media.path(stored.media_id)
        dirs = [data, settings.media_dir, media_file.parent]
        files = [media_file, data / "fernet.key"]
        if db_url.startswith("sqlite"):
            files += [p for p in data.iterdir() if p.name.startswith("otklik.db")]
            assert data / "otklik.db" in files
        for path in dirs:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
        for path in files:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    finally:
        await otk.close()


async def test_regression_existing_world_readable_data_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "otklik.db").touch(mode=0o644)
    os.chmod(data, 0o755)
    os.chmod(data / "otklik.db", 0o644)
    otk = Otklik.build(make_settings(tmp_path, None))  # type: ignore[arg-type]
    await otk.start()
    await otk.close()
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(data / "otklik.db").st_mode) == 0o600


@pytest.fixture
async def web(tmp_path: Path, sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    otk = Otklik.build(
        make_settings(
            tmp_path, sqlite_url, chat_frame_ancestors=("https://shop.example",), trusted_proxies=("10.0.0.0/8",)
        )
    )
    await otk.start()
    app = create_app(otk, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
            yield http
    finally:
        await otk.close()


async def test_regression_admin_is_never_framed_and_has_a_strict_csp(web: httpx.AsyncClient) -> None:
    page = await web.get("/admin/login")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp and "unsafe-eval" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] in ("same-origin", "strict-origin-when-cross-origin")
    chat = await web.get("/chat")
    assert chat.headers["referrer-policy"] == "strict-origin-when-cross-origin"


async def test_regression_chat_page_may_be_framed_by_the_configured_sites_only(web: httpx.AsyncClient) -> None:
    page = await web.get("/chat")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://shop.example" in csp
    assert "x-frame-options" not in page.headers
    assert "<script>" not in page.text and not re.search(r"\son[a-z]+=", page.text)  # nothing inline to block


def test_regression_admin_templates_have_no_inline_scripts_or_handlers() -> None:
    """The admin's CSP allows no inline script: every template must do without one (the shared ones and
    every declared `templates` folder)."""
    folders = template_folders()
    assert all(f.is_dir() for f in folders), folders
    templates = [t for f in folders for t in f.rglob("*.html")]
    assert {"base.html", "care_reviews.html", "inbox.html", "chat.html", "connect_telegram.html"} <= {
        t.name for t in templates
    }
    for template in templates:
        text = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template.name


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not from a trusted proxy: the header is ignored
        ("10.0.0.2", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.2", "6.6.6.6, 1.2.3.4, 10.0.0.7", "1.2.3.4"),  # spoofed left entry, proxy chain on the right
        ("10.0.0.2", "garbage", "10.0.0.2"),
    ],
)
def test_regression_forwarded_for_is_trusted_only_from_configured_proxies(
    peer: str, forwarded: str | None, expected: str
) -> None:
    from starlette.requests import Request

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    request = Request({"type": "http", "client": (peer, 5000), "headers": headers})
    assert client_address(request, ("10.0.0.0/8",)) == expected
    assert client_address(request, ()) == peer


async def test_regression_docs_work_offline(web: httpx.AsyncClient) -> None:
    page = await web.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert "cdn." not in page.text and "https://" not in page.text
    for url in urls:
        asset = await web.get(url)
        assert asset.status_code == 200 and asset.content, url
    assert (await web.get("/openapi.json")).json()["paths"]
