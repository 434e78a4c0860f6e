"""Pure rules of cashback claims: stages, payout details, masking. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers


class Stage(StrEnum):
    """`CashbackClaim.state`. The first three wait for the buyer; the rest are decisions."""

    TERMS = "terms"
    PRODUCT = "product"
    SCREENSHOT = "screenshot"
    MODERATION = "moderation"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"
    CANCELLED = "cancelled"


OPEN_STAGES = frozenset({Stage.TERMS, Stage.PRODUCT, Stage.SCREENSHOT})
DECIDED = frozenset({Stage.APPROVED, Stage.PAID})
#: Claims that still count against "one reward per buyer per product".
ALIVE = frozenset({Stage.SCREENSHOT, Stage.MODERATION, Stage.APPROVED, Stage.PAID})


class Condition(StrEnum):
    ANY = "any"  # any honest review (the default)
    PHOTO = "photo"  # a review with a photo
    RATING = "rating"  # rating >= N (see docs: marketplace rules)


class RejectReason(StrEnum):
    """Reason templates a moderator picks; the buyer gets the matching text."""

    NOT_FOUND = "not_found"  # no such review on WB
    NOT_OURS = "not_ours"  # another seller's product
    DUPLICATE = "duplicate"  # the same screenshot/review already claimed
    ALREADY_REWARDED = "already_rewarded"  # this WB review was rewarded already
    CONDITION = "condition"  # the review does not meet the campaign's condition
    UNREADABLE = "unreadable"  # the screenshot cannot be read
    OTHER = "other"


BANKS = (
    "Сбербанк",
    "Т-Банк",
    "Альфа-Банк",
    "ВТБ",
    "Газпромбанк",
    "Райффайзенбанк",
    "Россельхозбанк",
    "Совкомбанк",
    "Открытие",
    "Почта Банк",
    "МТС Банк",
    "Озон Банк",
    "Ozon Банк",
    "Юмани",
    "Промсвязьбанк",
    "Росбанк",
    "Уралсиб",
)
_BANK_ALIASES = {
    "сбер": "Сбербанк",
    "сбербанк": "Сбербанк",
    "тинькофф": "Т-Банк",
    "тинькоф": "Т-Банк",
    "т-банк": "Т-Банк",
    "тбанк": "Т-Банк",
    "альфа": "Альфа-Банк",
    "альфабанк": "Альфа-Банк",
    "альфа-банк": "Альфа-Банк",
    "втб": "ВТБ",
    "газпромбанк": "Газпромбанк",
    "райффайзен": "Райффайзенбанк",
    "райффайзенбанк": "Райффайзенбанк",
    "совкомбанк": "Совкомбанк",
    "псб": "Промсвязьбанк",
    "промсвязьбанк": "Промсвязьбанк",
    "озон": "Озон Банк",
    "ozon": "Озон Банк",
    "юмани": "Юмани",
    "почта банк": "Почта Банк",
    "мтс": "МТС Банк",
    "росбанк": "Росбанк",
}
_DIGITS = re.compile(r"\d")
_CARD = re.compile(r"(?<!\d)(?:\d[ \-]?){15,18}\d(?!\d)")
_PHONE = re.compile(r"(?:\+7|8|7)?[\s\-()]*\d{3}[\s\-()]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}")


def luhn_ok(number: str) -> bool:
    """The Luhn checksum of a card number (digits only, 16–19 of them)."""
    if not number.isdigit() or not 16 <= len(number) <= 19:
        return False
    total = 0
    for i, char in enumerate(reversed(number)):
        digit = int(char)
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def russian_mobile(raw: str) -> str | None:
    """A Russian mobile number in E.164 (+79…), or None."""
    try:
        number = phonenumbers.parse(raw, "RU")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 7 or not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if e164.startswith("+79") else None


def normalise_bank(text: str) -> str | None:
    """A bank name from the buyer's words, or None when no bank is named."""
    lowered = " ".join(text.lower().replace("ё", "е").split())
    for alias, name in sorted(_BANK_ALIASES.items(), key=lambda kv: -len(kv[0])):
        if alias in lowered:
            return name
    words = re.sub(r"[^\w\- ]", " ", text).split()
    named = [w for w in words if "банк" in w.lower()]
    return " ".join(named)[:60] if named else None


@dataclass(frozen=True, slots=True)
class PayoutDetails:
    """What the bank needs: an SBP phone and a bank, or a card number. Never logged (see `__repr__`)."""

    method: str  # sbp | card
    phone: str = ""
    bank: str = ""
    card: str = ""

    def masked(self) -> str:
        if self.method == "card":
            return f"карта •••• {self.card[-4:]}"
        return f"СБП {self.phone[:2]} ••• •••-{self.phone[-4:-2]}-{self.phone[-2:]}, {self.bank}"

    def as_dict(self) -> dict[str, str]:
        return {"method": self.method, "phone": self.phone, "bank": self.bank, "card": self.card}

    def __repr__(self) -> str:
        return f"PayoutDetails({self.masked()!r})"

    __str__ = __repr__


class PayoutProblem(StrEnum):
    """Why typed payout details were refused (each has a clear text for the buyer)."""

    EMPTY = "empty"
    CARD_LUHN = "card_luhn"
    PHONE_INVALID = "phone_invalid"
    BANK_MISSING = "bank_missing"
    UNRECOGNISED = "unrecognised"


def parse_payout(text: str) -> PayoutDetails | PayoutProblem:
    """SBP: a Russian mobile number and a bank name ("+7 916 123-45-67 Сбербанк"); or a card number
    (16–19 digits, Luhn-checked). Returns the details or the problem."""
    text = (text or "").strip()[:300]
    if not text:
        return PayoutProblem.EMPTY
    card = _CARD.search(text)
    if card:
        digits = "".join(_DIGITS.findall(card.group(0)))
        if len(digits) >= 16:
            return PayoutDetails("card", card=digits) if luhn_ok(digits) else PayoutProblem.CARD_LUHN
    phone_match = _PHONE.search(text)
    if phone_match:
        phone = russian_mobile(phone_match.group(0))
        if phone is None:
            return PayoutProblem.PHONE_INVALID
        rest = (text[: phone_match.start()] + " " + text[phone_match.end() :]).strip()
        bank = normalise_bank(rest)
        if bank is None:
            return PayoutProblem.BANK_MISSING
        return PayoutDetails("sbp", phone=phone, bank=bank)
    if len(_DIGITS.findall(text)) >= 10:
        return PayoutProblem.PHONE_INVALID
    return PayoutProblem.UNRECOGNISED


def mask_digits(text: str) -> str:
    """Hide every run of 6+ digits except its last 4 (for anything that might echo payout details)."""

    def hide(match: re.Match[str]) -> str:
        digits = match.group(0)
        return "•" * (len(digits) - 4) + digits[-4:]

    return re.sub(r"\d{6,}", hide, re.sub(r"(?<=\d)[ \-()](?=\d)", "", text))


def rubles(kopecks: int | None) -> str:
    """12345 -> '123,45 ₽'; whole roubles without decimals."""
    if kopecks is None:
        return "—"
    whole, rest = divmod(int(kopecks), 100)
    text = f"{whole:,}".replace(",", "\u00a0")
    return f"{text},{rest:02d} ₽" if rest else f"{text} ₽"


def parse_rubles(text: str) -> int | None:
    """'150', '150,50', '1 500 ₽' -> kopecks; None when invalid or not positive."""
    cleaned = re.sub(r"[\s\u00a0₽рубРУБ.]+$", "", (text or "").strip()).replace(" ", "").replace("\u00a0", "")
    match = re.fullmatch(r"(\d{1,9})(?:[.,](\d{1,2}))?", cleaned)
    if not match:
        return None
    kopecks = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    return kopecks if kopecks > 0 else None


_NM_LINK = re.compile(r"wildberries\.[a-z]{2,3}/catalog/(\d{5,12})", re.I)
_NM_BARE = re.compile(r"^\D{0,12}(\d{5,12})\D{0,3}$")


def nm_id_in(text: str) -> int | None:
    """A WB article (nmId) typed by the buyer: digits, 'арт. 123456789' or a product link."""
    text = (text or "").strip()[:500]
    link = _NM_LINK.search(text)
    if link:
        return int(link.group(1))
    bare = _NM_BARE.match(text)
    return int(bare.group(1)) if bare else None
