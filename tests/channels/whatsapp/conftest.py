"""WhatsApp through the whole runtime: the real Graph client against the fake Cloud API on loopback, Meta's
signed webhooks posted to the real web app, the real dispatcher. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from otklik.bootstrap import Otklik
from otklik.channels.whatsapp.admin import connect_whatsapp
from otklik.testing.fake_whatsapp import DEFAULT_APP_SECRET, DEFAULT_TOKEN, FakeWhatsAppServer
from otklik.web.app import create_app
from tests.conftest import make_settings

VERIFY = "verify-token-for-tests"
USER = "5491155550001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhatsAppServer]:
    async with FakeWhatsAppServer() as server:
        yield server


@dataclass
class WA:
    app: Otklik
    fake: FakeWhatsAppServer
    http: httpx.AsyncClient
    account: int
    path: str

    async def post(self, payload: dict[str, Any] | bytes, *, status: int = 200) -> httpx.Response:
        response = await self.fake.deliver(self.http, self.path, payload)
        assert response.status_code == status, response.text
        return response

    async def replies(self, wa_id: str, seen: int, expect: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Exactly `expect` more messages to `wa_id` after the first `seen`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.fake.sent_to(wa_id)) < seen + expect:
            if loop.time() > deadline:
                raise AssertionError(
                    f"expected {expect} replies, got {[body_text(b) for b in self.fake.sent_to(wa_id)[seen:]]}"
                )
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # nothing more comes
        got = self.fake.sent_to(wa_id)[seen:]
        assert len(got) == expect, [body_text(b) for b in got]
        return got


def body_text(body: dict[str, Any]) -> str:
    kind = body.get("type")
    if kind == "text":
        return str(body["text"]["body"])
    if kind == "interactive":
        return str(body["interactive"]["body"]["text"])
    if kind in ("image", "document"):
        return str(body[kind].get("caption") or "")
    if kind == "template":
        return f"template:{body['template']['name']}"
    return ""


def choices(body: dict[str, Any]) -> dict[str, str]:
    """Title → id of an interactive message's buttons or list rows."""
    interactive = body.get("interactive") or {}
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        return {b["reply"]["title"]: b["reply"]["id"] for b in action["buttons"]}
    return {r["title"]: r["id"] for s in action.get("sections", []) for r in s["rows"]}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def start_wa(tmp_path: Path, db_url: str, fake: FakeWhatsAppServer, *, pack: str = "care-ru",
                   config: dict[str, Any] | None = None, **settings: Any) -> tuple[Otklik, int]:  # fmt: skip
    app = Otklik.build(make_settings(tmp_path, db_url, whatsapp_api_url=fake.base_url, default_pack=pack, **settings))
    await app.start()
    added = await connect_whatsapp(
        app,
        phone_number_id=fake.phone_number_id,
        waba_id=fake.waba_id,
        token=DEFAULT_TOKEN,
        app_secret=DEFAULT_APP_SECRET,
        verify_token=VERIFY,
        name="wa_shop",
        pack=pack,
        actor="test",
    )
    if config:
        from otklik.adapters.db.models import ChannelAccount

        async with app.db.write() as session:
            account = await session.get(ChannelAccount, added.id)
            assert account is not None
            account.config = {**account.config, **config}
    await app.reload()
    return app, added.id


@pytest.fixture
async def wa(tmp_path: Path, db_url: str, fake: FakeWhatsAppServer) -> AsyncIterator[WA]:
    app, account = await start_wa(tmp_path, db_url, fake)
    web = create_app(app, worker=False, manage_lifecycle=False)
    app.start_worker()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:
            yield WA(app, fake, http, account, f"/webhooks/whatsapp/{fake.phone_number_id}")
    finally:
        await app.close()


@pytest.fixture
async def hook(tmp_path: Path, db_url: str, fake: FakeWhatsAppServer) -> AsyncIterator[WA]:
    """The web app without the worker: what a webhook stores, before anything is sent."""
    app, account = await start_wa(tmp_path, db_url, fake)
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:
            yield WA(app, fake, http, account, f"/webhooks/whatsapp/{fake.phone_number_id}")
    finally:
        await app.close()
