#!/usr/bin/env python
"""Sales speed: catalog import, search, a product-question turn on the web chat. Prints ONE JSON object.

    .venv/bin/python bench/catalog.py                                   # 50 000 products, 8 sessions x 40 turns
    .venv/bin/python bench/catalog.py --products 2000 --sessions 2 --turns 5
    .venv/bin/python bench/catalog.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/otklik_bench

Phases (timings are printed, never asserted):

1. **import**: N generated rows of a CCTV distributor (several brands, categories, attributes, realistic model
   codes, a third out of stock) are written to a CSV file and imported through the real importer
   (`read_file` + `import_catalog`) into a fresh database migrated by `Otklik.start()` (SQLite in a temp data
   dir unless `--database-url`; that database must be empty).
2. **search**: Spanish buyer questions (brands, categories, attributes, model codes with and without dashes,
   lower case, a wrong or missing character, misspelt brands) against the N products: `CatalogIndex.search`
   on a built index, and `search(session, q, cache=IndexCache)` (what a turn pays: one freshness query).
3. **turn**: `otklik run` is started on that data dir with `OTKLIK_DEFAULT_PACK=sales-es` and
   `OTKLIK_NLU=keywords` (no LLM, no trained model). K web-chat sessions each send a warm-up question,
   then M product questions ("cuánto sale la <code>", the code of an in-stock product, written as buyers write
   it), one after another; a turn runs from the start of the POST until its reply arrives on the long-poll
   GET. The number of replies a question gets is calibrated first on a separate session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from bench.inbound import RawClient, free_port, machine
from otklik.bootstrap import Otklik
from otklik.capabilities.sales.importer import import_catalog, read_file
from otklik.capabilities.sales.search import IndexCache, load_index, search
from otklik.config import Settings

FIELDS = ["sku", "name", "brand", "category", "price", "currency", "stock", "description", "attributes"]
CAMERA_BRANDS = ["Hikvision", "Dahua", "Ezviz", "Imou", "Uniview", "Tiandy"]
CODE_PREFIX = {"Hikvision": "DS-2CD", "Dahua": "IPC-HFW", "Ezviz": "CS-C", "Imou": "IPC-F", "Uniview": "IPC-B",
               "Tiandy": "TC-C3"}  # fmt: skip


def generate(n: int, seed: int = 7) -> list[dict[str, str]]:
    """N price-list rows; every sku unique (the running number is part of the model code)."""
    rnd = random.Random(seed)
    rows: list[dict[str, str]] = []
    for i in range(n):
        kind = rnd.random()
        if kind < 0.55:
            brand = rnd.choice(CAMERA_BRANDS)
            tech = rnd.choice(["ip", "ip", "analogica", "wifi"])
            form = rnd.choice(["domo", "bullet", "turret"])
            res = rnd.choice(["2MP", "4MP", "5MP", "8MP"])
            lens = rnd.choice(["2.8", "3.6", "6"])
            sku = f"{CODE_PREFIX[brand]}{i:05d}{res[0]}G{rnd.randint(0, 2)}-{rnd.choice(['I', 'IS', 'S4', 'LIS'])}"
            attrs = f"tech={tech};form={form};resolution={res};lens_mm={lens};outdoor={rnd.choice(['si', 'no'])}"
            attrs += ";poe=si" if tech == "ip" and rnd.random() < 0.7 else ""
            name = f"Cámara {'IP' if tech == 'ip' else 'WiFi' if tech == 'wifi' else 'Turbo HD'} {form} {res} {lens}mm"
            row = {"sku": sku, "name": name, "brand": brand, "category": "Cámaras", "attributes": attrs}
        elif kind < 0.8:
            brand = rnd.choice(["Hikvision", "Dahua", "Uniview", "Tiandy"])
            typ = rnd.choice(["nvr", "dvr", "xvr"])
            ch = rnd.choice([4, 8, 16, 32])
            sku = f"{typ.upper()}{ch:02d}{i:05d}-{rnd.choice(['4KS2', 'Q1', 'M1', 'P'])}"
            row = {"sku": sku, "name": f"{typ.upper()} {ch} canales", "brand": brand, "category": "Grabadores",
                   "attributes": f"tech={'ip' if typ == 'nvr' else 'analogica'};type={typ};channels={ch}"}  # fmt: skip
        elif kind < 0.92:
            brand = rnd.choice(["Western Digital", "Seagate", "Toshiba"])
            tb = rnd.choice([1, 2, 4, 6, 8])
            sku = f"{'WD' if brand == 'Western Digital' else 'ST'}{tb}{i:05d}PURZ"
            row = {"sku": sku, "name": f"Disco rígido {tb}TB {brand}", "brand": brand, "category": "Discos",
                   "attributes": f"capacity={tb}TB"}  # fmt: skip
        else:
            brand = rnd.choice(["TP-Link", "Hikvision", "Ubiquiti"])
            ports = rnd.choice([4, 5, 8, 16, 24])
            sku = f"SW-{ports}{i:05d}P"
            row = {"sku": sku, "name": f"Switch PoE {ports} puertos", "brand": brand, "category": "Redes",
                   "attributes": "poe=si"}  # fmt: skip
        row.update(price=f"{rnd.randint(5_000, 400_000)}.{rnd.choice(['00', '50', '99'])}", currency="ARS",
                   stock=str(rnd.choice([0, 0, 1, 5, 20, 40])), description=f"{row['name']} {brand} para videovigilancia")  # fmt: skip
        rows.append(row)
    return rows


def written_as_buyers_do(sku: str, rnd: random.Random) -> str:
    """A model code as typed in a chat: lower case, without dashes, the suffix left off, one letter wrong."""
    way = rnd.randrange(5)
    if way == 0:
        return sku.lower()
    if way == 1:
        return sku.replace("-", "").lower()
    if way == 2:
        return sku.rsplit("-", 1)[0] if "-" in sku[3:] else sku[:-1]
    if way == 3:  # one character swapped for its neighbour
        k = rnd.randrange(2, len(sku) - 1)
        return sku[:k] + sku[k + 1] + sku[k] + sku[k + 2 :]
    return sku


LIST_QUERIES = [
    "¿qué cámaras Hikvision tienen?", "camaras dahua domo 4mp", "¿tienen NVR de 16 canales?", "disco de 2 teras",
    "cámara tubo 4 megapixeles para exterior", "domo 2.8 mm", "grabador 8 canales", "camara wifi para interior",
    "turbo hd 5mp", "switch poe 8 puertos", "kamaras hikvison bala", "dahau xvr 32 canales",
    "disco rigido 4tb seagate", "camaras ip con poe", "¿qué domos uniview manejan?", "nvr tiandy 8 canales",
    "cámara ezviz wifi", "lente 3.6 exterior bullet", "discos western digital", "grabadores dvr 4 canales",
]  # fmt: skip
CODE_TEMPLATES = ["cuánto sale la {}", "precio de {}", "¿tienen stock de {}?", "{}", "me pasás el precio del {}"]


def search_queries(rows: list[dict[str, str]], count: int, seed: int = 11) -> list[str]:
    rnd = random.Random(seed)
    out = list(LIST_QUERIES)
    while len(out) < count:
        sku = rnd.choice(rows)["sku"]
        out.append(rnd.choice(CODE_TEMPLATES).format(written_as_buyers_do(sku, rnd)))
    rnd.shuffle(out)
    return out[:count]


def ms(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        values = values * 2
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(q[49] * 1000, 2), "p95_ms": round(q[94] * 1000, 2), "p99_ms": round(q[98] * 1000, 2),
            "max_ms": round(max(values) * 1000, 2)}  # fmt: skip


# --- server -------------------------------------------------------------------------------------------


class Server:
    """`otklik run` on the bench's data dir: the sales-es pack, keyword NLU, no demo, web-chat limits off."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({"OTKLIK_DATA_DIR": str(data_dir), "OTKLIK_DEMO": "false", "OTKLIK_LOG_LEVEL": "WARNING",
                    "OTKLIK_DEFAULT_PACK": "sales-es", "OTKLIK_NLU": "keywords"})  # fmt: skip
        env.pop("OTKLIK_DATABASE_URL", None)
        if database_url:
            env["OTKLIK_DATABASE_URL"] = database_url
        for limit in ("SESSIONS_PER_ADDRESS", "MESSAGES_PER_ADDRESS", "MESSAGES_PER_SESSION"):
            env[f"OTKLIK_WEBCHAT_{limit}"] = "0"
        entry = data_dir / "serve.py"
        entry.write_text("from otklik.cli.main import app\napp()\n")
        self.log_path = data_dir / "server.log"
        self._log = self.log_path.open("wb")
        cmd = [sys.executable, str(entry), "run", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=data_dir)

    async def wait_ready(self, timeout: float = 120.0) -> float:
        t0 = time.perf_counter()
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.perf_counter() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        return time.perf_counter() - t0
                await asyncio.sleep(0.25)
        raise SystemExit(f"server not ready after {timeout} s; log: {self.log_path}")

    def stop(self) -> None:
        for sig, grace in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        self._log.close()


class Buyer:
    def __init__(self, client: RawClient, timeout: float) -> None:
        self.client, self.timeout = client, timeout
        self.sid, self.cursor, self.n = "", 0, 0

    async def open(self) -> None:
        r = await self.client.request("POST", "/api/webchat/sessions", json={"language": "es"})
        assert r.status_code == 201, r.body[:300]
        self.sid = r.json()["session_id"]

    async def send(self, text: str) -> None:
        self.n += 1
        r = await self.client.request("POST", f"/api/webchat/sessions/{self.sid}/messages",
                                      json={"text": text, "client_id": f"bench-{self.n:06d}"})  # fmt: skip
        assert r.status_code == 202, r.body[:300]

    async def poll(self, wait: float) -> list[dict[str, Any]]:
        r = await self.client.request("GET", f"/api/webchat/sessions/{self.sid}/messages",
                                      params={"after": self.cursor, "wait": wait})  # fmt: skip
        assert r.status_code == 200, r.body[:300]
        body = r.json()
        self.cursor = max(self.cursor, int(body["cursor"]))
        return list(body["messages"])

    async def collect(self, expected: int) -> list[dict[str, Any]] | None:
        got: list[dict[str, Any]] = []
        deadline = time.perf_counter() + self.timeout
        while len(got) < expected:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            got += await self.poll(min(5.0, max(left, 0.05)))
        return got

    async def drain_quiet(self, quiet: float = 1.0) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while fresh := await self.poll(quiet):
            got += fresh
        return got


async def turns(url: str, skus: list[str], args: argparse.Namespace) -> dict[str, Any]:
    rnd = random.Random(13)
    async with RawClient(url, timeout=30.0) as client:
        probe = Buyer(client, args.timeout)
        await probe.open()
        await probe.send("hola, ¿qué cámaras tienen?")
        await probe.drain_quiet()
        await probe.send(f"cuánto sale la {skus[0]}")
        calibration = await probe.drain_quiet()
        expected = len(calibration)
        if expected < 1 or skus[0] not in calibration[0]["text"]:
            raise SystemExit(f"a product question got no product card: {[m['text'] for m in calibration]}")

        times: list[float] = []
        lost = 0
        answered_with_code = 0

        async def talk(buyer: Buyer) -> None:
            nonlocal lost, answered_with_code
            await buyer.open()
            await buyer.send("hola, ¿qué cámaras tienen?")  # the greeting and the first list: not measured
            await buyer.drain_quiet()
            for _ in range(args.turns):
                sku = rnd.choice(skus)
                text = rnd.choice(CODE_TEMPLATES[:3]).format(written_as_buyers_do(sku, rnd))
                t0 = time.perf_counter()
                await buyer.send(text)
                got = await buyer.collect(expected)
                if got is None:
                    lost += 1
                    await buyer.drain_quiet()
                    continue
                times.append(time.perf_counter() - t0)
                answered_with_code += sku in got[0]["text"]

        t0 = time.perf_counter()
        await asyncio.gather(*(talk(Buyer(client, args.timeout)) for _ in range(args.sessions)))
        wall = time.perf_counter() - t0
    return {"sessions": args.sessions, "turns": len(times), "lost": lost, "replies_per_turn": expected,
            "answered_with_the_asked_product": answered_with_code, "wall_s": round(wall, 2),
            "turns_per_s": round(len(times) / wall, 1), **ms(times)}  # fmt: skip


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"machine": machine(), "products": args.products}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        settings = Settings(data_dir=data, database_url=args.database_url, demo=False, nlu="keywords",
                            default_pack="sales-es")  # fmt: skip
        app = Otklik.build(settings)
        await app.start()
        try:
            rows = generate(args.products)
            path = Path(tmp) / "catalog.csv"
            with path.open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, FIELDS)
                writer.writeheader()
                writer.writerows(rows)
            t0 = time.perf_counter()
            sheet = read_file(path)
            report = await import_catalog(app.db, sheet)
            import_s = time.perf_counter() - t0
            if not report.applied or report.added != args.products:
                raise SystemExit(f"import failed: {report.errors[:3]}")
            result["import"] = {"rows": args.products, "csv_bytes": path.stat().st_size, "seconds": round(import_s, 3),
                                "rows_per_s": round(args.products / import_s)}  # fmt: skip

            queries = search_queries(rows, args.queries)
            async with app.db.read() as session:
                t0 = time.perf_counter()
                index = await load_index(session)
                load_s = time.perf_counter() - t0
                bare: list[float] = []
                by_kind: dict[str, list[float]] = {"list_questions": [], "model_codes": []}
                found = 0
                for q in queries:
                    t = time.perf_counter()
                    hits = index.search(q, 10)
                    bare.append(time.perf_counter() - t)
                    by_kind["list_questions" if q in LIST_QUERIES else "model_codes"].append(bare[-1])
                    found += bool(hits)
                cache = IndexCache()
                await cache.get(session)
                cached: list[float] = []
                for q in queries:
                    t = time.perf_counter()
                    await search(session, q, 10, cache=cache)
                    cached.append(time.perf_counter() - t)
            result["search"] = {"products": args.products, "queries": len(queries), "with_hits": found,
                                "index_build_s": round(load_s, 3), **ms(bare),
                                **{kind: ms(v) for kind, v in by_kind.items() if v},
                                "with_freshness_check": ms(cached)}  # fmt: skip
        finally:
            await app.close()

        if args.sessions and args.turns:
            in_stock = [r["sku"] for r in rows if r["stock"] != "0"]
            server = Server(data, args.database_url)
            try:
                result["server_start_s"] = round(await server.wait_ready(), 2)
                result["loadavg_before_turns"] = [round(x, 2) for x in os.getloadavg()]
                result["turn"] = await turns(server.url, in_stock, args)
            finally:
                server.stop()
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=500, help="search questions (a fifth are list questions)")
    parser.add_argument("--sessions", type=int, default=8, help="web-chat sessions talking at once (0: no turns)")
    parser.add_argument("--turns", type=int, default=40, help="product questions per session")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a turn may wait for its reply")
    parser.add_argument("--database-url", help="an EMPTY database instead of SQLite in a temp dir")
    print(json.dumps(asyncio.run(amain(parser.parse_args())), ensure_ascii=False))


if __name__ == "__main__":
    main()
