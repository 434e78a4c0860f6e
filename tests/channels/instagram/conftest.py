"""Instagram Direct through the runtime: the real Graph client against the fake on loopback, Meta's signed
webhooks posted to the real web app, the dispatcher run step by step. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount, Message, OutboxRow
from otklik.bootstrap import Otklik
from otklik.channels.instagram.admin import connect_instagram
from otklik.testing.fake_instagram import DEFAULT_APP_SECRET, DEFAULT_TOKEN, FakeInstagramServer
from otklik.web.app import create_app
from tests.conftest import make_settings

VERIFY = "verify-token-for-tests"
USER = "6123456789012345"


@pytest.fixture
async def fake() -> AsyncIterator[FakeInstagramServer]:
    async with FakeInstagramServer() as server:
        yield server


@dataclass
class IG:
    app: Otklik
    fake: FakeInstagramServer
    http: httpx.AsyncClient
    account: int
    path: str

    async def post(self, payload: dict[str, Any] | bytes, *, status: int = 200) -> httpx.Response:
        response = await self.fake.deliver(self.http, self.path, payload)
        assert response.status_code == status, response.text
        return response

    async def dispatch(self, rounds: int = 30) -> None:
        for _ in range(rounds):
            if not await self.app.dispatcher.run_once():
                break

    async def outbox(self) -> list[tuple[str, str, str | None]]:
        async with self.app.db.read() as session:
            rows = (await session.execute(
                select(OutboxRow.status, Message.status, Message.error).join(Message, Message.id == OutboxRow.message_id)
                .order_by(OutboxRow.id))).all()  # fmt: skip
        return [(r[0], r[1], r[2]) for r in rows]

    async def configure(self, **config: Any) -> None:
        async with self.app.db.write() as session:
            account = await session.get(ChannelAccount, self.account)
            assert account is not None
            account.config = {**account.config, **config}
        await self.app.reload()


@pytest.fixture
async def ig(tmp_path: Path, db_url: str, fake: FakeInstagramServer) -> AsyncIterator[IG]:
    app = Otklik.build(make_settings(tmp_path, db_url, instagram_api_url=fake.base_url))
    await app.start()
    added = await connect_instagram(app, page_id=fake.page_id, token=DEFAULT_TOKEN, app_secret=DEFAULT_APP_SECRET,
                                    verify_token=VERIFY, name="ig_shop", actor="test")  # fmt: skip
    await app.reload()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:
            yield IG(app, fake, http, added.id, f"/webhooks/instagram/{fake.page_id}")
    finally:
        await app.close()
