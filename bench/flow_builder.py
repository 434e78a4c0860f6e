"""The visual builder's server work per keystroke, on the largest pack flow: the canvas model with checks
(`POST /admin/flows/_canvas` without an edit) and a one-text edit written into the YAML (with an edit).
Prints JSON; timings are never asserted in tests."""

from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path

from otklik.core.flows import canvas
from otklik.core.flows.textpatch import load, patch

ROUNDS = 30


def main() -> None:
    path = max(Path("otklik/packs").glob("*/flows/*.yaml"), key=lambda p: p.stat().st_size)
    source = path.read_text(encoding="utf-8")
    doc = load(source)
    first = next(iter(doc["nodes"]))
    edited = copy.deepcopy(doc)
    edited["nodes"][first]["text"] = "Новый текст с холста"

    def timed(fn: object) -> float:
        runs = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            runs.append((time.perf_counter() - start) * 1000)
        return round(statistics.median(runs), 2)

    print(
        json.dumps(
            {
                "flow": str(path),
                "bytes": len(source.encode()),
                "nodes": len(doc["nodes"]),
                "canvas_and_checks_ms": timed(lambda: (canvas.canvas(load(source)), canvas.lint(load(source)))),
                "layout_ms": timed(lambda: canvas.layout(canvas.canvas(doc))),
                "patch_one_text_ms": timed(lambda: patch(source, edited)),
                "rounds": ROUNDS,
            }
        )
    )


if __name__ == "__main__":
    main()
