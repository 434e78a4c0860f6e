"""QR codes for insert cards (the card in the parcel that brings a buyer to the bot).

Print-ready: error correction Q by default (survives a smudge or a crease), at least 25 mm wide at
300 dpi, the dpi written into the PNG, the SVG sized in millimetres. An optional caption is drawn
under the code ("Наведите камеру — бот поможет с возвратом").
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

import segno
from PIL import Image, ImageDraw, ImageFont

DPI = 300
MIN_SIDE_MM = 25.0
MM_PER_INCH = 25.4
_SVG_NS = "http://www.w3.org/2000/svg"
# Fonts with Cyrillic glyphs commonly present on Linux; Pillow's built-in font lacks them.
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/arial.ttf",
)

Format = Literal["png", "svg"]
ErrorLevel = Literal["m", "q"]


def write_qr(
    url: str,
    out: Path,
    *,
    fmt: Format | None = None,
    scale: int = 10,
    border: int = 4,
    caption: str | None = None,
    error: ErrorLevel = "q",
) -> Path:
    """Write a QR code for `url` to `out` (format from `fmt` or the file suffix) and return `out`.

    `scale` is pixels per module at 300 dpi; it is raised when needed so that the code is at least
    25 mm wide. `border` is the quiet zone in modules (4 is the standard's minimum).
    """
    kind = fmt or out.suffix.lstrip(".").lower()
    body = render_qr(url, fmt=kind, scale=scale, border=border, caption=caption, error=error)
    out.write_bytes(body)
    return out


def render_qr(
    url: str,
    *,
    fmt: str,
    scale: int = 10,
    border: int = 4,
    caption: str | None = None,
    error: ErrorLevel = "q",
) -> bytes:
    """The QR code for `url` as PNG or SVG bytes (`fmt`: png or svg; see `write_qr`), rendered in memory.

    CPU-bound (segno, Pillow, a TrueType font): async callers run it in a worker thread.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"unsupported QR format {fmt!r}: use png or svg")
    if border < 4:
        raise ValueError("the quiet zone must be at least 4 modules wide, or phones will not read the code")
    qr = segno.make(url, error=error, boost_error=False, micro=False)
    width_modules = qr.symbol_size(scale=1, border=border)[0]
    min_scale = math.ceil(MIN_SIDE_MM / MM_PER_INCH * DPI / width_modules)
    scale = max(scale, min_scale)
    out = io.BytesIO()
    if fmt == "png":
        _write_png(qr, out, scale=scale, border=border, caption=caption)
    else:
        _write_svg(qr, out, module_mm=scale * MM_PER_INCH / DPI, border=border, caption=caption)
    return out.getvalue()


def _write_png(qr: segno.QRCode, out: io.BytesIO, *, scale: int, border: int, caption: str | None) -> None:
    if not caption:
        qr.save(out, kind="png", scale=scale, border=border, dpi=DPI)
        return
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=border, dpi=DPI)
    code = Image.open(buffer).convert("L")
    font_size = max(scale * 3, 24)
    font = _font(size=font_size)
    lines = _wrap(caption, font, max_width=code.width - 2 * scale * border)
    line_height = int(font_size * 1.3)
    # The caption starts below the whole quiet zone: text inside it would hinder scanning.
    card = Image.new("L", (code.width, code.height + line_height * len(lines) + scale * border), 255)
    card.paste(code, (0, 0))
    draw = ImageDraw.Draw(card)
    y = code.height
    for line in lines:
        draw.text((card.width // 2, y), line, font=font, fill=0, anchor="ma")
        y += line_height
    card.save(out, format="PNG", dpi=(DPI, DPI))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in _FONT_CANDIDATES:
        if Path(candidate).exists():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int) -> list[str]:
    """Greedy word wrap to the code's width (a word longer than a line stays on its own line)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if line and font.getlength(candidate) > max_width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def _write_svg(qr: segno.QRCode, out: io.BytesIO, *, module_mm: float, border: int, caption: str | None) -> None:
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=round(module_mm, 4), border=border, unit="mm", light="#fff")
    if not caption:
        out.write(buffer.getvalue())
        return
    ET.register_namespace("", _SVG_NS)
    root = ET.fromstring(buffer.getvalue())  # noqa: S314 - segno's own output, not untrusted input
    side = float(root.attrib["viewBox"].split()[2])
    font_mm = max(side / 12, 3.0)
    lines = caption.splitlines() or [caption]
    height = side + font_mm * 1.4 * len(lines) + module_mm * border
    root.set("height", f"{height:.4f}mm")
    root.set("viewBox", f"0 0 {side:.4f} {height:.4f}")
    background = ET.Element(f"{{{_SVG_NS}}}rect", {"width": "100%", "height": "100%", "fill": "#fff"})
    root.insert(0, background)
    y = side + font_mm
    for line in lines:
        attrs = {
            "x": f"{side / 2:.4f}",
            "y": f"{y:.4f}",
            "font-family": "DejaVu Sans, Arial, sans-serif",
            "font-size": f"{font_mm:.4f}",
            "text-anchor": "middle",
        }
        ET.SubElement(root, f"{{{_SVG_NS}}}text", attrs).text = line
        y += font_mm * 1.4
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
