"""Zenvia webhook benchmark on the fake Zenvia API (one process: the real web app over ASGI, the account's
ingest worker, SQLite in a temporary folder). Zenvia wants an answer within about a second: this measures the
webhook's answer time (POST → 200, the work queued) separately from the time until every event was ingested,
while a background burst keeps the worker busy.

`--users` contacts each send `--messages` events one after the other (the `echo` test pack). Prints one JSON
object. Not a test: nothing asserts these figures.

    .venv/bin/python bench/zenvia.py [--users 20] [--messages 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otklik.bootstrap import Otklik  # noqa: E402
from otklik.channels.zenvia.admin import connect_zenvia  # noqa: E402
from otklik.config import Settings  # noqa: E402
from otklik.testing.fake_zenvia import DEFAULT_SENDER, DEFAULT_TOKEN, FakeZenviaServer  # noqa: E402
from otklik.web.app import create_app  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def run(users: int, messages: int) -> dict[str, Any]:
    async with FakeZenviaServer() as fake:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                env="test", demo=False, data_dir=Path(tmp), nlu="keywords", packs_dirs=(ROOT / "tests" / "packs",),
                zenvia_api_url=fake.base_url, default_pack="echo", public_url="https://bench.example.com",
            )  # fmt: skip
            app = Otklik.build(settings)
            await app.start()
            await connect_zenvia(app, token=DEFAULT_TOKEN, sender=DEFAULT_SENDER, pack="echo", name="bench", actor="bench")  # fmt: skip
            await app.reload()
            web = create_app(app, worker=False, manage_lifecycle=False)
            answers: list[float] = []
            try:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://b") as http:

                    async def user(n: int) -> None:
                        for m in range(messages):
                            event = fake.text_event(f"55119{n:08d}", f"mensagem {m}")
                            started = time.perf_counter()
                            response = await fake.deliver(http, event)
                            answers.append(time.perf_counter() - started)
                            assert response.status_code == 200, response.text

                    started = time.perf_counter()
                    await asyncio.gather(*(user(n) for n in range(users)))
                    answered = time.perf_counter() - started
                    await app.runtime_of("zenvia").drain()
                    ingested = time.perf_counter() - started
            finally:
                await app.close()
    total = users * messages
    return {
        "events": total,
        "answer_ms": {
            "p50": round(percentile(answers, 0.5) * 1000, 1),
            "p99": round(percentile(answers, 0.99) * 1000, 1),
            "max": round(max(answers) * 1000, 1),
        },
        "all_answered_seconds": round(answered, 2),
        "all_ingested_seconds": round(ingested, 2),
        "ingested_per_second": round(total / ingested, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10)
    args = parser.parse_args()
    result = {"bench": "zenvia_webhook", "python": platform.python_version(), **asyncio.run(run(args.users, args.messages))}  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
