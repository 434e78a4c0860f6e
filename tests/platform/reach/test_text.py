"""Phone numbers, e-mail addresses, SMS segments and masks: the pure checks `reach` relies on."""

from __future__ import annotations

import pytest

from otklik.core.errors import InvalidInput
from otklik.platform.reach.text import e164, email_address, mask_email, mask_phone, sms_parts


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+7 (917) 123-45-67", "RU", "+79171234567"),
        ("8 917 123 45 67", "RU", "+79171234567"),
        ("9171234567", "RU", "+79171234567"),
        ("+34 612 34 56 78", "RU", "+34612345678"),
        ("011 4321-1234", "AR", "+541143211234"),
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str, expected: str) -> None:
    assert e164(raw, region) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "abc", "+7 917", "1" * 41, "+7 917 123-45-67; DROP", "+99912345678", "\x00"]
)
def test_not_phone_numbers_are_refused_clearly(raw: str) -> None:
    with pytest.raises(InvalidInput, match="phone"):
        e164(raw)


def test_email_addresses() -> None:
    assert email_address(" ana@salon.example ") == "ana@salon.example"
    for bad in [
        "",
        "ana",
        "ana@",
        "@x.example",
        "ana@x",
        "a\r\nBcc: all@x.example@x.example",
        "a" * 250 + "@x.example",
    ]:
        with pytest.raises(InvalidInput, match="email"):
            email_address(bad)


def test_sms_segments_gsm_and_ucs2() -> None:
    assert sms_parts("") == 0
    assert sms_parts("a" * 160) == 1 and sms_parts("a" * 161) == 2 and sms_parts("a" * 306) == 2
    assert sms_parts("a" * 307) == 3
    assert sms_parts("€" * 80) == 1 and sms_parts("€" * 81) == 2  # the extension table counts twice
    assert sms_parts("я" * 70) == 1 and sms_parts("я" * 71) == 2 and sms_parts("я" * 134) == 2
    assert sms_parts("я" * 135) == 3
    assert sms_parts("a" * 69 + "😀") == 2  # an emoji outside the BMP is two UCS-2 units: 71 > 70


def test_masks_keep_only_what_identifies_the_route() -> None:
    assert mask_phone("+79171234567") == "+7******4567"
    assert mask_email("gulnara@mail.example") == "g***@mail.example"
