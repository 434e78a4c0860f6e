"""Evaluation of a classifier on a labelled CSV (`text,intent`): accuracy, macro-F1, per-intent figures."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.metrics import precision_recall_fscore_support

from otklik.core.understanding import IntentClassifier

__all__ = ["EvalDataError", "EvalReport", "evaluate", "format_report", "read_labelled_csv"]

REQUIRED_COLUMNS = ("text", "intent")


class EvalDataError(ValueError):
    """The labelled file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class IntentScore:
    """Precision, recall and F1 of one intent, with its number of gold rows."""

    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(slots=True)
class EvalReport:
    """The outcome of one evaluation run."""

    total: int
    accuracy: float
    macro_f1: float
    per_intent: list[IntentScore] = field(default_factory=list)
    errors: list[tuple[str, str, str, float]] = field(default_factory=list)  # text, gold, predicted, confidence


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise EvalDataError(f"{path}: no such file") from None
    except OSError as exc:
        raise EvalDataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalDataError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None


def read_labelled_csv(path: Path, known_intents: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Read `text,intent` rows; raise EvalDataError on an empty file, missing columns or unknown intents."""
    content = _decode(Path(path))
    if not content.strip():
        raise EvalDataError(f"{path}: the file is empty")
    try:
        reader = csv.DictReader(io.StringIO(content, newline=""))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise EvalDataError(f"{path}: missing column(s) {', '.join(missing)}; the header must be text,intent")
        reader.fieldnames = header
        rows = [((r.get("text") or "").strip(), (r.get("intent") or "").strip()) for r in reader]
    except csv.Error as exc:
        raise EvalDataError(f"{path}: malformed CSV: {exc}") from None
    rows = [r for r in rows if r[0] or r[1]]
    if not rows:
        raise EvalDataError(f"{path}: no data rows after the header")
    _check_rows(path, rows, known_intents)
    return rows


def _check_rows(path: Path, rows: list[tuple[str, str]], known: Iterable[str] | None) -> None:
    blank = [i + 2 for i, (text, intent) in enumerate(rows) if not text or not intent]
    if blank:
        raise EvalDataError(f"{path}: empty text or intent on line(s) {_lines(blank)}")
    if known is None:
        return
    allowed = set(known)
    unknown = sorted({intent for _, intent in rows if intent not in allowed})
    if unknown:
        raise EvalDataError(
            f"{path}: unknown intent(s) {', '.join(unknown)}; the pack has: {', '.join(sorted(allowed))}"
        )


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:10]))
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def evaluate(classifier: IntentClassifier, rows: list[tuple[str, str]], language: str | None = None) -> EvalReport:
    """Classify every row and compare with the gold intent."""
    gold: list[str] = []
    predicted: list[str] = []
    errors: list[tuple[str, str, str, float]] = []
    for text, intent in rows:
        result = classifier.understand(text, language)
        gold.append(intent)
        predicted.append(result.intent)
        if result.intent != intent:
            errors.append((text, intent, result.intent, result.confidence))
    labels = sorted(set(gold) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    scores = [
        IntentScore(label, float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    ]
    accuracy = sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)
    macro = sum(s.f1 for s in scores) / len(scores)
    return EvalReport(len(gold), accuracy, macro, scores, errors)


def format_report(report: EvalReport) -> str:
    """A plain-text report; its last line is exactly `accuracy=0.xxx macro_f1=0.xxx`."""
    lines = [f"rows: {report.total}", "", f"{'intent':<20} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>4}"]
    for s in report.per_intent:
        lines.append(f"{s.intent:<20} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f} {s.support:>4}")
    lines.append("")
    lines.append(f"misclassified: {len(report.errors)}")
    for text, gold, predicted, confidence in report.errors:
        flat = " ".join(text.split())
        lines.append(f"  [{gold} -> {predicted} {confidence:.2f}] {flat}")
    lines.append("")
    lines.append(f"accuracy={report.accuracy:.3f} macro_f1={report.macro_f1:.3f}")
    return "\n".join(lines)
