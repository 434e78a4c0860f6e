from __future__ import annotations

import pytest

from otklik.conversations.nlu.entities import ean_checksum_ok, extract_entities, luhn_ok
from tests.conversations.nlu.conftest import NOW


def kinds(text: str, language: str = "ru", **kw: object) -> list[tuple[str, str]]:
    return [(e.kind, e.value) for e in extract_entities(text, language, now=NOW, **kw)]  # type: ignore[arg-type]


# --- barcodes -------------------------------------------------------------------------------------


def test_ean13_valid_and_span() -> None:
    [entity] = extract_entities("штрихкод на коробке 4006381333931, а в карточке другой", now=NOW)
    assert (entity.kind, entity.value, entity.text) == ("barcode", "4006381333931", "4006381333931")
    assert entity.start == 20 and entity.end == 33


def test_ean13_with_bad_checksum_is_marked_invalid() -> None:
    assert kinds("штрихкод 4006381333932") == [("barcode_invalid", "4006381333932")]


def test_ean13_printed_with_spaces() -> None:
    assert kinds("код 4 006381 333931") == [("barcode", "4006381333931")]


def test_ean8_needs_a_valid_checksum() -> None:
    assert kinds("ean 96385074") == [("barcode", "96385074")]
    assert kinds("ean 96385075") == []


def test_code128_long_digit_string() -> None:
    assert kinds("на этикетке 123456789012345") == [("barcode", "123456789012345")]
    assert kinds("12345678901234567890") == [("barcode", "12345678901234567890")]


def test_twelve_digits_are_not_an_ean13() -> None:
    # Not 13 digits: never barcode_invalid; a 12-digit code is taken as Code-128.
    assert kinds("123456789012") == [("barcode", "123456789012")]


def test_a_phone_is_not_a_barcode() -> None:
    assert kinds("89161234567") == [("phone", "+79161234567")]
    assert kinds("9161234567") == [("phone", "+79161234567")]
    assert kinds("+7 916 123-45-67") == [("phone", "+79161234567")]


def test_a_bank_card_is_neither_barcode_nor_phone() -> None:
    card = "4111111111111111"  # the classic Luhn-valid test Visa
    assert luhn_ok(card)
    assert kinds(f"карта {card}") == []


def test_digits_longer_than_20_or_inside_words_are_ignored() -> None:
    assert kinds("123456789012345678901") == []
    assert kinds("DS-2CD1043G0-I") == []


def test_checksum_helpers() -> None:
    assert ean_checksum_ok("4006381333931")
    assert ean_checksum_ok("96385074")
    assert not ean_checksum_ok("4006381333930")
    assert not ean_checksum_ok("1234")
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


# --- WB article numbers and orders -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "артикул 12345678",
        "Артикул: 12345678 пришел не тот",
        "арт. 12345678",
        "nm 12345678",
        "номенклатура 12345678",
        "https://www.wildberries.ru/catalog/12345678/detail.aspx?targetUrl=GP",
        "вот ссылка wildberries.ru/catalog/12345678/detail.aspx",
        "wb.ru/catalog/12345678",
    ],
)
def test_nm_id(text: str) -> None:
    assert kinds(text) == [("nm_id", "12345678")]


def test_nm_id_is_not_taken_from_short_or_long_numbers() -> None:
    assert kinds("артикул 12345") == []
    assert ("nm_id", "12345678901") not in kinds("артикул 12345678901")


@pytest.mark.parametrize(
    ("text", "language", "value"),
    [
        ("заказ №123456789 пришел не тот", "ru", "123456789"),
        ("номер заказа 1234567", "ru", "1234567"),
        ("по заказу 55512 ничего", "ru", "55512"),
        ("№ 98765", "ru", "98765"),
        ("pedido número 3321", "es", "3321"),
        ("la orden 1234 no llegó", "es", "1234"),
        ("order #A-20345", "es", "A-20345"),
        ("pedido nro. 4521", "es", "4521"),
    ],
)
def test_order_id(text: str, language: str, value: str) -> None:
    assert ("order_id", value) in kinds(text, language)


def test_order_id_span_excludes_the_keyword() -> None:
    [entity] = extract_entities("заказ №123456789", now=NOW)
    assert entity.text == "123456789"


def test_volume_or_count_after_order_word_is_not_an_order_id() -> None:
    assert kinds("заказывала 200 мл") == []
    assert kinds("заказ 200 мл") == []
    assert kinds("pedido de 3 cámaras", "es") == []


# --- phones -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("+54 9 11 1234-5678", "+5491112345678"),
        ("mi cel 011 15 1234-5678", "+5491112345678"),
        ("011 15-1234-5678", "+5491112345678"),
        ("fijo 11 1234-5678", "+541112345678"),
    ],
)
def test_argentine_phones(text: str, value: str) -> None:
    assert kinds(text, "es") == [("phone", value)]


def test_russian_phone_in_spanish_pack_needs_a_plus() -> None:
    assert kinds("+7 916 123 45 67", "es") == [("phone", "+79161234567")]


def test_region_can_be_given_explicitly() -> None:
    assert kinds("8 (916) 123-45-67", "es", region="RU") == [("phone", "+79161234567")]


# --- money and quantity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "value"),
    [
        ("верните 1500 руб", "ru", "1500.00 RUB"),
        ("за отзыв 300р", "ru", "300.00 RUB"),
        ("1 500 ₽", "ru", "1500.00 RUB"),
        ("цена 1499,90 рублей", "ru", "1499.90 RUB"),
        ("5 тыс руб", "ru", "5000.00 RUB"),
        ("стоит $20", "ru", "20.00 USD"),
        ("$ 25.000", "es", "25000.00 ARS"),
        ("precio $1.500,50", "es", "1500.50 ARS"),
        ("500 mil pesos", "es", "500000.00 ARS"),
        ("u$s 120", "es", "120.00 USD"),
        ("120 dólares", "es", "120.00 USD"),
        ("USD 99.99", "es", "99.99 USD"),
    ],
)
def test_money(text: str, language: str, value: str) -> None:
    assert kinds(text, language) == [("money", value)]


def test_money_needs_a_currency() -> None:
    assert kinds("в 3 раза дороже") == []
    assert kinds("100% кэшбэк") == []


@pytest.mark.parametrize(
    ("text", "language", "value"),
    [
        ("2 шт", "ru", "2"),
        ("пришло 3штуки", "ru", "3"),
        ("3 unidades", "es", "3"),
        ("x2", "ru", "2"),
        ("х4", "ru", "4"),
    ],
)
def test_quantity(text: str, language: str, value: str) -> None:
    assert kinds(text, language) == [("quantity", value)]


def test_model_names_are_not_quantities() -> None:
    assert kinds("DS-x2000") == []


# --- e-mail and combinations ------------------------------------------------------------------------------


def test_email() -> None:
    assert kinds("почта Test.User+wb@Mail.ru, пишите") == [("email", "test.user+wb@mail.ru")]


def test_several_entities_in_order_without_overlaps() -> None:
    text = "Заказ №55512, штрихкод 4006381333931, тел +7 916 123-45-67, верните 1500 руб завтра в 15:00"
    found = extract_entities(text, "ru", now=NOW)
    assert [e.kind for e in found] == ["order_id", "barcode", "phone", "money", "datetime"]
    assert all(a.end <= b.start for a, b in zip(found, found[1:]))
    assert all(text[e.start : e.end] == e.text for e in found)


def test_empty_text() -> None:
    assert extract_entities("", "ru", now=NOW) == []
