"""What the engine needs from natural-language understanding. Implementations live outside the core:
a keyword matcher (built in) and the offline classifier in `otklik.conversations.nlu`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Entity:
    """A value found in text: `kind` is e.g. barcode, nm_id, order_id, phone, money, date, email."""

    kind: str
    value: str
    text: str = ""  # the span as written
    start: int = -1
    end: int = -1


@dataclass(frozen=True, slots=True)
class Understanding:
    """The classifier's reading of one message."""

    intent: str
    confidence: float
    entities: tuple[Entity, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = field(default=())
    red_flag: str | None = None  # the red-flag term found (burn, ambulance, court...): hand off at once

    def entity(self, kind: str) -> Entity | None:
        return next((e for e in self.entities if e.kind == kind), None)


class IntentClassifier(Protocol):
    """Turns buyer text into an intent with a calibrated confidence and entities.

    `language` is the contact's language code ("ru", "es"); implementations may ignore it.
    Must be fast and side-effect free: it is called inside the conversation's transaction.
    """

    def understand(self, text: str, language: str | None = None) -> Understanding: ...


class KeywordClassifier:
    """A transparent fallback: each intent lists keywords that must start at a word boundary
    ("брак" matches "браком", not "абракадабра"). Most matched keywords wins."""

    def __init__(self, keywords: dict[str, list[str]], fallback: str = "other") -> None:
        self._patterns = {
            intent: [re.compile(r"(?<!\w)" + re.escape(_fold(word))) for word in words]
            for intent, words in keywords.items()
        }
        self._fallback = fallback

    def understand(self, text: str, language: str | None = None) -> Understanding:
        folded = _fold(text)
        best, hits = self._fallback, 0
        for intent, patterns in self._patterns.items():
            count = sum(1 for pattern in patterns if pattern.search(folded))
            if count > hits:
                best, hits = intent, count
        confidence = 0.0 if hits == 0 else min(1.0, 0.6 + 0.2 * hits)
        return Understanding(intent=best, confidence=confidence)


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")
