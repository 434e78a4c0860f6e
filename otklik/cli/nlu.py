"""`otklik nlu ...`: train, predict and evaluate the offline classifier of a pack."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from otklik.conversations.nlu.packdata import PackError, pack_dir

if TYPE_CHECKING:  # scikit-learn is imported only by the commands that use it: `otklik --help` stays fast
    from otklik.conversations.nlu.classifier import OfflineClassifier

__all__ = ["app", "resolve_pack"]

app = typer.Typer(help="Offline understanding: train, predict, evaluate.", no_args_is_help=True)

PackOption = Annotated[str, typer.Option("--pack", help="pack name (otklik/packs/<name>) or a path to a pack folder")]
CacheOption = Annotated[Path, typer.Option("--cache-dir", help="where fitted models are cached")]
DEFAULT_CACHE = Path("./data/cache/nlu")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def resolve_pack(pack: str) -> Path:
    """A pack name → `otklik/packs/<name>/`; an existing folder path is used as it is."""
    candidate = Path(pack)
    if candidate.is_dir() and (candidate / "intents.yaml").exists():
        return candidate
    built_in = pack_dir(pack)
    if (built_in / "intents.yaml").exists():
        return built_in
    raise _fail(f"unknown pack {pack!r}: no intents.yaml in {built_in} or {candidate}")


def _load(pack: str, cache_dir: Path, force: bool = False) -> OfflineClassifier:
    from otklik.conversations.nlu.classifier import load_classifier

    directory = resolve_pack(pack)
    try:
        return load_classifier(directory, cache_dir, force=force)
    except PackError as exc:
        raise _fail(f"{directory / 'intents.yaml'}: {exc}") from None
    except OSError as exc:
        raise _fail(f"cache {cache_dir}: {exc}") from None


@app.command()
def train(pack: PackOption = "care-ru", cache_dir: CacheOption = DEFAULT_CACHE) -> None:
    """Train the pack's classifier, cache it, print example counts and training time."""
    started = time.perf_counter()
    classifier = _load(pack, cache_dir, force=True)
    elapsed = time.perf_counter() - started
    counts = classifier.example_counts or {}
    typer.echo(f"pack {pack} ({classifier.language}), threshold {classifier.threshold:.2f}")
    for intent, count in counts.items():
        typer.echo(f"  {intent:<20} {count:>4}")
    typer.echo(f"  {'total':<20} {sum(counts.values()):>4}")
    typer.echo(f"trained in {classifier.train_seconds:.2f} s (with loading and caching {elapsed:.2f} s)")


@app.command()
def predict(
    text: Annotated[str, typer.Argument(help="the buyer's message")],
    pack: PackOption = "care-ru",
    cache_dir: CacheOption = DEFAULT_CACHE,
) -> None:
    """Classify one message and print JSON: intent, confidence, entities, red_flag."""
    result = _load(pack, cache_dir).understand(text)
    payload = {
        "intent": result.intent,
        "confidence": round(result.confidence, 3),
        "entities": [{"kind": e.kind, "value": e.value, "text": e.text} for e in result.entities],
        "red_flag": result.red_flag,
    }
    typer.echo(json.dumps(payload, ensure_ascii=False))


@app.command("eval")
def eval_command(
    file: Annotated[Path, typer.Argument(help="CSV with columns text,intent (UTF-8)")],
    pack: PackOption = "care-ru",
    cache_dir: CacheOption = DEFAULT_CACHE,
) -> None:
    """Accuracy, macro-F1, per-intent precision/recall and the misclassified rows of a labelled CSV."""
    from otklik.conversations.nlu.evaluate import EvalDataError, evaluate, format_report, read_labelled_csv

    classifier = _load(pack, cache_dir)
    try:
        rows = read_labelled_csv(file, classifier.intents)
    except EvalDataError as exc:
        raise _fail(str(exc)) from None
    report = evaluate(classifier, rows)
    sys.stdout.flush()
    typer.echo(format_report(report))
