"""Text normalisation, tokens and lemmas for Russian and Spanish buyer messages.

Everything here is offline and deterministic. Russian lemmas come from pymorphy3 (the dictionary ships
with the `pymorphy3-dicts-ru` package); Spanish uses a small suffix-stripping stemmer written here.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

__all__ = ["lemma_ru", "lemmas", "normalize", "stem_es", "strip_accents", "tokens"]

_REPEATS = re.compile(r"([^\W\d_])\1{2,}")
_NON_WORD = re.compile(r"[^\w]+|_+")
_SPACES = re.compile(r"\s+")

_morph: Any = None
_morph_lock = threading.Lock()


def normalize(text: str) -> str:
    """Lower-case, ё→е, squeeze letters repeated 3+ times, punctuation/emoji → spaces; digits are kept.

    >>> normalize("Оооочень ПЛОХО!!! 😡 ёж 2шт")
    'очень плохо еж 2шт'
    """
    lowered = text.lower().replace("ё", "е")
    squeezed = _REPEATS.sub(r"\1", lowered)
    spaced = _NON_WORD.sub(" ", squeezed)
    return _SPACES.sub(" ", spaced).strip()


def tokens(text: str) -> list[str]:
    """Split the normalised text into word tokens (letters and digits)."""
    normalized = normalize(text)
    return normalized.split() if normalized else []


def _analyzer() -> Any:
    """The shared pymorphy3 MorphAnalyzer, created on first use (loading takes ~0.3 s)."""
    global _morph
    if _morph is None:
        with _morph_lock:
            if _morph is None:
                import pymorphy3

                _morph = pymorphy3.MorphAnalyzer(lang="ru")
    return _morph


@lru_cache(maxsize=200_000)
def lemma_ru(word: str) -> str:
    """Normal form of one Russian word; non-Cyrillic tokens are returned unchanged."""
    if not word or not any("а" <= ch <= "я" for ch in word):
        return word
    parsed = _analyzer().parse(word)
    return str(parsed[0].normal_form).replace("ё", "е") if parsed else word


def strip_accents(text: str) -> str:
    """Remove diacritics (á→a, ñ→n), as buyers often type without them."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


# Suffixes that end in "s" but are not plurals (verb persons, plural participles), tried first.
_ES_S_SUFFIXES: tuple[str, ...] = (
    "amientos", "imientos", "aciones", "uciones", "ariamos", "eriamos", "iriamos",
    "aremos", "eremos", "iremos", "abamos", "iamos", "amos", "emos", "imos",
    "ados", "adas", "idos", "idas",
)  # fmt: skip
# Tried after a plural "s" is dropped; longest first; the stem must keep at least 3 letters.
_ES_SUFFIXES: tuple[str, ...] = (
    "amiento", "imiento", "acion", "ucion", "aria", "eria", "iria", "mente",
    "ando", "iendo", "yendo", "aban", "aron", "ieron", "io", "ado", "ada", "ido", "ida", "aba", "ian",
    "ar", "er", "ir", "an", "en", "a", "e", "o",
)  # fmt: skip


def _strip_one(word: str, suffixes: tuple[str, ...]) -> str | None:
    """Strip the first matching suffix (keeping a stem of 3+ letters), or None."""
    for suffix in suffixes:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return None


@lru_cache(maxsize=100_000)
def stem_es(word: str) -> str:
    """A light Spanish stemmer: strip accents, a plural "s", then one common verb/derivational suffix.

    >>> stem_es("cámaras"), stem_es("cámara"), stem_es("comprar"), stem_es("compramos")
    ('camar', 'camar', 'compr', 'compr')
    """
    plain = strip_accents(word)
    if not plain.isalpha() or len(plain) <= 3:
        return plain
    stripped = _strip_one(plain, _ES_S_SUFFIXES)
    if stripped is not None:
        return stripped
    if plain.endswith("s") and len(plain) > 4:
        plain = plain[:-1]
    stripped = _strip_one(plain, _ES_SUFFIXES)
    return plain if stripped is None else stripped


def lemmas(text: str, language: str = "ru") -> list[str]:
    """Lemmas (ru: pymorphy3 normal forms) or stems (es) of the normalised tokens.

    Latin-script words inside Russian text are kept as they are; digits are kept.
    """
    words = tokens(text)
    if language.lower().startswith("es"):
        return [stem_es(w) for w in words]
    return [lemma_ru(w) for w in words]
