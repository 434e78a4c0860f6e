"""Pre-invoice / invoice PDFs read back with pypdf: every figure and text, fonts embedded, pagination, logo,
hostile strings."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from PIL import Image
from pypdf import PdfReader

from otklik.capabilities.sales.documents import Client, Document, Letterhead, Line, clean, money, render_pdf

SELLER = Letterhead("MICROCOM S.A.", "30-71234567-9", "Av. Corrientes 1234, CABA")
CLIENT = Client("Seguridad Total SRL", "30-70987654-3", "Responsable Inscripto", "Calle Falsa 123, Rosario")


def _line(sku: str, name: str, qty: int, unit: str) -> Line:
    return Line(sku, name, qty, Decimal(unit), Decimal(unit) * qty)


def _doc(lines: list[Line], **kw: object) -> Document:
    subtotal = sum((line.total for line in lines), Decimal(0))
    iva = (subtotal * Decimal("0.21")).quantize(Decimal("0.01"))
    values: dict[str, object] = {
        "kind": "pre_invoice", "number": "P-0012", "issued": date(2026, 12, 5), "valid_until": date(2026, 12, 12),
        "seller": SELLER, "client": CLIENT, "lines": tuple(lines), "subtotal": subtotal,
        "iva_rate": Decimal("21"), "iva_amount": iva, "total": subtotal + iva,
        "financing": ("6 cuotas de $ 11.879,83 — total $ 71.278,98",),
        "payment_instructions": ("Transferencia a CBU 0000003100012345678901", "Alias: MICROCOM.VENTAS"),
    }  # fmt: skip
    values.update(kw)
    return Document(**values)  # type: ignore[arg-type]


def _text(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def _flat(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


LINES = [
    _line("DS-2CD1043G0-I", "Cámara IP domo 4MP 2.8 mm Hikvision", 2, "29450.00"),
    _line("DHI-NVR4108HS", "Grabador NVR 8 canales Dahua", 1, "85900.50"),
]


def test_everything_is_in_the_pdf() -> None:
    doc = _doc(LINES)
    reader, text = _text(render_pdf(doc))
    flat = _flat(text)
    assert "PREFACTURA P-0012" in flat and "05/12/2026" in flat and "12/12/2026" in flat
    for part in ("MICROCOM S.A.", "30-71234567-9", "Seguridad Total SRL", "30-70987654-3", "Responsable Inscripto",
                 "Calle Falsa 123, Rosario", "Alias: MICROCOM.VENTAS", "6 cuotas de $ 11.879,83"):  # fmt: skip
        assert part in flat, part
    for line in LINES:
        assert line.sku in flat and line.name in flat
    assert "$ 29.450,00" in flat and "$ 58.900,00" in flat and "$ 85.900,50" in flat
    assert re.search(r"Subtotal \$ 144\.800,50", flat)
    assert re.search(r"IVA 21 % \$ 30\.408,10", flat)
    assert re.search(r"Total \$ 175\.208,60", flat)
    assert reader.metadata is not None and reader.metadata.title == "PREFACTURA P-0012"


def test_fonts_are_embedded_and_cyrillic_round_trips() -> None:
    doc = _doc([_line("КАМ-1", "Камера видеонаблюдения уличная", 3, "1500")], language="ru", currency="RUB",
               client=replace(CLIENT, name="ООО «Безопасность»", address=None))  # fmt: skip
    reader, text = _text(render_pdf(doc))
    flat = _flat(text)
    assert "Камера видеонаблюдения уличная" in flat and "ООО «Безопасность»" in flat
    assert "Самовывоз" in flat and "4 500,00 ₽" in flat and "Итого" in flat
    fonts = []
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            fonts.append((str(font["/BaseFont"]), "/FontFile2" in descriptor))
    assert fonts and all(embedded for _name, embedded in fonts)
    assert any("DejaVu" in name for name, _ in fonts)


def test_invoice_in_english() -> None:
    _reader, text = _text(
        render_pdf(_doc(LINES, kind="invoice", number="A-0001-00000042", language="en", currency="USD"))
    )
    flat = _flat(text)
    assert "INVOICE A-0001-00000042" in flat and "US$58,900.00" in flat and "VAT 21 %" in flat


def test_two_hundred_lines_paginate_with_totals_on_the_last_page() -> None:
    lines = [_line(f"SKU-{n:04d}", f"Producto número {n} " + "con nombre largo " * (n % 4), n % 5 + 1, "1000.10")
             for n in range(200)]  # fmt: skip
    reader, _text_all = _text(render_pdf(_doc(lines)))
    pages = [_flat(page.extract_text()) for page in reader.pages]
    assert len(pages) > 3
    found = [sku for sku in (line.sku for line in lines) if any(sku in page for page in pages)]
    assert found == [line.sku for line in lines]  # every line, none lost at a page break
    assert all("Código" in page for page in pages[:-1])  # the headings repeat on every page of the table
    assert "Subtotal" in pages[-1] and "Total" in pages[-1] and all("Subtotal" not in p for p in pages[:-1])
    assert f"Página {len(pages)}/{len(pages)}" in pages[-1]


def test_a_long_name_wraps_and_stays_whole() -> None:
    name = "Kit de videovigilancia " + "con cámaras bullet exteriores y disco rígido " * 6
    reader, text = _text(render_pdf(_doc([_line("KIT-1", name, 1, "10")])))
    assert _flat(name) in _flat(text) and len(reader.pages) == 1


def test_logo_embeds() -> None:
    png = io.BytesIO()
    Image.new("RGB", (120, 40), (200, 30, 30)).save(png, format="PNG")
    reader = PdfReader(io.BytesIO(render_pdf(_doc(LINES, seller=replace(SELLER, logo_png=png.getvalue())))))
    images = reader.pages[0].images
    assert len(images) == 1 and images[0].image is not None and images[0].image.size == (120, 40)
    with pytest.raises(ValueError, match="logo"):
        render_pdf(_doc(LINES, seller=replace(SELLER, logo_png=b"\x89PNG not really")))


def test_formulas_are_plain_text() -> None:
    lines = [_line('=HYPERLINK("x")', "+cmd|' /C calc'!A0", 1, "5"), _line("@SUM(A1)", "-2+3", 1, "5")]
    _reader, text = _text(render_pdf(_doc(lines, client=replace(CLIENT, name="=1+1"))))
    flat = _flat(text)
    assert '\'=HYPERLINK("x")' in flat and "'+cmd|' /C calc'!A0" in flat and "'@SUM(A1)" in flat
    assert "'-2+3" in flat and "'=1+1" in flat


def test_hostile_strings_do_not_crash() -> None:
    hostile = [
        _line("X1", "A" * 5000, 1, "1"),  # one giant word
        _line("X2", "bell\x07 nul\x00 esc\x1b[31m tab\tnew\nline\u200e\u202e", 1, "1"),
        _line("X3", "מצלמה אבטחה كاميرا مراقبة", 1, "1"),  # RTL
        _line("X4", "Cámara 🚀📹 listo", 1, "1"),  # emoji
        _line("X5", "<script>alert(1)</script> & %PDF-1.4 endobj", 1, "1"),
    ]
    reader, text = _text(render_pdf(_doc(hostile)))
    flat = _flat(text)
    assert "bell nul esc[31m tab new line" in flat  # control characters dropped, line breaks as spaces
    assert "מצלמה" in flat or "המלצמ" in flat  # Hebrew shown (logical or visual order)
    assert "Cámara" in flat and "listo" in flat and "🚀" not in flat and "\ufffd" in text
    assert "<script>alert(1)</script> & %PDF-1.4 endobj" in flat
    assert "A" * 100 in flat.replace(" ", "")  # the giant word is there, cut to the limit, wrapped
    assert len(reader.pages) >= 1


def test_clean_replaces_and_limits() -> None:
    assert clean("🙂 ok") == "\ufffd ok" and clean("a\x00b") == "ab" and clean("=x") == "'=x"
    assert len(clean("y" * 10_000, limit=50)) == 50


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"subtotal": Decimal("1")}, ValueError),
        ({"lines": (Line("A", "a", 2, Decimal("10"), Decimal("21")),), "subtotal": Decimal("21")}, ValueError),
        ({"lines": (Line("A", "a", 0, Decimal("10"), Decimal("0")),), "subtotal": Decimal("0")}, ValueError),
        ({"total": 1.5}, TypeError),
        ({"language": "fr"}, ValueError),
        ({"total": Decimal("1")}, ValueError),  # subtotal + IVA is not the total
        ({"lines_include_iva": True}, ValueError),  # net lines do not add up to the total
    ],
)
def test_inconsistent_documents_are_refused(change: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        render_pdf(replace(_doc(LINES), **change))  # type: ignore[arg-type]


def test_prices_with_iva_add_up_to_the_total_and_say_so() -> None:
    lines = [_line("DS-2CD1143G2-I", "Cámara IP domo", 3, "61500.00"), _line("WD10PURZ", "Disco 1TB", 2, "64000.00")]
    doc = _doc(lines, subtotal=Decimal("258264.46"), iva_amount=Decimal("54235.54"), total=Decimal("312500.00"),
               lines_include_iva=True)  # fmt: skip
    _reader, text = _text(render_pdf(doc))
    assert "Precio unit. (IVA incl.)" in text and "Importe (IVA incl.)" in text
    assert "$ 258.264,46" in text and "$ 54.235,54" in text and "$ 312.500,00" in text
    _reader, net = _text(render_pdf(_doc(lines)))
    assert "IVA incl." not in net


def test_money_formats() -> None:
    assert money(Decimal("58900")) == "$ 58.900,00"
    assert money(Decimal("-1234.565")) == "-$ 1.234,57"
    assert money(Decimal("1234567.8"), "USD", "en") == "US$1,234,567.80"
    assert money(Decimal("1500"), "RUB", "ru") == "1\u00a0500,00\u00a0₽"
    with pytest.raises(TypeError):
        money(1.5)  # type: ignore[arg-type]
