"""Fixtures: the fake Bot API on loopback, a real aiogram Bot pointed at it, a media store on disk."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot

from otklik.adapters.channels.telegram import make_bot
from otklik.adapters.media import MediaStore
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegramServer) -> AsyncIterator[Bot]:
    bot = make_bot(DEFAULT_TOKEN, fake.base_url, timeout=5)
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
def media(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media", max_bytes=5 * 1024 * 1024)


@pytest.fixture(scope="session")
def updates() -> dict[str, Any]:
    """Update JSON as Telegram sends it (captured shapes, ids anonymised)."""
    fixtures: dict[str, Any] = json.loads((FIXTURES / "updates.json").read_text(encoding="utf-8"))
    return fixtures


def png_bytes(size: tuple[int, int] = (640, 480), color: str = "red") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()
