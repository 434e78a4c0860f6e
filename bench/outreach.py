"""Outreach benchmark (issue #19): a broadcast to N dormant Telegram contacts through a real worker process and
the fake Bot API on loopback, with a SIGKILL of the worker in the middle.

Prints JSON: the time to write the delivery rows, the achieved send rate as a share of the account's limit
(Telegram's 30 msg/s by default) between the first and the last message the fake received, the most messages in
any 1-second window, duplicates and losses across the kill (and the rows left `uncertain`: sends the kill
interrupted after the provider call began, which a channel without idempotency keys never repeats), and the
worker's peak memory.

    PYTHONPATH=. python bench/outreach.py --contacts 8000 [--rate 30] [--kill-at 0.33] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from otklik.adapters.db.models import OutboxRow
from otklik.bootstrap import Otklik
from otklik.capabilities.outreach import service
from otklik.config import Settings
from otklik.platform.channel_accounts import add_account
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from tests.capabilities.outreach.seed import seed_contacts

PACKS = Path(__file__).resolve().parents[1] / "tests" / "packs"


def settings(data: Path, url: str, api: str) -> Settings:
    return Settings(env="test", demo=False, data_dir=data, database_url=url, nlu="keywords", packs_dirs=(PACKS,),
                    telegram_api_url=api)  # type: ignore[call-arg]  # fmt: skip


def worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "otklik.cli", "run", "--role", "worker"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)  # fmt: skip


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered)), default=0)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="otklik-outreach-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    async with FakeTelegramServer() as fake:
        app = Otklik.build(settings(tmp / "data", url, fake.base_url))
        await app.start()
        account = await add_account(app.db, app.vault, kind="telegram", name="bench_bot", pack="echo",
                                    secret=DEFAULT_TOKEN, config={"username": "otklik_test_bot",
                                                                  "per_second": args.rate})  # fmt: skip
        t0 = time.perf_counter()
        chats = await seed_contacts(app.db, account, args.contacts)
        seeded = time.perf_counter() - t0
        async with app.db.write() as session:
            broadcast = await service.create(session, name="winback", message={"text": "¿Seguimos?"}, actor="bench")
            await service.control(session, broadcast, "start", actor="bench")
        t0 = time.perf_counter()
        while await service.materialize(app.ctx, broadcast):
            pass
        created = time.perf_counter() - t0
        await app.close()

        env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
        env |= {"OTKLIK_ENV": "test", "OTKLIK_DATA_DIR": str(tmp / "data"), "OTKLIK_DATABASE_URL": url,
                "OTKLIK_NLU": "keywords", "OTKLIK_PACKS_DIRS": json.dumps([str(PACKS)]),
                "OTKLIK_TELEGRAM_API_URL": fake.base_url, "OTKLIK_OUTBOX_LEASE_SECONDS": "10",
                "OTKLIK_LOG_LEVEL": "WARNING", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
        log = tmp / "worker.log"

        def sends() -> list[float]:
            return [c.at for c in fake.calls if c.method == "sendMessage" and c.status == 200]

        first = worker(env, log)
        while len(sends()) < args.contacts * args.kill_at:
            await asyncio.sleep(0.02)
        first_peak = peak_rss_mb(first.pid)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = len(sends())
        second = worker(env, log)
        deadline = time.monotonic() + args.contacts / args.rate * 3 + 60
        last_change, seen = time.monotonic(), len(sends())
        while time.monotonic() < deadline and time.monotonic() - last_change < 60 and seen < args.contacts:
            await asyncio.sleep(0.2)
            if len(sends()) != seen:
                last_change, seen = time.monotonic(), len(sends())
        await asyncio.sleep(1.0)
        second_peak = peak_rss_mb(second.pid)
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
        times = sends()
        got = {chat: len(fake.sent_messages(chat)) for chat in chats}
    check = Otklik.build(settings(tmp / "data", url, "http://127.0.0.1:9"))
    await check.start()
    async with check.db.read() as session:
        statuses = dict(
            (await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))).all()
        )
    await check.close()
    span = max(times) - min(times) if len(times) > 1 else 0.0
    # the rate while sending: the pause of the kill (lease expiry, restart) is not the limiter's doing
    gaps = sorted(b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False))
    restart_gap = gaps[-1] if gaps else 0.0
    rate = (len(times) - 1) / (span - restart_gap) if span > restart_gap else 0.0
    return {
        "contacts": args.contacts,
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "seed_seconds": round(seeded, 2),
        "deliveries_created_seconds": round(created, 3),
        "deliveries_per_second": round(args.contacts / created) if created else None,
        "limit_per_second": args.rate,
        "achieved_per_second": round(rate, 2),
        "share_of_limit": round(rate / args.rate, 4),
        "most_in_any_1s_window": most_in_one_second(times),
        "killed_after_sends": killed_at,
        "restart_gap_seconds": round(restart_gap, 1),
        "duplicated": sum(1 for n in got.values() if n > 1),
        "lost": sum(1 for n in got.values() if n == 0),
        "outbox": statuses,
        "worker_peak_rss_mb": {"killed": first_peak, "restarted": second_peak},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=8000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--kill-at", type=float, default=0.33)
    parser.add_argument("--database-url", default=None)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
