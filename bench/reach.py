"""Reach benchmark: reminders that cannot go on their channel, queued with `reach(...)` and sent as SMS through
the fake SMS.ru on loopback (its own thread and loop) by the real `ReachWorker`, on SQLite in a temporary
folder (or PostgreSQL with --pg-url). Half the contacts have no phone number (→ e-mail route, no SMTP
server: failed on both routes, which measures the fallback path too).

Prints one JSON object: queueing rate (reach calls per second, in transactions of --batch), sending rate
(SMS per second, one worker), SMS taken by the fake, duplicates. Not a test: nothing asserts these figures.

    .venv/bin/python bench/reach.py [--n 2000] [--batch 200] [--pg-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otklik.adapters.db.models import Contact  # noqa: E402
from otklik.bootstrap import Otklik  # noqa: E402
from otklik.clock import utcnow  # noqa: E402
from otklik.config import Settings  # noqa: E402
from otklik.platform.reach import config  # noqa: E402
from otklik.platform.reach.service import reach  # noqa: E402
from otklik.testing.fake_sms import FakeSmsServer  # noqa: E402


class FakeInThread:
    def __init__(self) -> None:
        self.fake = FakeSmsServer(api_id="bench-api-id")
        self._ready, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        async with self.fake:
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)

    async def __aenter__(self) -> FakeSmsServer:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, 10)
        return self.fake

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 10)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        async with FakeInThread() as fake:
            settings = Settings(  # type: ignore[call-arg]
                env="test", demo=False, data_dir=Path(tmp) / "data", database_url=url, nlu="keywords",
                sms_ru_url=fake.base_url, smtp_host=None,
            )  # fmt: skip
            app = Otklik.build(settings)
            await app.start()
            try:
                await config.save(app.db, app.vault, provider="smsru", secret="bench-api-id", actor="bench")
                ids: list[int] = []
                async with app.db.write() as session:
                    for n in range(args.n):
                        phone = f"+7917{n:07d}" if n % 2 == 0 else ""
                        contact = Contact(
                            display_name=f"c{n}", created_at=utcnow(), fields={"phone": phone} if phone else {}
                        )
                        session.add(contact)
                        await session.flush()
                        ids.append(int(contact.id))
                started = time.perf_counter()
                for start in range(0, args.n, args.batch):
                    async with app.db.write() as tx:
                        for n in range(start, min(start + args.batch, args.n)):
                            await reach(tx, ids[n], f"Напоминание: запись №{n} завтра в 15:00", routes=("sms", "email"),
                                        dedup_key=f"bench:{n}")  # fmt: skip
                queued = time.perf_counter() - started
                assert app.reach is not None
                started = time.perf_counter()
                while await app.reach.run_once():
                    pass
                sent = time.perf_counter() - started
            finally:
                await app.close()
            per_phone = Counter(s.to for s in fake.sent)
    return {
        "bench": "reach", "python": platform.python_version(), "db": "postgresql" if args.pg_url else "sqlite",
        "reach_calls": args.n, "batch": args.batch, "queue_per_s": round(args.n / queued, 1),
        "worker_rounds_s": round(sent, 2), "sms_taken": len(fake.sent), "sms_per_s": round(len(fake.sent) / sent, 1),
        "duplicates": sum(c - 1 for c in per_phone.values() if c > 1),
    }  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--pg-url", default="")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
