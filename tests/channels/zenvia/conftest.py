"""Zenvia through the runtime: the real Zenvia client against the fake API v2 on loopback, events posted to the
real web app with the headers our subscriptions registered, the dispatcher run step by step (no worker, no
sleeps). SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from otklik.adapters.db.models import Message, OutboxRow
from otklik.bootstrap import Otklik
from otklik.channels.zenvia.admin import connect_zenvia
from otklik.testing.fake_zenvia import DEFAULT_SENDER, DEFAULT_TOKEN, FakeZenviaServer
from otklik.web.app import create_app
from tests.conftest import make_settings

USER = "5511999990001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeZenviaServer]:
    async with FakeZenviaServer() as server:
        yield server


@dataclass
class ZV:
    app: Otklik
    fake: FakeZenviaServer
    http: httpx.AsyncClient
    account: int

    @property
    def channels(self) -> Any:
        return self.app.runtime_of("zenvia")

    async def post(self, event: dict[str, Any] | bytes, *, status: int = 200, **kw: Any) -> httpx.Response:
        response = await self.fake.deliver(self.http, event, **kw)
        assert response.status_code == status, response.text
        await self.channels.drain()
        return response

    async def dispatch(self, rounds: int = 30) -> None:
        """Run the dispatcher until nothing is due (the outbox rows are sent, held or failed)."""
        for _ in range(rounds):
            if not await self.app.dispatcher.run_once():
                break

    async def outbox(self) -> list[tuple[str, str, str | None]]:
        async with self.app.db.read() as session:
            rows = (await session.execute(
                select(OutboxRow.status, Message.status, Message.error).join(Message, Message.id == OutboxRow.message_id)
                .order_by(OutboxRow.id))).all()  # fmt: skip
        return [(r[0], r[1], r[2]) for r in rows]


async def start_zv(tmp_path: Path, db_url: str, fake: FakeZenviaServer, **settings: Any) -> tuple[Otklik, int]:
    app = Otklik.build(make_settings(tmp_path, db_url, zenvia_api_url=fake.base_url,
                                     public_url="https://bot.example.com", **settings))  # fmt: skip
    await app.start()
    added = await connect_zenvia(app, token=DEFAULT_TOKEN, sender=DEFAULT_SENDER, name="zv_shop", actor="test")
    await app.reload()
    return app, added.id


@pytest.fixture
async def zv(tmp_path: Path, db_url: str, fake: FakeZenviaServer) -> AsyncIterator[ZV]:
    app, account = await start_zv(tmp_path, db_url, fake)
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:
            yield ZV(app, fake, http, account)
    finally:
        await app.close()
