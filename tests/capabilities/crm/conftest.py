from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from otklik.bootstrap import Otklik
from otklik.capabilities.crm.sync import CrmSync
from otklik.testing.fake_amocrm import FakeAmoCrmServer
from otklik.testing.fake_bitrix24 import FakeBitrix24Server
from tests.conftest import make_settings


class Sleeps:
    """The CRM job's waits (rate limits), recorded instead of slept."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def otk(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    app = Otklik.build(make_settings(tmp_path, db_url, public_url="https://otklik.example.ru"))
    await app.start()
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sync(otk: Otklik, sleeps: Sleeps) -> CrmSync:
    return CrmSync(otk.db, otk.vault, otk.settings, sleep=sleeps)


@pytest.fixture
async def bitrix() -> AsyncIterator[FakeBitrix24Server]:
    async with FakeBitrix24Server() as fake:
        yield fake


@pytest.fixture
async def amo() -> AsyncIterator[FakeAmoCrmServer]:
    async with FakeAmoCrmServer() as fake:
        yield fake
