"""Which WB review does a screenshot show? Fuzzy match of the OCR text to each review's text, the buyer's
first name and the date. Pure: takes the OCR result and the candidate reviews.

"Certain" means: the review text is found in the screenshot almost verbatim, the first name or the date
agrees as well, and no other review comes close. Anything less goes to a person."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from rapidfuzz import fuzz

from otklik.capabilities.cashback.feedbacks import Review
from otklik.capabilities.cashback.ocr import OcrResult

TEXT_CERTAIN = 88  # partial ratio (0–100) of the review text inside the OCR text
TEXT_PLAUSIBLE = 70
NAME_MATCH = 85
MIN_TEXT_CHARS = 20  # shorter reviews ("Супер!") match too many screenshots to be certain
MARGIN = 10  # the best candidate must beat the runner-up by this much
_NON_WORD = re.compile(r"[^\w]+")


def normalise(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text.lower().replace("ё", "е")).split())


@dataclass(frozen=True, slots=True)
class Candidate:
    review: Review
    text_score: float
    name_ok: bool
    date_ok: bool

    @property
    def score(self) -> float:
        return self.text_score + (5 if self.name_ok else 0) + (5 if self.date_ok else 0)


@dataclass(frozen=True, slots=True)
class Match:
    certain: bool
    review: Review | None = None
    text_score: float = 0.0
    name_ok: bool = False
    date_ok: bool = False
    why: str = ""
    runner_up: float = 0.0
    candidates: int = 0
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {
            "certain": self.certain,
            "review_id": self.review.id if self.review else None,
            "text_score": round(self.text_score, 1),
            "name_ok": self.name_ok,
            "date_ok": self.date_ok,
            "runner_up": round(self.runner_up, 1),
            "candidates": self.candidates,
            "why": self.why,
        }


def _date_ok(review_day: date, seen: tuple[date, ...]) -> bool:
    return any(abs((review_day - d).days) <= 1 for d in seen)


def _name_ok(name: str, ocr_norm: str) -> bool:
    name = normalise(name)
    if len(name) < 2:
        return False
    return fuzz.partial_ratio(name, ocr_norm) >= NAME_MATCH


def score(review: Review, ocr: OcrResult, ocr_norm: str) -> Candidate:
    body = normalise(review.text)
    text_score = float(fuzz.partial_ratio(body, ocr_norm)) if body else 0.0
    return Candidate(
        review, text_score, _name_ok(review.user_name, ocr_norm), _date_ok(review.created.date(), ocr.dates)
    )


def best_match(ocr: OcrResult, reviews: list[Review]) -> Match:
    """The review the screenshot shows, and whether that is certain."""
    ocr_norm = normalise(ocr.text)
    if not reviews:
        return Match(False, why="no_reviews")
    if len(ocr_norm) < 10:
        return Match(False, why="no_text_read", candidates=len(reviews))
    ranked = sorted((score(r, ocr, ocr_norm) for r in reviews), key=lambda c: c.score, reverse=True)
    best = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else 0.0
    common = {
        "text_score": best.text_score,
        "name_ok": best.name_ok,
        "date_ok": best.date_ok,
        "runner_up": runner_up,
        "candidates": len(reviews),
    }
    if best.text_score < TEXT_PLAUSIBLE:
        return Match(False, why="not_found", **common)  # type: ignore[arg-type]
    review = best.review
    if len(normalise(review.text)) < MIN_TEXT_CHARS:
        return Match(False, review, why="text_too_short", **common)  # type: ignore[arg-type]
    if best.text_score < TEXT_CERTAIN:
        return Match(False, review, why="text_uncertain", **common)  # type: ignore[arg-type]
    if not (best.name_ok or best.date_ok):
        return Match(False, review, why="name_and_date_differ", **common)  # type: ignore[arg-type]
    if best.score - runner_up < MARGIN:
        return Match(False, review, why="ambiguous", **common)  # type: ignore[arg-type]
    return Match(True, review, why="certain", **common)  # type: ignore[arg-type]
