#!/usr/bin/env python
"""Contacts CSV import (`otklik.conversations.contact_import`): N rows into an empty database, then the same
file again (all updates), and a dry run. Prints ONE JSON object on stdout. SQLite (a temp dir), or
PostgreSQL with `--pg URL` (a database you can drop: its contacts grow).

    .venv/bin/python bench/contacts_import.py                    # 100 000 rows
    .venv/bin/python bench/contacts_import.py --rows 20000
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.conversations.contact_import import import_contacts


def make_csv(rows: int) -> bytes:
    lines = ["phone;name;language;tags;city"]
    lines += [f"8 916 {n // 10000:03d}-{n % 10000:04d};Client {n};ru;bulk|spring;Kazan" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def main(rows: int, pg: str | None) -> dict[str, object]:
    url = pg or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    db = Database(url)
    await upgrade(db)
    data = make_csv(rows)
    out: dict[str, object] = {"rows": rows, "bytes": len(data), "db": "postgresql" if pg else "sqlite"}
    for label, dry in (("create", False), ("update", False), ("dry_run", True)):
        start = time.perf_counter()
        report = await import_contacts(db, io.BytesIO(data), region="RU", dry_run=dry)
        seconds = time.perf_counter() - start
        out[label] = {"seconds": round(seconds, 2), "rows_per_s": round(rows / seconds), "created": report.created,
                      "updated": report.updated, "skipped": report.skipped}  # fmt: skip
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    await db.dispose()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", default=None, help="postgresql+asyncpg://… (its contacts grow)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rows, args.pg))))
