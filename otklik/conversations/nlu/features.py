"""Feature extraction for the intent classifier: slang/typo folding, lemma n-grams and character n-grams."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from otklik.conversations.nlu.text import lemmas, normalize, strip_accents

__all__ = ["EMOJI", "SLANG", "Concepts", "LemmaNgrams", "build_features", "char_text", "fold_slang"]

# Whole-token replacements applied before lemmatising: marketplace slang and frequent misspellings.
SLANG: dict[str, dict[str, str]] = {
    "ru": {
        "вб": "вайлдберриз", "wb": "вайлдберриз", "вайлдбериз": "вайлдберриз", "валдберис": "вайлдберриз",
        "вайлдберис": "вайлдберриз", "валберис": "вайлдберриз", "wildberries": "вайлдберриз",
        "кешбек": "кэшбэк", "кэшбек": "кэшбэк", "кешбэк": "кэшбэк", "кешбэка": "кэшбэка", "кешбека": "кэшбэка",
        "кэшбека": "кэшбэка", "кешбак": "кэшбэк", "кэшбак": "кэшбэк", "кэш": "кэшбэк", "кеш": "кэшбэк",
        "cashback": "кэшбэк",
        "спс": "спасибо", "пасиб": "спасибо", "пасибо": "спасибо", "спасиб": "спасибо", "сенкс": "спасибо",
        "спасибки": "спасибо", "спасибочки": "спасибо", "thanks": "спасибо",
        "пж": "пожалуйста", "пжл": "пожалуйста", "пжлст": "пожалуйста", "плз": "пожалуйста",
        "щас": "сейчас", "ща": "сейчас", "че": "что", "чо": "что", "шо": "что", "чтоли": "что ли",
        "скрин": "скриншот", "скрины": "скриншоты", "скриншотик": "скриншот",
        "опер": "оператор", "манагер": "менеджер",
        "штрих": "штрихкод", "баркод": "штрихкод", "шк": "штрихкод",
        "здрасте": "здравствуйте", "здрасьте": "здравствуйте", "здрасти": "здравствуйте",
        "здраствуйте": "здравствуйте", "здраствуй": "здравствуй",
        "прив": "привет", "приветик": "привет", "приветики": "привет",
    },
    "es": {
        "q": "que", "k": "que", "xq": "porque", "pq": "porque", "porq": "porque", "tmb": "tambien",
        "tb": "tambien", "x": "por", "cel": "celular", "wsp": "whatsapp", "wpp": "whatsapp",
        "info": "informacion", "precioo": "precio",
        "cam": "camara", "cams": "camaras", "camaritas": "camaras", "hikvisión": "hikvision",
        "hik": "hikvision", "dvrs": "dvr", "nvrs": "nvr", "holis": "hola", "ola": "hola",
        "bs": "buenas", "bnas": "buenas", "gracia": "gracias", "grax": "gracias", "graciass": "gracias",
    },
}  # fmt: skip

# Emoji that carry the whole message ("🙏" alone is thanks); everything else is dropped by normalize().
EMOJI: dict[str, dict[str, str]] = {
    "ru": {"🙏": "спасибо", "🤝": "спасибо", "💐": "спасибо", "👋": "привет", "🖐": "привет"},
    "es": {"🙏": "gracias", "🤝": "gracias", "💐": "gracias", "👋": "hola", "🖐": "hola"},
}
_DIGITS = re.compile(r"\d+")


def _lang(language: str) -> str:
    return "es" if language.lower().startswith("es") else "ru"


def fold_slang(text: str, language: str) -> str:
    """Normalise the text, replace slang tokens by their standard form; digit runs become one shape token."""
    table = SLANG[_lang(language)]
    for emoji, word in EMOJI[_lang(language)].items():
        text = text.replace(emoji, f" {word} ")
    words = normalize(text).split()
    folded = [table.get(w, w) for w in words]
    if _lang(language) == "es":
        folded = [strip_accents(w) for w in folded]
    return _DIGITS.sub(lambda m: "0" if len(m.group()) <= 4 else "00000", " ".join(folded))


def char_text(text: str, language: str) -> str:
    """The text used for character n-grams: folded slang, digits reduced to shapes."""
    return fold_slang(text, language)


class Concepts:
    """Synonym groups from the pack: a token matching a group adds the shared feature `§<group>`.

    A term is a word compared by lemma (ru) or stem (es), or `prefix*` compared with the normalised token.
    """

    def __init__(self, groups: Mapping[str, Iterable[str]] | None, language: str) -> None:
        self.language = _lang(language)
        self.exact: dict[str, set[str]] = {}
        self.prefixes: list[tuple[str, str]] = []
        for name, terms in (groups or {}).items():
            for term in terms:
                self._add(name, term)

    def _add(self, name: str, term: str) -> None:
        if term.endswith("*"):
            prefix = fold_slang(term[:-1], self.language)
            if prefix:
                self.prefixes.append((prefix, name))
            return
        for form in lemmas(fold_slang(term, self.language), self.language):
            self.exact.setdefault(form, set()).add(name)

    def tags(self, token: str, lemma: str) -> set[str]:
        """Names of the groups that one token belongs to."""
        found = set(self.exact.get(lemma, ()))
        found.update(name for prefix, name in self.prefixes if token.startswith(prefix))
        return found


class LemmaNgrams:
    """A picklable analyzer: lemma unigrams and bigrams of the folded text, plus concept features."""

    def __init__(self, language: str, concepts: Mapping[str, Iterable[str]] | None = None) -> None:
        self.language = _lang(language)
        self.concepts = Concepts(concepts, self.language)

    def __call__(self, text: str) -> list[str]:
        """Return lemma 1-grams and 2-grams for one message, then `§concept` tokens."""
        folded = fold_slang(text, self.language)
        words = lemmas(folded, self.language)
        grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        tags: set[str] = set()
        for token, lemma in zip(folded.split(), words, strict=False):
            tags.update(self.concepts.tags(token, lemma))
        return grams + sorted(f"§{tag}" for tag in tags)


def build_features(language: str, concepts: Mapping[str, Iterable[str]] | None = None) -> FeatureUnion:
    """Lemma word n-grams (1-2) + char_wb n-grams (2-5), both TF-IDF with sublinear term frequency."""
    lang = _lang(language)
    words = TfidfVectorizer(analyzer=LemmaNgrams(lang, concepts), sublinear_tf=True, min_df=1)
    chars = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 5),
        sublinear_tf=True,
        min_df=1,
        preprocessor=_CharPreprocessor(lang),
        lowercase=False,
    )
    return FeatureUnion([("lemmas", words), ("chars", chars)])


class _CharPreprocessor:
    """A picklable preprocessor for the character vectorizer."""

    def __init__(self, language: str) -> None:
        self.language = language

    def __call__(self, text: str) -> str:
        return char_text(text, self.language)
