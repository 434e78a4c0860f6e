"""What the engine needs from natural-language understanding. Implementations live outside the core:
a keyword matcher (built in) and the offline classifier in `otklik.nlu`."""

from __future__ import annotations

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
    """A transparent fallback: each intent lists keywords (substrings of the lower-cased text)."""

    def __init__(self, keywords: dict[str, list[str]], fallback: str = "other") -> None:
        self._keywords = {intent: [k.lower().replace("ё", "е") for k in words] for intent, words in keywords.items()}
        self._fallback = fallback

    def understand(self, text: str, language: str | None = None) -> Understanding:
        lowered = text.lower().replace("ё", "е")
        best, hits = self._fallback, 0
        for intent, words in self._keywords.items():
            count = sum(1 for word in words if word in lowered)
            if count > hits:
                best, hits = intent, count
        confidence = 0.0 if hits == 0 else min(1.0, 0.6 + 0.2 * hits)
        return Understanding(intent=best, confidence=confidence)
