from __future__ import annotations

import pytest

from otklik.conversations.nlu.classifier import OfflineClassifier
from otklik.conversations.nlu.packdata import load_pack, pack_dir
from otklik.conversations.nlu.redflags import RedFlagMatcher


@pytest.fixture(scope="module")
def ru() -> RedFlagMatcher:
    return RedFlagMatcher(load_pack(pack_dir("care-ru")).red_flags, "ru")


@pytest.fixture(scope="module")
def es() -> RedFlagMatcher:
    return RedFlagMatcher(load_pack(pack_dir("sales-es")).red_flags, "es")


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("у меня ожог после геля", "ожог"),
        ("Ожоги по всему телу!!", "ожог"),
        ("обожглась вашим средством", "обжечься"),
        ("пришлось вызвать скорую", "скорую*"),
        ("лежу в больнице", "больница"),
        ("не могла нормально дышать", "не мочь дышать"),
        ("отёк горла начался", "отек горла"),
        ("горло сильно отекло", "горло отекло"),
        ("подам на вас в суд", "суд"),
        ("напишу жалобу в Роспотребнадзор", "роспотребнадзор*"),
        ("вызову полицию", "полиция"),
        ("вы мошенники", "мошенник"),
        ("появились волдыри", "волдырь"),
    ],
)
def test_russian_red_flags(ru: RedFlagMatcher, text: str, term: str) -> None:
    assert ru.find(text) == term


@pytest.mark.parametrize(
    "text",
    [
        "жжет немного после геля",
        "ответьте скорее пожалуйста",
        "кровать сломалась",
        "ищу другой цвет",
        "дышит ли ткань",
        "",
    ],
)
def test_russian_ordinary_messages_are_not_flagged(ru: RedFlagMatcher, text: str) -> None:
    assert ru.find(text) is None


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("me quemé la mano con la fuente", "quemar"),
        ("tengo una QUEMADURA", "quemadura"),
        ("voy a hacer la denuncia", "denuncia"),
        ("son unos estafadores", "estafador"),
        ("llamo a la policia", "policía"),
        ("me quejo en Defensa del Consumidor", "defensa del consumidor"),
        ("te mando carta documento", "carta documento"),
        ("mi abogada se comunica", "abogado"),
        ("se prendió fuego el dvr", "prender fuego"),
    ],
)
def test_spanish_red_flags(es: RedFlagMatcher, text: str, term: str) -> None:
    assert es.find(text) == term


@pytest.mark.parametrize("text", ["precio de la cámara", "defensa perimetral", "quiero una carta de colores"])
def test_spanish_ordinary_messages_are_not_flagged(es: RedFlagMatcher, text: str) -> None:
    assert es.find(text) is None


def test_multi_word_terms_allow_two_words_between() -> None:
    matcher = RedFlagMatcher(["не мочь дышать"], "ru")
    assert matcher.find("не могу вообще почти дышать") == "не мочь дышать"
    assert matcher.find("не могу найти где написано как дышать") is None


def test_the_classifier_reports_the_red_flag(care: OfflineClassifier, sales: OfflineClassifier) -> None:
    result = care.understand("после геля ожог, ездили в больницу")
    assert result.red_flag == "ожог"
    assert result.intent == "side_effect"
    assert sales.understand("me quemé con la fuente").red_flag == "quemar"
    assert care.understand("как наносить гель?").red_flag is None
