"""Reach fixtures: a container on SQLite/PostgreSQL, the fake SMS gateway (SMS.ru and generic) and a local
SMTP server (aiosmtpd, the staff tests' one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from otklik.adapters.db.models import Contact
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.platform.reach import config
from otklik.testing.fake_sms import FakeSmsServer
from tests.conftest import make_settings
from tests.platform.staff.conftest import Smtp, free_port

API_ID = "test-api-id"


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fake_sms() -> AsyncIterator[FakeSmsServer]:
    async with FakeSmsServer(api_id=API_ID) as fake:
        yield fake


@pytest.fixture
async def reach_app(tmp_path: Path, db_url: str, fake_sms: FakeSmsServer, smtp: Smtp) -> AsyncIterator[Otklik]:
    settings = make_settings(
        tmp_path, db_url, sms_ru_url=fake_sms.base_url, smtp_host="127.0.0.1", smtp_port=smtp.port,
        smtp_security="none", smtp_from="salon@len.example", smtp_timeout=5, send_timeout_seconds=2,
        reach_backoff_base=10, reach_max_attempts=3, reach_status_every=60,
    )  # fmt: skip
    app = Otklik.build(settings)
    await app.start()
    await config.save(app.db, app.vault, provider="smsru", sender="SalonLen", secret=API_ID, actor="test")
    try:
        yield app
    finally:
        await app.close()


async def add_contact(app: Otklik, **fields: Any) -> int:
    async with app.db.write() as session:
        contact = Contact(display_name="Гульнара", created_at=utcnow(), fields=fields)
        session.add(contact)
        await session.flush()
        return int(contact.id)
