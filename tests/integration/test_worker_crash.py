"""A worker killed with SIGKILL in the middle of dispatching loses nothing and repeats nothing.

Real subprocesses (`otklik run --role worker`), a real SQLite file, and a loopback receiver of the API
channel. After the restart the expired leases are recovered and every outbox row reaches the receiver
as exactly one message (repeats carry the same idempotency key and are recognised)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import OutboxRow
from otklik.bootstrap import Otklik
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.channel_accounts import add_account, new_secret
from tests.conftest import TEST_PACKS, make_settings
from tests.integration.receiver import Receiver

pytestmark = pytest.mark.slow
BUYERS, MESSAGES = 40, 4


def worker_env(tmp_path: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        {
            "OTKLIK_ENV": "test",
            "OTKLIK_DATA_DIR": str(tmp_path / "data"),
            "OTKLIK_DATABASE_URL": url,
            "OTKLIK_NLU": "keywords",
            "OTKLIK_PACKS_DIRS": json.dumps([str(TEST_PACKS)]),
            "OTKLIK_OUTBOX_LEASE_SECONDS": "2",
            "OTKLIK_DISPATCH_CONCURRENCY": "4",
            "OTKLIK_DISPATCH_BATCH": "20",
            "OTKLIK_LOG_LEVEL": "WARNING",
        }
    )
    return env


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "otklik.cli", "run", "--role", "worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def test_sigkill_mid_dispatch_then_restart_sends_each_message_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    secret = new_secret()
    receiver = Receiver(secret=secret, delay=0.01).serve()
    app = Otklik.build(make_settings(tmp_path, url))
    await app.start()
    account = await add_account(
        app.db, app.vault, kind="webhook", name="crm", pack="echo", secret=secret, config={"url": receiver.url}
    )
    await app.reload()
    for buyer in range(BUYERS):
        for n in range(MESSAGES):
            await app.ingest(InboundEvent(account, f"b{buyer}-{n}", f"buyer-{buyer}", EventKind.TEXT, text=f"m{n}"))
    async with app.db.read() as session:
        expected = {
            f"otklik-outbox-{i}": r for i, r in (await session.execute(select(OutboxRow.id, OutboxRow.recipient))).all()
        }
    await app.close()
    assert len(expected) == BUYERS * MESSAGES

    env, log = worker_env(tmp_path, url), tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        deadline = time.monotonic() + 60
        while receiver.posts < len(expected) // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.posts >= len(expected) // 3, log.read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = receiver.posts
        assert killed_at < len(expected), "the worker finished before it could be killed"
    finally:
        if first.poll() is None:
            first.kill()
    second = start_worker(env, log)
    try:
        deadline = time.monotonic() + 90
        while len(receiver.accepted) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
        receiver.stop()
    output = log.read_text()
    assert set(receiver.accepted) == set(expected), output[-3000:]
    assert "recovered" in output and "expired outbox leases" in output  # the kill did interrupt sends
    assert receiver.bad_signatures == 0
    for key, body in receiver.accepted.items():
        assert body["recipient"] == expected[key]
    for buyer in range(BUYERS):  # per conversation, first deliveries are in outbox order
        keys = [k for k in receiver.order if expected[k] == f"buyer-{buyer}"]
        assert keys == sorted(keys, key=lambda k: int(k.rsplit("-", 1)[1]))
    check = Otklik.build(make_settings(tmp_path, url))
    await check.start()
    try:
        async with check.db.read() as session:
            rows = (await session.execute(select(OutboxRow.status, OutboxRow.send_count))).all()
    finally:
        await check.close()
    assert all(r.status == "sent" and r.send_count == 1 for r in rows)
