#!/usr/bin/env python
"""A/B tests and survey trees: assignment speed, the results of a big test, a survey answered through the
ingest step, the answers' distribution and CSV export. Prints ONE JSON object on stdout. SQLite (a file in a
temp dir); nothing is asserted.

    PYTHONPATH=. .venv/bin/python bench/abtests.py                       # 50 000 exposures, 8 000 survey answerers
    PYTHONPATH=. .venv/bin/python bench/abtests.py --exposures 5000 --answerers 500 --walkers 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select

from otklik.adapters.db.models import ABConversion, ABExposure, ABTest, Contact, SurveyAnswer
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.conversations import abtests, surveys
from otklik.core.abtest import assign_variant
from otklik.core.messages import EventKind, InboundEvent

SURVEY = Path(__file__).resolve().parents[1] / "otklik" / "packs" / "care-ru" / "surveys" / "winback.yaml"


def bench_assignment(n: int) -> dict[str, Any]:
    start = time.perf_counter()
    counts = [0, 0, 0]
    for contact in range(n):
        counts[assign_variant("bench_test", contact, [50, 30, 20])] += 1
    took = time.perf_counter() - start
    return {"calls": n, "per_s": round(n / took), "shares": [round(c / n, 4) for c in counts]}


async def seed_contacts(app: Otklik, n: int) -> list[int]:
    now = utcnow()
    async with app.db.write() as session:
        for start in range(0, n, 5000):
            rows = [{"display_name": f"c{i}", "created_at": now} for i in range(start, min(n, start + 5000))]
            await session.execute(insert(Contact), rows)
        return list((await session.execute(select(Contact.id).order_by(Contact.id))).scalars())


async def bench_results(app: Otklik, ids: list[int]) -> dict[str, Any]:
    now = utcnow()
    keys, splits = ["a", "b"], [50, 50]
    start = time.perf_counter()
    async with app.db.write() as session:
        session.add(ABTest(key="big", source="broadcast:1", variants={"keys": keys, "splits": splits},
                           goal={"kind": "replied", "window": "7d"}, status="running", created_at=now))  # fmt: skip
        for chunk in range(0, len(ids), 5000):
            part = ids[chunk : chunk + 5000]
            variants = {c: keys[assign_variant("big", c, splits)] for c in part}
            await session.execute(insert(ABExposure), [
                {"test_key": "big", "contact_id": c, "variant": v, "source": "", "exposed_at": now}
                for c, v in variants.items()
            ])  # fmt: skip
            wins = [c for c in part if c % (5 if variants[c] == "a" else 4) == 0]
            if wins:
                await session.execute(insert(ABConversion), [
                    {"test_key": "big", "contact_id": c, "variant": variants[c], "goal": "replied", "converted_at": now}
                    for c in wins
                ])  # fmt: skip
    seeded = time.perf_counter() - start
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        async with app.db.read() as session:
            result = await abtests.test_results(session, "big")
        timings.append(time.perf_counter() - t0)
    return {
        "exposures": len(ids),
        "seed_s": round(seeded, 3),
        "results_ms_median": round(sorted(timings)[2] * 1000, 1),
        "variants": [(v.variant, v.sample, v.conversions, round(v.rate, 4), v.significant) for v in result.variants],
    }


async def bench_survey_walk(app: Otklik, walkers: int) -> dict[str, Any]:
    await surveys.install(app.flows, SURVEY.read_text(encoding="utf-8"), pack="care-ru", author="bench")
    await app._rebuild_engines()
    account = next(a.id for a in app.ctx.accounts.values() if a.kind == "webchat")
    script = ["flow:survey.winback_ru", "yes", "price", "no"]
    start = time.perf_counter()
    steps = 0
    for w in range(walkers):
        for n, payload in enumerate(script):
            await app.ingest(InboundEvent(account, f"w{w}-{n}", f"walker-{w}", EventKind.BUTTON, payload=payload))
            steps += 1
    took = time.perf_counter() - start
    async with app.db.read() as session:
        stored = len((await session.execute(select(SurveyAnswer.id))).all())
    return {"walkers": walkers, "steps": steps, "steps_per_s": round(steps / took, 1),
            "ms_per_step": round(took / steps * 1000, 2), "answers_stored": stored}  # fmt: skip


async def bench_distribution(app: Otklik, ids: list[int]) -> dict[str, Any]:
    now = utcnow()
    options = {"trade": ["yes", "no"], "supplier": ["price", "stock", "service", "call"], "news": ["yes", "no"]}
    async with app.db.write() as session:
        for chunk in range(0, len(ids), 5000):
            rows = [
                {"survey": "bench", "question": q, "option": opts[c % len(opts)], "text": None, "contact_id": c,
                 "conversation_id": None, "source": "winback:1", "answered_at": now}
                for c in ids[chunk : chunk + 5000] for q, opts in options.items()
            ]  # fmt: skip
            await session.execute(insert(SurveyAnswer), rows)
    t0 = time.perf_counter()
    async with app.db.read() as session:
        counts = await surveys.distribution(session, "bench", "winback:1")
    dist = time.perf_counter() - t0
    t0 = time.perf_counter()
    size = 0
    async with app.db.read() as session:
        async for chunk in surveys.csv_rows(session, "bench"):
            size += len(chunk)
    export = time.perf_counter() - t0
    return {"answerers": len(ids), "answers": sum(n for rows in counts.values() for _, n in rows),
            "distribution_ms": round(dist * 1000, 1), "csv_s": round(export, 3), "csv_bytes": size}  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"assignment": bench_assignment(args.assignments)}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=f"sqlite+aiosqlite:///{tmp}/bench.db", nlu="keywords",
                            demo=False)  # fmt: skip
        app = Otklik.build(settings)
        await app.start()
        try:
            ids = await seed_contacts(app, max(args.exposures, args.answerers))
            out["results"] = await bench_results(app, ids[: args.exposures])
            out["survey_walk"] = await bench_survey_walk(app, args.walkers)
            out["survey_results"] = await bench_distribution(app, ids[: args.answerers])
        finally:
            await app.close()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignments", type=int, default=200_000)
    parser.add_argument("--exposures", type=int, default=50_000)
    parser.add_argument("--answerers", type=int, default=8_000)
    parser.add_argument("--walkers", type=int, default=200)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
