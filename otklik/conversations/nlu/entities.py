"""Entity extraction: barcodes, WB article numbers, order ids, phones, money, quantities, dates, e-mails.

Extractors run in a fixed priority order; a span claimed by an earlier extractor is not reused:
e-mail → WB URL nm_id → keyword nm_id → order id → phone → money → date/datetime → quantity → barcode.

Digit-run rules (documented in docs/nlu.md):
- 13 digits: EAN-13 → `barcode` if the checksum holds, otherwise `barcode_invalid`.
- 8 digits: `barcode` only with a valid EAN-8 checksum (a random 8-digit number passes 1 time in 10).
- 10-20 digits that are none of the above, not a phone valid in the pack's region and not a
  Luhn-valid 16-digit bank card: a Code-128 `barcode`. Card numbers are never extracted.
- Numbers after "артикул/арт/nm" are `nm_id`, after "заказ/order/pedido/orden/№" are `order_id`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime

import phonenumbers

from otklik.conversations.nlu.dates import find_dates
from otklik.conversations.nlu.spans import Claimed, Found
from otklik.core.redact import luhn_ok
from otklik.core.understanding import Entity

__all__ = ["ean_checksum_ok", "extract_entities", "luhn_ok"]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
_WB_URL = re.compile(
    r"(?:https?://)?(?:www\.)?(?:wildberries\.\w+|wb\.ru)/catalog/(\d{5,12})(?:/detail\.aspx)?\S*",
    re.IGNORECASE,
)
_NM_ID = re.compile(
    r"(?<![\w])(?:артикул\w*|арт|nm\s?id|nm|номенклатур\w*|sku)\s*(?:[.:№#=-]\s*)?(?:wb\s*)?(\d{6,10})(?!\d)",
    re.IGNORECASE,
)
_ORDER_ID = re.compile(
    r"(?<![\w])(?:заказ(?:а|е|у|ом|ы|ов)?|order|pedido|orden|compra)"
    r"(?:\s*(?:номер|н|number|n[°º]?|nro|num|número|numero|no)\.?)?\s*[:№#-]?\s*"
    r"(?P<id>[a-z]{0,4}-?\d[\d-]{2,24}\d|\d{3})(?![\w.,]?\d)(?!\s*(?:мл|ml|шт|г|гр|кг|руб|р\b|₽|%|unidades|u\b))"
    r"|(?<![\w])(?:№|n[°º]|#)\s*(?P<id2>\d{3,20})(?!\d)",
    re.IGNORECASE,
)
_DIGIT_RUN = re.compile(r"(?<![\w.,/:+-])(\d \d{6} \d{6}|\d{8,20})(?![\w.,/:]?\d)")
_QUANTITY = re.compile(
    r"(?<![\w.,])(?P<n>\d{1,4})\s*(?:шт\.?|штук[аи]?|штуки|pcs|unidades|unidad|u\.|piezas|pzas?|уп\.?|упаковк\w*)(?![\w])"
    r"|(?<![\w-])[xх×]\s?(?P<m>\d{1,4})(?![\w.,])",
    re.IGNORECASE,
)


def ean_checksum_ok(digits: str) -> bool:
    """GS1 check digit (EAN-8, UPC-A, EAN-13, ITF-14): weights 3,1 from the right before the check digit."""
    if not digits.isdigit() or len(digits) < 8:
        return False
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _emails(text: str, claimed: Claimed) -> Iterator[Found]:
    for m in _EMAIL.finditer(text):
        yield Found("email", m.group().lower(), m.start(), m.end())


def _nm_ids(text: str, claimed: Claimed) -> Iterator[Found]:
    for m in _WB_URL.finditer(text):
        yield Found("nm_id", m.group(1), m.start(), m.end())
    for m in _NM_ID.finditer(text):
        yield Found("nm_id", m.group(1), m.start(), m.end())


def _order_ids(text: str, claimed: Claimed) -> Iterator[Found]:
    for m in _ORDER_ID.finditer(text):
        group = "id" if m.group("id") else "id2"
        value = m.group(group).upper()
        if sum(ch.isdigit() for ch in value) >= 3:
            yield Found("order_id", value, m.start(), m.end(), m.start(group))


def _phones(region: str) -> Callable[[str, Claimed], Iterator[Found]]:
    def find(text: str, claimed: Claimed) -> Iterator[Found]:
        matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
        for m in matcher:
            if _touches_digit(text, m.start, m.end):
                continue
            e164 = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
            yield Found("phone", e164, m.start, m.end)

    return find


def _touches_digit(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return before.isdigit() or after.isdigit()


def _quantities(text: str, claimed: Claimed) -> Iterator[Found]:
    for m in _QUANTITY.finditer(text):
        value = m.group("n") or m.group("m")
        if int(value) > 0:
            yield Found("quantity", str(int(value)), m.start(), m.end())


def _barcodes(region: str) -> Callable[[str, Claimed], Iterator[Found]]:
    def find(text: str, claimed: Claimed) -> Iterator[Found]:
        for m in _DIGIT_RUN.finditer(text):
            digits = m.group().replace(" ", "")
            kind = _barcode_kind(digits, region, spaced=" " in m.group())
            if kind:
                yield Found(kind, digits, m.start(), m.end())

    return find


def _barcode_kind(digits: str, region: str, spaced: bool) -> str | None:
    if len(digits) == 13:
        return "barcode" if ean_checksum_ok(digits) else "barcode_invalid"
    if len(digits) == 8:
        return "barcode" if ean_checksum_ok(digits) else None
    if spaced or not 10 <= len(digits) <= 20:
        return None
    if len(digits) == 16 and luhn_ok(digits):
        return None
    return None if _is_phone(digits, region) else "barcode"


def _is_phone(digits: str, region: str) -> bool:
    for candidate in (digits, "+" + digits):
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def extract_entities(
    text: str,
    language: str | None = "ru",
    now: datetime | None = None,
    region: str | None = None,
) -> list[Entity]:
    """Find entities in `text`, ordered by position.

    `region` is the default phone region ("RU", "AR"); it defaults from the language (es → AR).
    Relative dates ("завтра", "el viernes") are resolved against `now` (default: the current local time).
    """
    from otklik.conversations.nlu.money import money_finder

    lang = "es" if (language or "ru").lower().startswith("es") else "ru"
    reg = (region or ("AR" if lang == "es" else "RU")).upper()
    moment = now or datetime.now()
    claimed = Claimed()
    finders: list[Callable[[str, Claimed], Iterator[Found]]] = [
        _emails,
        _nm_ids,
        _order_ids,
        _phones(reg),
        money_finder(lang),
        lambda t, c: find_dates(t, lang, moment),
        _quantities,
        _barcodes(reg),
    ]
    for finder in finders:
        for found in finder(text, claimed):
            claimed.add(found)
    return claimed.entities(text)
