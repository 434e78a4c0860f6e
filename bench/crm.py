#!/usr/bin/env python
"""CRM hand-over throughput: emits N `lead.created` and N `booking.created` (the events of the bookings
capability), then times the CRM job handing them to the fake Bitrix24 and the fake amoCRM on loopback.
Prints ONE JSON object on stdout. SQLite (a temp dir).

    .venv/bin/python bench/crm.py                 # 200 leads + 200 bookings per CRM
    .venv/bin/python bench/crm.py --events 50

The CRMs' own limits (Bitrix24 2 req/s burst 50, amoCRM 7 req/s) are what bound a real install; here the
buckets are opened wide to measure our side: the claim / record round trips of the outbox, the connector's
calls and the database writes of the links. Reported: events/s, HTTP requests per event, and the time the
limits would impose for the same calls (requests / rate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otklik.bootstrap import Otklik
from otklik.capabilities.crm import amocrm, bitrix24, service
from otklik.capabilities.crm.base import LeakyBucket
from otklik.capabilities.crm.sync import CrmSync
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.testing.fake_amocrm import FakeAmoCrmServer
from otklik.testing.fake_bitrix24 import FakeBitrix24Server
from tests.capabilities.crm.events import booking, emit_event, lead


async def run(kind: str, events: int, data_dir: Path) -> dict[str, object]:
    settings = Settings(env="test", demo=False, data_dir=data_dir, nlu="keywords", public_url="https://bench.example")
    otk = Otklik.build(settings)
    await otk.start()
    try:
        async with FakeBitrix24Server() as b24, FakeAmoCrmServer() as amo:
            if kind == "bitrix24":
                await service.add_bitrix24(otk.db, otk.vault, b24.webhook_url, actor="bench")
            else:
                await service.add_amocrm(
                    otk.db, otk.vault, subdomain="x", base_url=amo.base_url, token=amo.token, actor="bench"
                )
            now = utcnow()
            for i in range(1, events + 1):
                await emit_event(otk, "lead.created", lead(i, phone=f"+7917{i:07d}"), now)
                await emit_event(otk, "booking.created", booking(i, lead_id=i, phone=f"+7917{i:07d}"), now)
            sync = CrmSync(otk.db, otk.vault, otk.settings)
            sync.buckets[1] = LeakyBucket(1e9, 10**9)
            t0 = time.perf_counter()
            handled = 0
            while handled < 2 * events:
                got = await sync.run_once()
                if not got:
                    break
                handled += got
            seconds = time.perf_counter() - t0
            requests = len(b24.state.http) if kind == "bitrix24" else len(amo.state.requests)
            records = len(b24.state.leads) if kind == "bitrix24" else len(amo.state.leads)
            rate = bitrix24.RATE if kind == "bitrix24" else amocrm.RATE
            return {
                "events": handled,
                "records": records,
                "seconds": round(seconds, 3),
                "events_per_s": round(handled / seconds, 1),
                "requests_per_event": round(requests / max(handled, 1), 2),
                "seconds_at_the_crm_limit": round(requests / rate, 1),
            }
    finally:
        await otk.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    out: dict[str, object] = {"bench": "crm", "events_each": args.events}
    for kind in ("bitrix24", "amocrm"):
        with tempfile.TemporaryDirectory() as tmp:
            out[kind] = await run(kind, args.events, Path(tmp))
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
