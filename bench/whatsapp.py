"""WhatsApp Cloud API benchmark on the fake Graph API (in one process: the real web app over ASGI, the real
dispatcher and Graph client against the fake on loopback, SQLite in a temporary folder).

1. Inbound: `--users` buyers each send `--messages` signed webhooks one after the other (the `echo` test pack
   answers each with one message); throughput of webhook POSTs and p50/p99 of POST → reply at the fake.
   Meta's pair rate (one message per 6 s to a user) is switched off for this part: it measures otklik.
2. Outbound burst: `--burst` numbers each get one reply at once while the fake enforces `--rate` msg/s
   (130429 beyond it) and the account is paced at the same rate: the share of the limit achieved, duplicates
   and lost messages.

Prints one JSON object. Not a test: nothing asserts these figures.

    .venv/bin/python bench/whatsapp.py [--users 20] [--messages 10] [--burst 3000] [--rate 80] [--skip-burst]
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
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otklik.bootstrap import Otklik  # noqa: E402
from otklik.channels.whatsapp.admin import connect_whatsapp  # noqa: E402
from otklik.config import Settings  # noqa: E402
from otklik.testing.fake_whatsapp import DEFAULT_APP_SECRET, DEFAULT_TOKEN, FakeWhatsAppServer  # noqa: E402
from otklik.web.app import create_app  # noqa: E402


class FakeInThread:
    """The fake Graph API on its own thread and event loop, so it does not share otklik's loop."""

    def __init__(self) -> None:
        self.fake = FakeWhatsAppServer()
        self._ready, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        async with self.fake:
            self._ready.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.05)

    async def __aenter__(self) -> FakeWhatsAppServer:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, 10)
        return self.fake

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 10)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def build(data: Path, fake: FakeWhatsAppServer, config: dict[str, Any]) -> tuple[Otklik, int]:
    settings = Settings(
        env="test", demo=False, data_dir=data, nlu="keywords", packs_dirs=(ROOT / "tests" / "packs",),
        whatsapp_api_url=fake.base_url, default_pack="echo", dispatch_poll_seconds=0.05,
    )  # fmt: skip
    app = Otklik.build(settings)
    await app.start()
    added = await connect_whatsapp(app, phone_number_id=fake.phone_number_id, waba_id=fake.waba_id, token=DEFAULT_TOKEN,
                                   app_secret=DEFAULT_APP_SECRET, pack="echo", name="bench", actor="bench")  # fmt: skip
    from otklik.adapters.db.models import ChannelAccount

    async with app.db.write() as session:
        account = await session.get(ChannelAccount, added.id)
        assert account is not None
        account.config = {**account.config, "mark_read": False, **config}
    await app.reload()
    return app, added.id


async def inbound(users: int, messages: int) -> dict[str, Any]:
    async with FakeInThread() as fake:
        with tempfile.TemporaryDirectory() as tmp:
            app, _ = await build(Path(tmp), fake, {"per_chat_interval": None, "per_second": None})
            web = create_app(app, worker=False, manage_lifecycle=False)
            app.start_worker()
            latencies: list[float] = []
            path = f"/webhooks/whatsapp/{fake.phone_number_id}"
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://b") as http:

                    async def user(n: int) -> None:
                        wa_id = f"54911{n:08d}"
                        for m in range(messages):
                            seen = len(fake.sent_to(wa_id))
                            started = time.perf_counter()
                            response = await fake.deliver(http, path, fake.text_message(wa_id, f"сообщение {m}"))
                            assert response.status_code == 200, response.text
                            while len(fake.sent_to(wa_id)) <= seen:
                                await asyncio.sleep(0.002)
                            latencies.append(time.perf_counter() - started)

                    started = time.perf_counter()
                    await asyncio.gather(*(user(n) for n in range(users)))
                    elapsed = time.perf_counter() - started
            finally:
                await app.close()
    total = users * messages
    return {
        "users": users,
        "messages": total,
        "seconds": round(elapsed, 2),
        "webhooks_per_second": round(total / elapsed, 1),
        "reply_latency_ms": {
            "p50": round(percentile(latencies, 0.5) * 1000, 1),
            "p99": round(percentile(latencies, 0.99) * 1000, 1),
        },
    }


async def burst(numbers: int, rate: float) -> dict[str, Any]:
    async with FakeInThread() as fake:
        with tempfile.TemporaryDirectory() as tmp:
            app, _ = await build(Path(tmp), fake, {"per_second": rate})
            web = create_app(app, worker=False, manage_lifecycle=False)
            path = f"/webhooks/whatsapp/{fake.phone_number_id}"
            wa_ids = [f"54922{n:08d}" for n in range(numbers)]
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://b") as http:
                    for start in range(0, numbers, 100):  # the inbound messages first (no worker yet): 100 per POST
                        batch = [fake.text_message(w, "hola")["entry"][0]["changes"][0]["value"]["messages"][0]
                                 for w in wa_ids[start : start + 100]]  # fmt: skip
                        response = await fake.deliver(http, path, fake.envelope({"messages": batch}))
                        assert response.status_code == 200, response.text
                fake.throttle(rate)
                started = time.perf_counter()
                app.start_worker()
                deadline = started + numbers / rate * 3 + 60
                while len(fake.state.sent) < numbers and time.perf_counter() < deadline:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # anything late (a duplicate) arrives
                elapsed = time.perf_counter() - started
            finally:
                await app.close()
            at = sorted(s.at for s in fake.state.sent)
            per_number: dict[str, int] = {}
            for sent in fake.state.sent:
                per_number[sent.to] = per_number.get(sent.to, 0) + 1
    span = (at[-1] - at[0]) if len(at) > 1 else float("nan")
    achieved = (len(at) - 1) / span if span and span > 0 else float("nan")
    return {
        "numbers": numbers,
        "limit_per_second": rate,
        "sent": len(at),
        "seconds_first_to_last": round(span, 2),
        "achieved_per_second": round(achieved, 2),
        "share_of_limit": round(achieved / rate, 4),
        "duplicates": sum(c - 1 for c in per_number.values() if c > 1),
        "lost": sum(1 for w in wa_ids if per_number.get(w, 0) == 0),
        "refused_130429": fake.state.refused.count(130429),
        "wall_seconds": round(elapsed, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=80.0)
    parser.add_argument("--skip-burst", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "setup": "the web app over ASGI and the worker in one process and loop, the fake Graph API on its own thread"
        " and loop on loopback, SQLite",
        "inbound": await inbound(args.users, args.messages),
    }
    if not args.skip_burst:
        out["outbound_burst"] = await burst(args.burst, args.rate)
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
