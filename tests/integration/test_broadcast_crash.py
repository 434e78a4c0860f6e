"""A broadcast to 5 000 Telegram contacts (the fake Bot API on loopback) survives a SIGKILL of the worker in the
middle: after a restart every contact has exactly one message — 0 lost, 0 duplicated (issue #19)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import OutboxRow
from otklik.bootstrap import Otklik
from otklik.capabilities.outreach import service
from otklik.platform.channel_accounts import add_account
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from tests.capabilities.outreach.seed import seed_contacts
from tests.conftest import make_settings
from tests.integration.test_worker_crash import start_worker, worker_env

pytestmark = pytest.mark.slow
CONTACTS = 5000


def sent_total(fake: FakeTelegramServer) -> int:
    return sum(len(v) for v in fake.bot().sent.values())


async def test_sigkill_mid_broadcast_then_restart_sends_each_contact_one_message(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    async with FakeTelegramServer() as fake:
        app = Otklik.build(make_settings(tmp_path, url, telegram_api_url=fake.base_url))
        await app.start()
        account = await add_account(
            app.db, app.vault, kind="telegram", name="shop_bot", pack="echo", secret=DEFAULT_TOKEN,
            config={"username": "otklik_test_bot", "per_second": 400},
        )  # fmt: skip
        chats = await seed_contacts(app.db, account, CONTACTS)
        async with app.db.write() as session:
            broadcast = await service.create(session, name="sale", message={"text": "Распродажа"}, actor="test")
            await service.control(session, broadcast, "start", actor="test")
        await app.close()

        env = worker_env(tmp_path, url) | {
            "OTKLIK_TELEGRAM_API_URL": fake.base_url,
            "OTKLIK_OUTBOX_LEASE_SECONDS": "10",
        }
        env.pop("OTKLIK_DISPATCH_BATCH", None)
        env.pop("OTKLIK_DISPATCH_CONCURRENCY", None)
        log = tmp_path / "worker.log"
        first = start_worker(env, log)
        try:
            deadline = time.monotonic() + 120
            while sent_total(fake) < CONTACTS // 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert sent_total(fake) >= CONTACTS // 3, log.read_text()[-3000:]
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            killed_at = sent_total(fake)
            assert killed_at < CONTACTS, "the worker finished before it could be killed"
        finally:
            if first.poll() is None:
                first.kill()
        second = start_worker(env, log)
        try:
            deadline = time.monotonic() + 240
            while sent_total(fake) < CONTACTS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # anything extra (a duplicate) would arrive now
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        got = {chat: len(fake.sent_messages(chat)) for chat in chats}
    output = log.read_text()
    duplicated = [c for c, n in got.items() if n > 1]
    lost = [c for c, n in got.items() if n == 0]
    print(f"killed after {killed_at} sends; duplicated {len(duplicated)}, lost {len(lost)}")
    assert not duplicated, (len(duplicated), output[-3000:])
    check = Otklik.build(make_settings(tmp_path, url))
    await check.start()
    try:
        async with check.db.read() as session:
            statuses = dict(
                (await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))).all()
            )
            progress = await service.progress(session, broadcast)
    finally:
        await check.close()
    # Telegram takes no idempotency key: a send the kill interrupted after its provider call began is
    # `uncertain` (never repeated). Only those few may be missing; everything else arrived exactly once.
    uncertain = statuses.get("uncertain", 0)
    assert len(lost) <= uncertain <= 64, (len(lost), statuses)
    assert statuses.get("sent", 0) + uncertain == CONTACTS and set(statuses) <= {"sent", "uncertain"}, statuses
    assert progress.total == CONTACTS
