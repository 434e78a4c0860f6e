"""Red-flag detection: terms (burn, ambulance, court, police...) that must hand the dialog to a human.

A term is one or more words. A plain word matches a token with the same lemma (Russian, pymorphy3) or
stem (Spanish); a word ending in `*` matches any normalised token that starts with it. The words of a
multi-word term must appear in order with at most `MAX_GAP` other tokens between them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from otklik.conversations.nlu.text import lemmas, strip_accents, tokens

__all__ = ["MAX_GAP", "RedFlagMatcher"]

MAX_GAP = 2


@dataclass(frozen=True, slots=True)
class _Part:
    value: str
    prefix: bool

    def matches(self, token: str, lemma: str) -> bool:
        return token.startswith(self.value) if self.prefix else lemma == self.value


class RedFlagMatcher:
    """Finds the first red-flag term in a message."""

    def __init__(self, terms: Iterable[str], language: str = "ru") -> None:
        self.language = "es" if language.lower().startswith("es") else "ru"
        self.terms: list[tuple[str, tuple[_Part, ...]]] = []
        for term in terms:
            parts = self._compile(term)
            if parts:
                self.terms.append((term, parts))

    def _fold(self, word: str) -> str:
        return strip_accents(word) if self.language == "es" else word

    def _compile(self, term: str) -> tuple[_Part, ...]:
        parts: list[_Part] = []
        for raw in term.split():
            if raw.endswith("*"):
                stem = " ".join(tokens(raw[:-1]))
                if stem:
                    parts.append(_Part(self._fold(stem), prefix=True))
                continue
            for lemma in lemmas(raw, self.language):
                parts.append(_Part(lemma, prefix=False))
        return tuple(parts)

    def find(self, text: str) -> str | None:
        """The first configured term found in `text` (as written in the pack), or None."""
        words = [self._fold(w) for w in tokens(text)]
        if not words:
            return None
        forms = lemmas(text, self.language)
        for term, parts in self.terms:
            if _match_sequence(parts, words, forms):
                return term
        return None


def _match_sequence(parts: tuple[_Part, ...], words: list[str], forms: list[str]) -> bool:
    """True when the parts occur in order with at most MAX_GAP tokens between neighbours."""
    starts = [i for i, (w, f) in enumerate(zip(words, forms, strict=True)) if parts[0].matches(w, f)]
    for start in starts:
        position, ok = start, True
        for part in parts[1:]:
            window = range(position + 1, min(len(words), position + 2 + MAX_GAP))
            found = next((i for i in window if part.matches(words[i], forms[i])), None)
            if found is None:
                ok = False
                break
            position = found
        if ok:
            return True
    return False
