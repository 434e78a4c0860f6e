"""Bookings: slots of a busy month and booking under contention. Prints one JSON object.

    .venv/bin/python bench/bookings.py                 # SQLite in a temp dir
    .venv/bin/python bench/bookings.py --pg URL        # PostgreSQL (its schema is dropped and recreated)

- `free_slots_month_ms`: the pure slot computation for one master over 31 days with N busy spans;
- `find_slots_week_ms`: `service.find_slots` for a service two masters do, 7 days, from the database;
- `bookings_per_s`: sequential `book_or_offer` calls (each a locked check + insert + reminders + event);
- `contended`: K concurrent bookers of one slot: how many won (must be 1) and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from otklik.bootstrap import Otklik
from otklik.capabilities.bookings import service
from otklik.capabilities.bookings.demo import salon
from otklik.capabilities.bookings.schedule import Span, free_slots
from otklik.config import Settings


def _pure(busy_count: int) -> float:
    hours = service.check_hours({"timezone": "Europe/Moscow", "week": {d: "09:00-13:00, 14:00-21:00" for d in
                                 ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})  # fmt: skip
    first = date(2027, 3, 1)
    base = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
    busy = [Span(base + timedelta(minutes=47 * i), base + timedelta(minutes=47 * i + 30)) for i in range(busy_count)]
    started = time.perf_counter()
    for _ in range(20):
        free_slots(hours, duration_min=60, buffer_min=15, busy=busy, first_day=first, days=31, now=base)
    return (time.perf_counter() - started) / 20 * 1000


async def _db(url: str, data: Path, bookings: int, contenders: int) -> dict[str, object]:
    if url.startswith("postgresql"):
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            await conn.exec_driver_sql("CREATE SCHEMA public")
        await engine.dispose()
    app = Otklik.build(Settings(env="test", demo=False, data_dir=data, database_url=url, nlu="keywords"))  # type: ignore[call-arg]
    await app.start()
    try:
        now = datetime.now(UTC)
        async with app.db.write() as session:
            found = await salon(session, now=now)
        async with app.db.read() as session:
            slots = await service.find_slots(session, found.haircut, now=now, days=31, limit=100_000)
        started = time.perf_counter()
        made = 0
        for slot in slots[::3][:bookings]:
            try:
                await service.book_or_offer(app.db, service.NewBooking(found.haircut, slot.staff_id, slot.start, "B"),
                                            now=now)  # fmt: skip
                made += 1
            except service.SlotTaken:
                pass
        per_s = made / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(10):
            async with app.db.read() as session:
                await service.find_slots(session, found.haircut, now=now, days=7)
        week_ms = (time.perf_counter() - started) / 10 * 1000
        async with app.db.read() as session:
            target = (await service.find_slots(session, found.haircut, now=now, days=31))[-1]

        async def one(n: int) -> bool:
            try:
                await service.book_or_offer(app.db, service.NewBooking(found.haircut, target.staff_id, target.start,
                                                                       f"C{n}"), now=now)  # fmt: skip
                return True
            except service.SlotTaken:
                return False

        started = time.perf_counter()
        won = sum(await asyncio.gather(*(one(n) for n in range(contenders))))
        return {"bookings": made, "bookings_per_s": round(per_s, 1), "find_slots_week_ms": round(week_ms, 2),
                "contended": {"bookers": contenders, "won": won,
                              "wall_ms": round((time.perf_counter() - started) * 1000, 1)}}  # fmt: skip
    finally:
        await app.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", help="a PostgreSQL URL (postgresql+asyncpg://…)")
    parser.add_argument("--bookings", type=int, default=200)
    parser.add_argument("--contenders", type=int, default=20)
    parser.add_argument("--busy", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite+aiosqlite:///{tmp}/bench.db"
        out = {"database": "postgresql" if args.pg else "sqlite", "free_slots_month_ms": round(_pure(args.busy), 2),
               "busy_spans": args.busy}  # fmt: skip
        out.update(asyncio.run(_db(url, Path(tmp), args.bookings, args.contenders)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
