"""Precision and recall of the marketplace guard over a corpus written for it (tests/data/guard_corpus.jsonl).

Each line: `split` (`dev`: written with the rules, its misses fixed by category; `heldout`: written before
the rules were run on it and never used to change them), `expect` (`allow` / `block`), `category` (the main
reason expected, informative) and `text`. "Positive" means blocked. The figures are printed
(`pytest -s tests/core/test_guard_corpus.py`) and reported in docs/channels/wildberries-chat.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from otklik.core.guard import check

CORPUS = Path(__file__).resolve().parents[1] / "data" / "guard_corpus.jsonl"
# Floors, below the measured figures so that a small honest change is not a failure but a regression is.
FLOORS = {"dev": (0.95, 0.95), "heldout": (0.90, 0.80), "all": (0.93, 0.90)}


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load() -> list[dict[str, str]]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert all(r["split"] in ("dev", "heldout") and r["expect"] in ("allow", "block") for r in rows)
    return rows


def score(rows: list[dict[str, str]]) -> tuple[Score, list[str]]:
    result, errors = Score(), []
    for row in rows:
        blocked = not check(row["text"]).allowed
        if row["expect"] == "block":
            result.tp += blocked
            result.fn += not blocked
        else:
            result.fp += blocked
            result.tn += not blocked
        if blocked != (row["expect"] == "block"):
            errors.append(f"{row['split']} {row['expect']} {row['category']}: {row['text']!r}")
    return result, errors


def test_the_corpus_is_large_and_balanced_enough() -> None:
    rows = load()
    assert len(rows) >= 150
    assert sum(r["split"] == "heldout" for r in rows) >= 50
    for split in ("dev", "heldout"):
        part = [r for r in rows if r["split"] == split]
        assert sum(r["expect"] == "allow" for r in part) >= 20 and sum(r["expect"] == "block" for r in part) >= 30
    assert len({r["text"] for r in rows}) == len(rows)


@pytest.mark.parametrize("split", ["dev", "heldout", "all"])
def test_precision_and_recall_stay_above_their_floors(split: str) -> None:
    rows = [r for r in load() if split == "all" or r["split"] == split]
    result, errors = score(rows)
    print(
        f"\nguard corpus {split}: n={len(rows)} precision={result.precision:.3f} recall={result.recall:.3f} "
        f"(tp={result.tp} fp={result.fp} fn={result.fn} tn={result.tn})"
    )
    for error in errors:
        print("  wrong:", error)
    precision, recall = FLOORS[split]
    assert result.precision >= precision, errors
    assert result.recall >= recall, errors
