"""Review screenshots drawn with Pillow, the way a buyer's phone shows a published WB review, in a font
with Cyrillic glyphs so Tesseract can read them; and the hostile uploads the tests send."""

from __future__ import annotations

import io
import struct
import textwrap
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def review_screenshot(
    text: str,
    *,
    name: str = "Анна",
    when: str = "12 марта 2025",
    stars: int = 5,
    product: str = "Гель-смазка разогревающая 50 мл",
    width: int = 1080,
    accent: tuple[int, int, int] = (203, 17, 171),
    fmt: str = "PNG",
) -> bytes:
    """A phone-sized screenshot of a published review (header, product, name, date, stars, text)."""
    lines = textwrap.wrap(text, 38)
    height = 900 + 52 * len(lines)
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 140), fill=accent)
    draw.text((40, 45), "WILDBERRIES", font=font(48), fill=(255, 255, 255))
    draw.text((40, 180), "Мой отзыв", font=font(44), fill=(0, 0, 0))
    draw.text((40, 260), product, font=font(34), fill=(60, 60, 60))
    draw.text((40, 340), name, font=font(40), fill=(0, 0, 0))
    draw.text((40, 400), when, font=font(34), fill=(110, 110, 110))
    for i in range(5):
        color = (255, 170, 0) if i < stars else (210, 210, 210)
        x = 40 + i * 60
        draw.polygon(
            [
                (x + 25, 470),
                (x + 32, 492),
                (x + 50, 492),
                (x + 36, 505),
                (x + 42, 527),
                (x + 25, 514),
                (x + 8, 527),
                (x + 14, 505),
                (x, 492),
                (x + 18, 492),
            ],
            fill=color,
        )
    y = 580
    for line in lines:
        draw.text((40, y), line, font=font(40), fill=(0, 0, 0))
        y += 52
    draw.text((40, y + 60), "Отзыв опубликован", font=font(32), fill=(0, 150, 70))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def recompressed(data: bytes, *, scale: float = 0.8, quality: int = 70) -> bytes:
    """The same screenshot re-saved smaller as JPEG (what a re-upload through a messenger does)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((int(image.width * scale), int(image.height * scale)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def huge_png(side: int = 20_000) -> bytes:
    """A valid 1-bit PNG of side×side pixels: a few KB on disk, 400 MP once decoded (a decompression bomb)."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    raw = zlib.compress(row * side, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    data = review_screenshot("Обрезанный файл", fmt="JPEG")
    return data[: len(data) // 2]


def big_jpeg(megabytes: int = 30) -> bytes:
    """A JPEG header followed by filler: `megabytes` MB (over every upload limit)."""
    head = review_screenshot("большой", fmt="JPEG")
    return head + b"\x00" * (megabytes * 1024 * 1024 - len(head))


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
