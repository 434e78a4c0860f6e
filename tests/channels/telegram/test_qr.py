"""QR codes for insert cards: decoded back with zxing-cpp, sized for print."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from otklik.adapters.qr import write_qr
from otklik.channels.telegram.adapter import deep_link

URL = deep_link("OtklikShopBot", "card_SKU-123")


def decode(path: Path) -> list[str]:
    with Image.open(path) as image:
        return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def test_png_decodes_to_the_url_and_is_print_sized(tmp_path: Path) -> None:
    out = write_qr(URL, tmp_path / "card.png", fmt="png")
    assert decode(out) == [URL]
    with Image.open(out) as image:
        assert round(image.info["dpi"][0]) == 300
        assert image.width / 300 * 25.4 >= 25  # at least 2.5 cm wide when printed at 300 dpi


def test_small_scale_is_raised_to_print_size(tmp_path: Path) -> None:
    out = write_qr(URL, tmp_path / "tiny.png", scale=1)
    with Image.open(out) as image:
        assert image.width >= 295
    assert decode(out) == [URL]


def test_caption_is_drawn_under_the_code_without_breaking_it(tmp_path: Path) -> None:
    plain = write_qr(URL, tmp_path / "plain.png")
    captioned = write_qr(URL, tmp_path / "captioned.png", caption="Наведите камеру — бот поможет с возвратом")
    with Image.open(plain) as a, Image.open(captioned) as b:
        assert b.width == a.width and b.height > a.height
        below = b.convert("L").crop((0, a.height, b.width, b.height))
        darkest = below.getextrema()[0]
        assert isinstance(darkest, int) and darkest < 128  # something dark (the text) under the code
        assert round(b.info["dpi"][0]) == 300
    assert decode(captioned) == [URL]


@pytest.mark.parametrize("caption", [None, "Кэшбэк за отзыв"])
def test_svg_is_well_formed_and_sized_in_millimetres(tmp_path: Path, caption: str | None) -> None:
    out = write_qr(URL, tmp_path / "card.svg", caption=caption)
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert float(root.attrib["width"].removesuffix("mm")) >= 25
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ([caption] if caption else [])


def test_rejects_unknown_format_and_thin_quiet_zone(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="png or svg"):
        write_qr(URL, tmp_path / "card.jpg")
    with pytest.raises(ValueError, match="quiet zone"):
        write_qr(URL, tmp_path / "card.png", border=1)
