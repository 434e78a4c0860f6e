"""Staff fixtures: a container on SQLite/PostgreSQL with the fake Telegram Bot API and a local SMTP server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from otklik.bootstrap import Otklik
from otklik.platform.channel_accounts import add_account
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from tests.conftest import make_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler: keeps every accepted message (envelope: mail_from, rcpt_tos, content bytes)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class Smtp:
    """A local SMTP server that can be started and stopped on one port (down → up)."""

    def __init__(self, port: int) -> None:
        self.port, self.inbox, self._controller = port, Inbox(), None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(free_port())
    yield server
    server.stop()


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        yield fake


@pytest.fixture
async def staff_app(tmp_path: Path, db_url: str, fake_tg: FakeTelegramServer, smtp: Smtp) -> AsyncIterator[Otklik]:
    settings = make_settings(
        tmp_path, db_url, telegram_api_url=fake_tg.base_url, smtp_host="127.0.0.1", smtp_port=smtp.port,
        smtp_security="none", smtp_from="bot@microcom.example", public_url="https://shop.example",
        smtp_timeout=5, staff_notify_backoff_base=5, staff_notify_max_attempts=4,
    )  # fmt: skip
    app = Otklik.build(settings)
    await app.start()
    await add_account(
        app.db, app.vault, kind="telegram", name="staffbot", pack="care-ru", secret=DEFAULT_TOKEN, config={}
    )
    try:
        yield app
    finally:
        await app.close()
