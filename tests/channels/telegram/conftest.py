"""Fixtures: the fake Bot API on loopback, a real aiogram Bot pointed at it, a media store on disk.

One fake server and one Bot serve the whole package (starting and stopping them costs ~0.5 s per test);
`fake` resets the server's state before each test, so tests still see a fresh Telegram.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiogram import Bot
from PIL import Image

from otklik.adapters.media import MediaStore
from otklik.channels.telegram.adapter import make_bot
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run this package's async tests in the package's event loop (where the shared server lives)."""
    marker = pytest.mark.asyncio(loop_scope="package")
    for item in items:
        if pytest_asyncio.is_async_test(item) and HERE in Path(str(item.path)).parents:
            item.add_marker(marker, append=False)


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def shared_fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def shared_bot(shared_fake: FakeTelegramServer) -> AsyncIterator[Bot]:
    bot = make_bot(DEFAULT_TOKEN, shared_fake.base_url, timeout=5)
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
def fake(shared_fake: FakeTelegramServer) -> FakeTelegramServer:
    shared_fake.reset()
    return shared_fake


@pytest.fixture
def bot(shared_bot: Bot, fake: FakeTelegramServer) -> Bot:
    return shared_bot


@pytest.fixture
def media(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media", max_bytes=5 * 1024 * 1024)


@pytest.fixture(scope="session")
def updates() -> dict[str, Any]:
    """Update JSON as Telegram sends it (captured shapes, ids anonymised)."""
    fixtures: dict[str, Any] = json.loads((FIXTURES / "updates.json").read_text(encoding="utf-8"))
    return fixtures


def png_bytes(size: tuple[int, int] = (640, 480), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()
