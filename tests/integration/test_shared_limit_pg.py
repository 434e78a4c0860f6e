"""Two worker processes on one PostgreSQL database share a channel account's limit (issue #19).

Before the shared pace each worker paced itself, so two workers sent at twice the account's `per_second`.
Here 120 replies wait in the outbox of one API-channel account limited to 20 msg/s; two `otklik run --role
worker` processes send them and the loopback receiver notes when each arrives: never more than 20 in any
1-second window, both workers sent a share, each message once."""

from __future__ import annotations

import asyncio
import bisect
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import OutboxRow
from otklik.bootstrap import Otklik
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.channel_accounts import add_account, new_secret
from tests.conftest import PG_URL, make_settings, reset_pg
from tests.integration.receiver import Receiver
from tests.integration.test_worker_crash import start_worker, worker_env

pytestmark = [pytest.mark.pg, pytest.mark.slow]
BUYERS, LIMIT = 120, 20


def most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered))


async def test_two_workers_never_exceed_the_account_limit(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("OTKLIK_TEST_PG_URL is not set")
    await reset_pg(PG_URL)
    secret = new_secret()
    receiver = Receiver(secret=secret).serve()
    app = Otklik.build(make_settings(tmp_path, PG_URL))
    await app.start()
    account = await add_account(
        app.db, app.vault, kind="webhook", name="crm", pack="echo", secret=secret,
        config={"url": receiver.url, "per_second": LIMIT},
    )  # fmt: skip
    await app.reload()
    for buyer in range(BUYERS):
        await app.ingest(InboundEvent(account, f"b{buyer}", f"buyer-{buyer}", EventKind.TEXT, text="hi"))
    async with app.db.read() as session:
        expected = len((await session.execute(select(OutboxRow.id))).all())
    await app.close()
    assert expected >= BUYERS

    env = worker_env(tmp_path, PG_URL) | {"OTKLIK_OUTBOX_LEASE_SECONDS": "60", "OTKLIK_DISPATCH_BATCH": "10"}
    env["OTKLIK_SEND_PACE_MARGIN"] = "0.1"  # 100 ms of jitter tolerated: this machine is shared and loaded
    workers = [start_worker(env, tmp_path / f"w{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 90
        while len(receiver.accepted) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=20)
        receiver.stop()
    logs = "".join((tmp_path / f"w{i}.log").read_text() for i in range(2))
    assert len(receiver.accepted) == expected == receiver.posts, logs[-3000:]
    assert most_in_one_second(receiver.times) <= LIMIT
    check = Otklik.build(make_settings(tmp_path, PG_URL))
    await check.start()
    try:
        async with check.db.read() as session:
            rows = (await session.execute(select(OutboxRow.status, OutboxRow.worker))).all()
    finally:
        await check.close()
    assert {r.status for r in rows} == {"sent"}
    assert len({r.worker for r in rows}) == 2  # both workers sent: the limit held for the two together


def test_window_counter() -> None:
    assert most_in_one_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert most_in_one_second([0.0]) == 1
