"""Offline classification of WB reviews into care categories (plus size_fit, smell, packaging, quality,
price, other), trained on the pack's `reviews.yaml` with the NLU package's classifier machinery.

A review counts as negative/neutral when its rating is 3 or lower, or when a 4-5 star text reads as a
complaint (its best label is a category, not `positive`, with enough confidence).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from otklik.capabilities.care.categories import POSITIVE, REVIEW_CATEGORIES
from otklik.core import safe_yaml
from otklik.core.errors import InvalidInput

REVIEWS_FILE = "reviews.yaml"
NEGATIVE_MAX_RATING = 3


@dataclass(frozen=True, slots=True)
class ReviewData:
    language: str
    threshold: float
    examples: dict[str, list[str]]
    descriptions: dict[str, str]
    digest: str


def parse_reviews(text: str) -> ReviewData:
    """Parse `reviews.yaml`; every category needs examples and must be a known review category."""
    try:
        doc = safe_yaml.load_trusted(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{REVIEWS_FILE}: invalid YAML: {exc}") from None
    raw = doc.get("categories") if isinstance(doc, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise InvalidInput(f"{REVIEWS_FILE}: 'categories' must map a category to {{examples: [...]}}")
    examples: dict[str, list[str]] = {}
    descriptions: dict[str, str] = {}
    for name, body in raw.items():
        if name not in (*REVIEW_CATEGORIES, POSITIVE):
            raise InvalidInput(f"{REVIEWS_FILE}: unknown category {name!r}")
        found = [str(x).strip() for x in (body or {}).get("examples") or [] if str(x).strip()]
        if not found:
            raise InvalidInput(f"{REVIEWS_FILE}: category {name!r} has no examples")
        examples[str(name)] = found
        descriptions[str(name)] = str((body or {}).get("description") or "")
    threshold = float(doc.get("threshold", 0.35))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return ReviewData(str(doc.get("language", "ru")), threshold, examples, descriptions, digest)


@dataclass(frozen=True, slots=True)
class ReviewLabel:
    """`category` is None for a review that is not negative."""

    negative: bool
    category: str | None
    confidence: float  # the classifier's probability of `category` (0 when there was no text)


def review_text(text: str, cons: str = "") -> str:
    """What is classified: the review and its "Недостатки" (the "Достоинства" would only add praise)."""
    return " ".join(part.strip() for part in (text, cons) if part and part.strip())[:2000]


class ReviewClassifier:
    """Trained once per process and pack content (`for_pack`); `classify` is synchronous and fast."""

    def __init__(self, data: ReviewData) -> None:
        from otklik.conversations.nlu.classifier import train_from_examples

        self.data = data
        self.model = train_from_examples(data.examples, language=data.language, threshold=data.threshold)

    @classmethod
    def for_pack(cls, pack_dir: Path) -> ReviewClassifier:
        path = Path(pack_dir) / REVIEWS_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInput(f"pack {Path(pack_dir).name!r} has no {REVIEWS_FILE}") from None
        return _cached(text)

    @property
    def descriptions(self) -> dict[str, str]:
        return {k: v for k, v in self.data.descriptions.items() if k != POSITIVE}

    def classify(self, text: str, rating: int | None) -> ReviewLabel:
        low = rating is not None and rating <= NEGATIVE_MAX_RATING
        if not text.strip():
            return ReviewLabel(low, "other" if low else None, 0.0)
        ranked = self.model.scores(text)
        complaints = [(name, p) for name, p in ranked if name != POSITIVE]
        best, probability = complaints[0]
        if not low:
            top, top_p = ranked[0]
            if top == POSITIVE or top_p < self.data.threshold:
                return ReviewLabel(False, None, round(top_p, 4))
        if probability < self.data.threshold:
            best = "other"
        return ReviewLabel(True, best, round(probability, 4))


@functools.lru_cache(maxsize=4)
def _cached(text: str) -> ReviewClassifier:
    return ReviewClassifier(parse_reviews(text))
