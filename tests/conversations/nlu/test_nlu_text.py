from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from otklik.conversations.nlu.text import lemma_ru, lemmas, normalize, stem_es, strip_accents, tokens


def test_normalize_lowercases_and_folds_yo() -> None:
    assert normalize("ЁЛКА Всё") == "елка все"


def test_normalize_squeezes_letters_repeated_three_times_or_more() -> None:
    assert normalize("оооочень плохооо") == "очень плохо"
    assert normalize("холааа") == "хола"
    # Two equal letters are ordinary spelling and stay.
    assert normalize("касса") == "касса"


def test_normalize_strips_emoji_and_punctuation_keeps_digits() -> None:
    assert normalize("Привет!!! 😡👍 Заказ №123,  2шт...") == "привет заказ 123 2шт"
    assert normalize("e-mail: a_b@c.ru") == "e mail a b c ru"


def test_normalize_keeps_repeated_digits() -> None:
    assert normalize("1000000 руб") == "1000000 руб"


def test_normalize_empty_and_only_symbols() -> None:
    assert normalize("") == ""
    assert normalize("?!… 🙏") == ""


def test_tokens() -> None:
    assert tokens("Не работает, дозатор!") == ["не", "работает", "дозатор"]
    assert tokens("   ") == []


def test_russian_lemmas() -> None:
    assert lemmas("Пришла разбитая бутылка, верните деньги") == [
        "прийти",
        "разбитый",
        "бутылка",
        "вернуть",
        "деньга",
    ]
    assert lemma_ru("обожглась") == "обжечься"
    assert lemma_ru("ёжика") == "ежик"


def test_russian_lemmas_keep_latin_and_digits() -> None:
    assert lemmas("гель XL 50 мл") == ["гель", "xl", "50", "мл"]


def test_spanish_stemmer_folds_plural_and_verb_forms() -> None:
    assert stem_es("cámaras") == stem_es("cámara") == stem_es("camara")
    assert stem_es("cuotas") == stem_es("cuota")
    assert stem_es("comprar") == stem_es("compramos") == stem_es("compra")
    assert stem_es("unidades") == stem_es("unidad")
    assert stem_es("instalaciones") == stem_es("instalación")


def test_spanish_stemmer_leaves_short_words_and_numbers() -> None:
    assert stem_es("dvr") == "dvr"
    assert stem_es("mes") == "mes"
    assert stem_es("2tb") == "2tb"


def test_spanish_lemmas() -> None:
    assert lemmas("¿Tienen CÁMARAS Hikvision en cuotas?", "es") == ["tien", "camar", "hikvision", "en", "cuot"]


def test_strip_accents() -> None:
    assert strip_accents("días más año") == "dias mas ano"


@given(st.text(max_size=200))
def test_normalize_is_idempotent_and_clean(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == once.strip()
    assert "  " not in once
