"""Feature extraction for the intent classifier: slang/typo folding, lemma n-grams and character n-grams."""

from __future__ import annotations

import re

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from otklik.nlu.text import lemmas, normalize, strip_accents

__all__ = ["SLANG", "LemmaNgrams", "build_features", "char_text", "fold_slang"]

# Whole-token replacements applied before lemmatising: marketplace slang and frequent misspellings.
SLANG: dict[str, dict[str, str]] = {
    "ru": {
        "вб": "вайлдберриз", "wb": "вайлдберриз", "вайлдбериз": "вайлдберриз", "валдберис": "вайлдберриз",
        "вайлдберис": "вайлдберриз", "валберис": "вайлдберриз", "wildberries": "вайлдберриз",
        "кешбек": "кэшбэк", "кэшбек": "кэшбэк", "кешбэк": "кэшбэк", "кешбэка": "кэшбэка", "кешбека": "кэшбэка",
        "кэшбека": "кэшбэка", "кешбак": "кэшбэк", "кэшбак": "кэшбэк", "кэш": "кэшбэк", "кеш": "кэшбэк",
        "cashback": "кэшбэк",
        "спс": "спасибо", "пасиб": "спасибо", "пасибо": "спасибо", "спасиб": "спасибо", "сенкс": "спасибо",
        "спасибки": "спасибо", "спасибочки": "спасибо", "спасибо)": "спасибо", "thanks": "спасибо",
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
        "info": "informacion", "precioo": "precio", "cuánto": "cuanto",
        "cam": "camara", "cams": "camaras", "camaritas": "camaras", "hikvisión": "hikvision",
        "hik": "hikvision", "dvrs": "dvr", "nvrs": "nvr", "holis": "hola", "ola": "hola",
        "bs": "buenas", "bnas": "buenas", "gracia": "gracias", "grax": "gracias", "graciass": "gracias",
    },
}  # fmt: skip

_DIGITS = re.compile(r"\d+")


def _lang(language: str) -> str:
    return "es" if language.lower().startswith("es") else "ru"


def fold_slang(text: str, language: str) -> str:
    """Normalise the text, replace slang tokens by their standard form; digit runs become one shape token."""
    table = SLANG[_lang(language)]
    words = normalize(text).split()
    folded = [table.get(w, w) for w in words]
    if _lang(language) == "es":
        folded = [strip_accents(w) for w in folded]
    return _DIGITS.sub(lambda m: "0" if len(m.group()) <= 4 else "00000", " ".join(folded))


def char_text(text: str, language: str) -> str:
    """The text used for character n-grams: folded slang, digits reduced to shapes."""
    return fold_slang(text, language)


class LemmaNgrams:
    """A picklable analyzer: lemma unigrams and bigrams of the folded text."""

    def __init__(self, language: str) -> None:
        self.language = _lang(language)

    def __call__(self, text: str) -> list[str]:
        """Return lemma 1-grams and 2-grams for one message."""
        words = lemmas(fold_slang(text, self.language), self.language)
        return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def build_features(language: str) -> FeatureUnion:
    """Lemma word n-grams (1-2) + char_wb n-grams (2-5), both TF-IDF with sublinear term frequency."""
    lang = _lang(language)
    words = TfidfVectorizer(analyzer=LemmaNgrams(lang), sublinear_tf=True, min_df=1)
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
