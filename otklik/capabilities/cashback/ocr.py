"""OCR of review screenshots with Tesseract (Russian + English), when the binary is installed.

What we read: the text (for the WB match), dates (12.03.2025, 12 марта 2025, "сегодня"), and stars when
the app renders them as characters. Synchronous; run it in a thread."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

from PIL import Image, ImageOps

MAX_OCR_SIDE = 2400  # larger screenshots are scaled down: Tesseract time grows with the pixel count
MONTHS = {
    "январ": 1,
    "феврал": 2,
    "март": 3,
    "апрел": 4,
    "мая": 5,
    "май": 5,
    "июн": 6,
    "июл": 7,
    "август": 8,
    "сентябр": 9,
    "октябр": 10,
    "ноябр": 11,
    "декабр": 12,
}
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{2,4})\b")
_WORD_DATE = re.compile(r"\b(\d{1,2})\s+([а-яё]{3,9})(?:\s+(\d{4}))?", re.I)
_STARS = re.compile(r"[★⭐]")


@dataclass(frozen=True, slots=True)
class OcrResult:
    text: str
    dates: tuple[date, ...] = ()
    stars: int | None = None
    words: tuple[str, ...] = field(default=())


@cache
def available() -> bool:
    """True when Tesseract and its Russian data are installed."""
    if shutil.which("tesseract") is None:
        return False
    try:
        import pytesseract

        return "rus" in pytesseract.get_languages(config="")
    except Exception:  # a broken install counts as none
        return False


def read(image: Image.Image, *, today: date) -> OcrResult:
    """OCR `image` (already verified by images.inspect)."""
    import pytesseract

    gray = ImageOps.grayscale(image)
    scale = MAX_OCR_SIDE / max(gray.size)
    if scale < 1:
        gray = gray.resize((int(gray.width * scale), int(gray.height * scale)))
    raw = pytesseract.image_to_string(gray, lang="rus+eng", timeout=30)
    text = " ".join(raw.split())
    return OcrResult(text=text[:5000], dates=tuple(find_dates(text, today)), stars=count_stars(text))


def find_dates(text: str, today: date) -> list[date]:
    found: list[date] = []
    for d, m, y in _NUMERIC_DATE.findall(text):
        year = int(y) + 2000 if len(y) == 2 else int(y)
        _add(found, year, int(m), int(d))
    for d, month_word, y in _WORD_DATE.findall(text):
        month = next((n for stem, n in MONTHS.items() if month_word.lower().startswith(stem)), None)
        if month:
            _add(found, int(y) if y else today.year, month, int(d))
    lowered = text.lower()
    if "сегодня" in lowered:
        found.append(today)
    if "вчера" in lowered:
        found.append(today - timedelta(days=1))
    return found


def _add(found: list[date], year: int, month: int, day: int) -> None:
    try:
        found.append(date(year, month, day))
    except ValueError:
        pass


def count_stars(text: str) -> int | None:
    stars = len(_STARS.findall(text))
    return stars if 1 <= stars <= 5 else None
