#!/usr/bin/env python
"""REST API and kernel events: prints ONE JSON object on stdout. Timings are printed, never asserted.

    PYTHONPATH=. .venv/bin/python bench/api.py                     # SQLite in a fresh temp dir
    PYTHONPATH=. .venv/bin/python bench/api.py --buyers 2000 --messages 5 --requests 200

1. Ingest: `--buyers` web-chat buyers write `--messages` messages each, first with no webhook endpoint, then
   (fresh buyers) with one endpoint subscribed to `*`: the cost of writing `conversation.started`,
   `message.received` and `message.sent` in the ingest transaction (ms per message, p50/p95).
2. API: `--requests` calls each of `GET /api/v1/conversations?limit=50` (following the cursor, wrapping
   around), `GET /api/v1/contacts?limit=50`, `GET /api/v1/conversations/{id}/messages` and
   `POST /api/v1/conversations/{id}/messages` with an `Idempotency-Key`, in process over ASGI (no network):
   p50/p95 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from otklik.bootstrap import Otklik
from otklik.config import Settings
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.apitokens import create_token
from otklik.platform.webhooks.service import add_endpoint
from otklik.web.app import create_app


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": _p(values, 0.5),
        "p95_ms": _p(values, 0.95),
        "mean_ms": round(statistics.fmean(values), 3),
    }


async def _ingest(app: Otklik, account: int, prefix: str, buyers: int, messages: int) -> list[float]:
    took = []
    for b in range(buyers):
        for m in range(messages):
            started = time.perf_counter()
            await app.ingest(InboundEvent(account, f"{prefix}-{b}-{m}", f"{prefix}-{b}", EventKind.TEXT, text="/stop"))
            took.append((time.perf_counter() - started) * 1000)
    return took


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=300)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="otklik-bench-api-"))
    settings = Settings(
        env="test",
        demo=False,
        data_dir=folder,
        database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}",
        nlu="keywords",
        api_requests_per_minute=0,
    )  # type: ignore[call-arg]
    app = Otklik.build(settings)
    await app.start()
    try:
        account = next(a.id for a in app.ctx.accounts.values() if a.kind == "webchat")
        plain = await _ingest(app, account, "a", args.buyers, args.messages)
        await add_endpoint(app.db, app.vault, "http://127.0.0.1:9/none", "*", actor="bench")
        evented = await _ingest(app, account, "b", args.buyers, args.messages)
        _id, token = await create_token(
            app.db, "bench", "contacts.read,conversations.read,conversations.write", actor="bench"
        )
        web = create_app(app, worker=False, manage_lifecycle=False)
        auth = {"Authorization": f"Bearer {token}"}
        calls: dict[str, list[float]] = {"list_conversations": [], "list_contacts": [], "messages": [], "send": []}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bench") as http:
            cursor = None
            for i in range(args.requests):
                for name in calls:
                    started = time.perf_counter()
                    if name == "list_conversations":
                        response = await http.get(
                            "/api/v1/conversations",
                            params={"limit": 50, **({"cursor": cursor} if cursor else {})},
                            headers=auth,
                        )
                        cursor = response.json()["next_cursor"]
                    elif name == "list_contacts":
                        response = await http.get("/api/v1/contacts?limit=50", headers=auth)
                    elif name == "messages":
                        response = await http.get(f"/api/v1/conversations/{1 + i % args.buyers}/messages", headers=auth)
                    else:
                        response = await http.post(
                            f"/api/v1/conversations/{1 + i % args.buyers}/messages",
                            json={"text": f"bench {i}"},
                            headers={**auth, "Idempotency-Key": f"bench-{i}"},
                        )
                    assert response.status_code in (200, 201), response.text
                    calls[name].append((time.perf_counter() - started) * 1000)
        print(
            json.dumps(
                {
                    "database": "sqlite",
                    "buyers": args.buyers,
                    "messages_each": args.messages,
                    "ingest_no_endpoint": _summary(plain),
                    "ingest_with_endpoint_subscribed_to_all": _summary(evented),
                    "api": {name: _summary(values) for name, values in calls.items()},
                },
                indent=2,
            )
        )
    finally:
        await app.close()


if __name__ == "__main__":
    asyncio.run(main())
