"""bench/catalog.py runs end to end at tiny sizes and prints the JSON the docs quote. No timing is asserted:
only that every phase ran, measured something and answered what was asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.catalog import generate, search_queries

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_price_list_is_a_valid_catalog() -> None:
    rows = generate(3000)
    assert len({r["sku"] for r in rows}) == 3000
    assert {r["category"] for r in rows} == {"Cámaras", "Grabadores", "Discos", "Redes"}
    assert 0.2 < sum(r["stock"] == "0" for r in rows) / 3000 < 0.5  # some out of stock
    assert generate(50) == generate(50)  # seeded: every run measures the same catalog
    queries = search_queries(rows, 200)
    assert len(queries) == 200 and len(set(queries)) > 150


def test_the_bench_runs_at_tiny_sizes(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = ["--products", "400", "--queries", "40", "--sessions", "2", "--turns", "3"]
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "catalog.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)

    assert result["products"] == 400
    imported = result["import"]
    assert imported["rows"] == 400 and imported["seconds"] > 0 and imported["rows_per_s"] > 0
    search = result["search"]
    assert search["queries"] == 40 and search["with_hits"] > 0 and search["index_build_s"] > 0
    for block in (search, search["with_freshness_check"], search["model_codes"], result["turn"]):
        assert 0 < block["p50_ms"] <= block["p95_ms"] <= block["p99_ms"] <= block["max_ms"]
    turn = result["turn"]
    assert turn["sessions"] == 2 and turn["turns"] == 6 and turn["lost"] == 0 and turn["replies_per_turn"] >= 1
    assert turn["answered_with_the_asked_product"] == 6  # every product question got that product's card
    assert len(result["machine"]["loadavg_at_start"]) == 3
