#!/usr/bin/env python
"""Catalog search speed over N generated CCTV products (default 5 000). Prints ONE JSON object on stdout.

    .venv/bin/python bench/catalog_search.py
    .venv/bin/python bench/catalog_search.py --products 50000 --repeat 3

Measured: the import of the generated rows (`import_catalog`, SQLite file in a temp dir), building the index
from the active rows (`load_index`), queries per second with the index reused (`CatalogIndex.search`) and with
the index loaded for every query (`search(session, text)` without `index=`, what a caller without a cache
pays) and through an `IndexCache` (one freshness query a call), plus p50/p95 per query of the former. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.capabilities.sales import CAPABILITY
from otklik.capabilities.sales.importer import import_catalog
from otklik.capabilities.sales.search import IndexCache, load_index, search
from otklik.platform.plugins import folder

QUERIES = [
    "¿Qué cámaras Hikvision tienen?", "NVR de 16 canales", "disco de 2 teras", "camara tubo 4 megapixeles",
    "domo 2.8 mm exterior", "grabador 8 canales poe", "ds2cd1043", "IPC-HFW1230", "camara wifi", "hdcvi 5mp",
    "dahua bala ip", "xvr 32 canales", "acusense", "camara analogica interior", "st4000vx",
]  # fmt: skip


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        kind = rnd.random()
        brand = rnd.choice(["Hikvision", "Dahua", "Ezviz", "Imou", "Uniview", "Tiandy"])
        if kind < 0.6:
            tech = rnd.choice(["ip", "analogica", "wifi"])
            form = rnd.choice(["domo", "bullet"])
            res = rnd.choice(["2MP", "4MP", "5MP", "8MP"])
            lens = rnd.choice(["2.8", "3.6", "6"])
            attrs = f"tech={tech};form={form};resolution={res};lens_mm={lens};outdoor={rnd.choice(['si', 'no'])}"
            attrs += ";poe=si" if tech == "ip" and rnd.random() < 0.7 else ""
            rows.append({"sku": f"CAM-{brand[:3].upper()}{i:06d}-{res}", "name": f"Cámara {tech} {form} {res} {lens}mm",
                         "category": "Cámaras", "attributes": attrs})  # fmt: skip
        elif kind < 0.85:
            typ = rnd.choice(["nvr", "dvr", "xvr"])
            ch = rnd.choice([4, 8, 16, 32])
            rows.append({"sku": f"{typ.upper()}{ch}{i:06d}", "name": f"{typ.upper()} {ch} canales", "category": "Grabadores",
                         "attributes": f"tech={'ip' if typ == 'nvr' else 'analogica'};type={typ};channels={ch}"})  # fmt: skip
        else:
            tb = rnd.choice([1, 2, 4, 6, 8])
            rows.append({"sku": f"HDD{tb}T{i:06d}", "name": f"Disco rígido {tb}TB", "category": "Discos",
                         "attributes": f"capacity={tb}TB"})  # fmt: skip
        rows[-1].update(brand=brand, price=f"{rnd.randint(5_000, 400_000)}.00", currency="ARS",
                        stock=rnd.choice([0, 0, 1, 5, 20]), description="Producto de videovigilancia " * 3)  # fmt: skip
    return rows


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        assert CAPABILITY.migrations is not None
        await upgrade(db, locations=[folder(CAPABILITY.migrations)])
        rows = generate(args.products)
        start = time.perf_counter()
        report = await import_catalog(db, rows)
        import_s = time.perf_counter() - start
        assert report.applied and report.added == args.products, report.errors[:3]
        async with db.read() as session:
            start = time.perf_counter()
            index = await load_index(session)
            load_s = time.perf_counter() - start
            times: list[float] = []
            for _ in range(args.repeat):
                for q in QUERIES:
                    t = time.perf_counter()
                    index.search(q, 10)
                    times.append(time.perf_counter() - t)
            cache = IndexCache()
            await cache.get(session)
            cached: list[float] = []
            for _ in range(args.repeat):
                for q in QUERIES:
                    t = time.perf_counter()
                    await search(session, q, 10, cache=cache)
                    cached.append(time.perf_counter() - t)
            cold: list[float] = []
            for q in QUERIES:
                t = time.perf_counter()
                await search(session, q, 10)
                cold.append(time.perf_counter() - t)
        await db.dispose()
    q = statistics.quantiles(times, n=100)
    return {
        "products": args.products, "queries": len(times), "import_s": round(import_s, 3),
        "index_load_s": round(load_s, 3), "queries_per_s": round(len(times) / sum(times), 1),
        "p50_ms": round(q[49] * 1000, 2), "p95_ms": round(q[94] * 1000, 2),
        "queries_per_s_with_cache_check": round(len(cached) / sum(cached), 1),
        "queries_per_s_loading_each_time": round(len(cold) / sum(cold), 2),
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=10)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
