"""Pure checks for reaching a person: phone numbers (E.164 with `phonenumbers`), e-mail addresses, SMS
segments (GSM-7 160/153 characters, otherwise UCS-2 70/67), masking for what is stored and shown."""

from __future__ import annotations

import re

import phonenumbers

from otklik.core.errors import InvalidInput

# GSM 03.38 default alphabet; the extension table's characters count twice
_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
MAX_TEXT = 2000  # what `reach` accepts at all; SMS is limited further by `sms_max_parts`


def e164(raw: str, region: str = "RU") -> str:
    """ "+7 (917) 123-45-67" or "89171234567" (region RU) → "+79171234567"; anything not a valid number refused."""
    text = (raw or "").strip()
    if not text or len(text) > 40:
        raise InvalidInput("phone: a phone number such as +7 917 123-45-67")
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        raise InvalidInput("phone: not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone: not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_address(raw: str) -> str:
    text = (raw or "").strip()
    if len(text) > 254 or not _EMAIL.match(text):
        raise InvalidInput("email: not an e-mail address")
    return text


def sms_parts(text: str) -> int:
    """How many SMS segments `text` takes (0 for an empty text)."""
    if not text:
        return 0
    if all(c in _GSM or c in _GSM_EXT for c in text):
        units = sum(2 if c in _GSM_EXT else 1 for c in text)
        return 1 if units <= 160 else -(-units // 153)
    units = len(text.encode("utf-16-le")) // 2  # UCS-2 with surrogate pairs as two units
    return 1 if units <= 70 else -(-units // 67)


def mask_phone(phone: str) -> str:
    digits = phone.lstrip("+")
    return "+" + digits[:1] + "*" * max(len(digits) - 5, 0) + digits[-4:]


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
