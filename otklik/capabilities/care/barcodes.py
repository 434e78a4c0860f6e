"""Barcodes from a label: decode a photo (zxing-cpp), read typed digits, check EAN-13/EAN-8/UPC checksums.

Pure functions apart from `decode_image`, which is CPU-bound: call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

MAX_IMAGE_PIXELS = 40_000_000  # a label photo is far smaller; refuse decompression bombs
_RETAIL_LENGTHS = (8, 12, 13, 14)  # EAN-8, UPC-A, EAN-13, GTIN-14
_DIGIT_RUN = re.compile(r"\d[\d\s\-]{6,20}\d")


def gtin_valid(code: str) -> bool:
    """The GS1 check digit of an EAN-8 / UPC-A / EAN-13 / GTIN-14 is right."""
    if not code.isdigit() or len(code) not in _RETAIL_LENGTHS:
        return False
    body, check = code[:-1], int(code[-1])
    # weights 3,1,3,1… from the rightmost digit of the body
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def ean13_valid(code: str) -> bool:
    return len(code) == 13 and gtin_valid(code)


@dataclass(frozen=True, slots=True)
class DigitsReading:
    """What the buyer typed: `valid` codes (checksum right), `invalid` digit groups that look like a
    barcode but fail the checksum, and whether there were any digits at all."""

    valid: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()

    @property
    def found_digits(self) -> bool:
        return bool(self.valid or self.invalid)


def read_digits(text: str, *, max_chars: int = 2000) -> DigitsReading:
    """Barcode candidates in typed text: runs of 8-14 digits (spaces and dashes inside are allowed)."""
    valid: list[str] = []
    invalid: list[str] = []
    for match in _DIGIT_RUN.finditer(text[:max_chars]):
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) not in _RETAIL_LENGTHS:
            if len(digits) >= 7:
                invalid.append(digits[:20])
            continue
        (valid if gtin_valid(digits) else invalid).append(digits)
    return DigitsReading(tuple(dict.fromkeys(valid)), tuple(dict.fromkeys(invalid)))


@dataclass(frozen=True, slots=True)
class ImageReading:
    """Barcodes found on a photo. `readable` is False when the bytes are not an image we can open."""

    codes: tuple[str, ...] = ()  # retail codes (EAN/UPC) with a valid checksum, in reading order
    other: tuple[str, ...] = field(default=())  # other symbols (Code 128, DataMatrix…), for the record
    readable: bool = True


def decode_image(data: bytes) -> ImageReading:
    """Every barcode on the photo; several codes on one label are all returned (blocking: use a thread)."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                return ImageReading(readable=False)
            image = opened.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return ImageReading(readable=False)
    codes: list[str] = []
    other: list[str] = []
    for result in zxingcpp.read_barcodes(image):
        text = (result.text or "").strip()
        digits = text if text.isdigit() else ""
        if digits and len(digits) == 12 and result.format == zxingcpp.BarcodeFormat.UPCA:
            digits = "0" + digits  # UPC-A is EAN-13 with a leading zero
        if digits and gtin_valid(digits):
            codes.append(digits)
        elif text:
            other.append(text[:64])
    return ImageReading(tuple(dict.fromkeys(codes)), tuple(dict.fromkeys(other)))
