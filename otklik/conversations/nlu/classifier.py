"""The offline intent classifier: TF-IDF (lemma 1-2 grams, concepts, char 2-5 grams) → logistic regression.

Training takes a few seconds and is a plain synchronous function; async callers should run it in a thread.
Fitted models are cached on disk, keyed by the intents file content, `CODE_VERSION` and scikit-learn's version.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from otklik.conversations.nlu.entities import extract_entities
from otklik.conversations.nlu.features import build_features, fold_slang
from otklik.conversations.nlu.packdata import DEFAULT_THRESHOLD, PackData, load_pack
from otklik.conversations.nlu.redflags import RedFlagMatcher
from otklik.core.understanding import Understanding

__all__ = [
    "CODE_VERSION",
    "OfflineClassifier",
    "cache_key",
    "cache_path",
    "load_classifier",
    "train_from_examples",
    "train_pack",
]

CODE_VERSION = "nlu-1"
ALTERNATIVES = 3
_log = logging.getLogger(__name__)


def _model(language: str, concepts: Mapping[str, Iterable[str]] | None) -> Pipeline:
    """Features + multinomial logistic regression (its probabilities are the reported confidence).

    C=20 was chosen by 5-fold cross-validation on the pack examples (accuracy, log-loss, calibration error);
    newton-cg converges to the same solution as lbfgs here about 15x faster.
    """
    classifier = LogisticRegression(C=20.0, solver="newton-cg", max_iter=1000, class_weight="balanced")
    return Pipeline([("features", build_features(language, concepts)), ("model", classifier)])


@dataclass(slots=True)
class OfflineClassifier:
    """A fitted classifier; implements `otklik.core.understanding.IntentClassifier`."""

    pipeline: Pipeline
    language: str
    threshold: float = DEFAULT_THRESHOLD
    red_flags: RedFlagMatcher | None = None
    default_region: str = "RU"
    train_seconds: float = 0.0
    example_counts: dict[str, int] | None = None

    @property
    def intents(self) -> list[str]:
        """Intent names the model can return."""
        return [str(c) for c in self.pipeline.classes_]

    def scores(self, text: str) -> list[tuple[str, float]]:
        """All intents with their probabilities, best first."""
        probabilities = self.pipeline.predict_proba([text])[0]
        order = np.argsort(probabilities)[::-1]
        return [(str(self.pipeline.classes_[i]), float(probabilities[i])) for i in order]

    def understand(self, text: str, language: str | None = None, now: datetime | None = None) -> Understanding:
        """Intent with confidence, up to three alternatives, entities and the red-flag term, if any.

        The top intent is returned even below `threshold`; the engine decides what "unsure" means.
        """
        lang = language or self.language
        entities = tuple(extract_entities(text, lang, now=now, region=self.default_region))
        flag = self.red_flags.find(text) if self.red_flags else None
        if not fold_slang(text, lang).strip():
            return Understanding(intent="other", confidence=0.0, entities=entities, red_flag=flag)
        ranked = self.scores(text)
        intent, confidence = ranked[0]
        return Understanding(
            intent=intent,
            confidence=round(confidence, 4),
            entities=entities,
            alternatives=tuple((name, round(p, 4)) for name, p in ranked[1 : 1 + ALTERNATIVES]),
            red_flag=flag,
        )


def train_from_examples(
    examples: dict[str, list[str]],
    language: str = "ru",
    threshold: float = DEFAULT_THRESHOLD,
    red_flags: tuple[str, ...] | list[str] = (),
    default_region: str | None = None,
    concepts: Mapping[str, Iterable[str]] | None = None,
) -> OfflineClassifier:
    """Fit a classifier on `{intent: [example, ...]}` (e.g. a seller's edited examples from the database)."""
    texts = [t for intent in examples for t in examples[intent] if t.strip()]
    labels = [intent for intent in examples for t in examples[intent] if t.strip()]
    if len(set(labels)) < 2:
        raise ValueError("training needs at least two intents with examples")
    started = time.perf_counter()
    pipeline = _model(language, concepts)
    pipeline.fit(texts, labels)
    elapsed = time.perf_counter() - started
    region = default_region or ("AR" if language.lower().startswith("es") else "RU")
    return OfflineClassifier(
        pipeline=pipeline,
        language=language,
        threshold=threshold,
        red_flags=RedFlagMatcher(red_flags, language),
        default_region=region,
        train_seconds=elapsed,
        example_counts={intent: len(v) for intent, v in examples.items()},
    )


def train_pack(pack: PackData) -> OfflineClassifier:
    """Fit a classifier on a parsed pack."""
    return train_from_examples(
        pack.examples,
        language=pack.language,
        threshold=pack.threshold,
        red_flags=pack.red_flags,
        default_region=pack.default_region,
        concepts=pack.concepts,
    )


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """sha256 of this package's sources: a model pickled by other feature code is never reused
    (regression: a stale cache loaded fine but failed at predict time, and every message got a 500)."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def cache_key(pack: PackData) -> str:
    """sha256 of the intents file content + code version and sources + scikit-learn version."""
    seed = f"{pack.digest}|{CODE_VERSION}|{_code_digest()}|sklearn-{sklearn.__version__}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def cache_path(pack_dir: Path, cache_dir: Path, pack: PackData) -> Path:
    """Where the fitted model of this pack content is cached."""
    return Path(cache_dir) / f"{Path(pack_dir).resolve().name}-{cache_key(pack)[:24]}.joblib"


def load_classifier(pack_dir: Path, cache_dir: Path | None = None, force: bool = False) -> OfflineClassifier:
    """Load the pack's classifier from `cache_dir`, or train (and cache) it when the pack changed.

    `force` retrains even when a cached model exists. The cache is a joblib pickle written by this code
    into a local directory; never point `cache_dir` at files from an untrusted source.
    """
    pack = load_pack(Path(pack_dir))
    if cache_dir is None:
        return train_pack(pack)
    path = cache_path(pack_dir, cache_dir, pack)
    if path.exists() and not force:
        cached = _read_cache(path)
        if cached is not None and _works(cached):
            return cached
    classifier = train_pack(pack)
    _store(classifier, path)
    return classifier


def _works(classifier: OfflineClassifier) -> bool:
    """A loaded model must answer a probe before it serves buyers."""
    try:
        classifier.understand("проверка")
    except Exception:
        _log.warning("cached NLU model does not work with this code; retraining")
        return False
    return True


def _read_cache(path: Path) -> OfflineClassifier | None:
    try:
        cached = joblib.load(path)
    except Exception as exc:  # a truncated or incompatible cache file: retrain
        _log.warning("ignoring unreadable NLU cache %s: %s", path, exc)
        return None
    return cached if isinstance(cached, OfflineClassifier) else None


def _store(classifier: OfflineClassifier, path: Path) -> None:
    """Write atomically (temp file + rename) so that concurrent readers never see half a file;
    remove the models of older contents of the same pack."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pack_name = path.name.rsplit("-", 1)[0]
    stale_name = re.compile(rf"{re.escape(pack_name)}-[0-9a-f]{{24}}\.joblib")
    for stale in path.parent.iterdir():
        if stale != path and stale_name.fullmatch(stale.name):
            stale.unlink(missing_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{time.time_ns()}.tmp")
    joblib.dump(classifier, temp)
    temp.replace(path)
