"""Pre-invoice and invoice PDFs: a pure function from a `Document` to PDF bytes (no database, no I/O).

`render_pdf(doc)` lays out the seller's letterhead (name, CUIT, address, an optional PNG logo), the document's
kind, number, date and validity, the client (razón social, CUIT, condición frente al IVA, delivery address or
pick-up), the lines (sku, name, quantity, unit price, line total — long names wrap, many lines continue on
new pages with the column headings repeated), then subtotal, IVA, total, the financing plan and the payment
instructions, kept together on the last page. Texts are in the document's language (es, ru, en); money is
formatted for it (es-AR `$ 58.900,00`). Every figure comes from the caller (the order, computed by
deterministic code); the function checks that the lines add up and refuses a float.

Fonts: DejaVu Sans (regular and bold), vendored in `fonts/` with its licence (it permits redistribution),
embedded as subsets: Latin, Cyrillic, Greek, Hebrew and Arabic letters render; a character the font has no
glyph for (most emoji) is shown as U+FFFD, control characters are dropped. Text that looks like a
spreadsheet formula (`=`, `+`, `-`, `@`) is written as the CSV exports write it (a leading apostrophe), so a
PDF copied into a spreadsheet runs nothing.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from otklik.core.cells import formula_safe

FONTS = Path(__file__).parent / "fonts"
FONT = "DejaVu"
MAX_TEXT = 2000  # one text cell, after cleaning (a name, an address, a line of instructions)
CENT = Decimal("0.01")

Kind = Literal["pre_invoice", "invoice"]
Language = Literal["es", "ru", "en"]


@dataclass(frozen=True, slots=True)
class Letterhead:
    name: str
    cuit: str
    address: str
    logo_png: bytes | None = None  # PNG or JPEG bytes (the settings page checks them: `seller.check_logo`)


@dataclass(frozen=True, slots=True)
class Client:
    name: str  # razón social
    cuit: str
    iva_condition: str  # "Responsable Inscripto", "Monotributo", "Consumidor Final", …
    address: str | None = None  # None: the client picks the goods up


@dataclass(frozen=True, slots=True)
class Line:
    sku: str
    name: str
    qty: int
    unit_price: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class Document:
    kind: Kind
    number: str
    issued: date
    seller: Letterhead
    client: Client
    lines: tuple[Line, ...]
    subtotal: Decimal
    iva_rate: Decimal  # percent: Decimal("21")
    iva_amount: Decimal
    total: Decimal
    currency: str = "ARS"
    valid_until: date | None = None
    financing: tuple[str, ...] = ()  # the chosen plan, one text line each
    payment_instructions: tuple[str, ...] = ()
    language: Language = "es"
    lines_include_iva: bool = False  # the unit prices include IVA: the lines add up to the total, not the subtotal


LABELS: dict[str, dict[str, str]] = {
    "es": {
        "pre_invoice": "PREFACTURA", "invoice": "FACTURA", "number": "N.º", "date": "Fecha",
        "valid": "Válida hasta", "client": "Cliente", "cuit": "CUIT", "iva": "Condición frente al IVA",
        "address": "Entrega", "pickup": "Retira en el local", "sku": "Código", "name": "Producto",
        "qty": "Cant.", "unit": "Precio unit.", "line": "Importe", "subtotal": "Subtotal", "vat": "IVA",
        "total": "Total", "financing": "Plan de financiación", "payment": "Instrucciones de pago", "page": "Página",
        "incl": "IVA incl.",
    },
    "en": {
        "pre_invoice": "PRE-INVOICE", "invoice": "INVOICE", "number": "No.", "date": "Date",
        "valid": "Valid until", "client": "Client", "cuit": "CUIT", "iva": "VAT status",
        "address": "Delivery", "pickup": "Pick-up at the store", "sku": "SKU", "name": "Product",
        "qty": "Qty", "unit": "Unit price", "line": "Amount", "subtotal": "Subtotal", "vat": "VAT",
        "total": "Total", "financing": "Financing plan", "payment": "Payment instructions", "page": "Page",
        "incl": "VAT incl.",
    },
    "ru": {
        "pre_invoice": "СЧЁТ (ПРЕДВАРИТЕЛЬНЫЙ)", "invoice": "СЧЁТ-ФАКТУРА", "number": "№", "date": "Дата",
        "valid": "Действителен до", "client": "Покупатель", "cuit": "CUIT", "iva": "Статус по НДС",
        "address": "Доставка", "pickup": "Самовывоз", "sku": "Артикул", "name": "Товар",
        "qty": "Кол-во", "unit": "Цена", "line": "Сумма", "subtotal": "Подытог", "vat": "НДС",
        "total": "Итого", "financing": "План рассрочки", "payment": "Как оплатить", "page": "Стр.",
        "incl": "с НДС",
    },
}  # fmt: skip
SYMBOLS = {"ARS": "$", "USD": "US$", "EUR": "€", "RUB": "₽"}


def money(amount: Decimal, currency: str = "ARS", language: str = "es") -> str:
    """`$ 58.900,00` (es-AR), `$58,900.00` (en), `58 900,00 $` (ru); negative amounts keep their sign."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be Decimal, not {type(amount).__name__}")
    value = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    whole, _, cents = f"{abs(value):f}".partition(".")
    groups = f"{int(whole):,}"
    symbol = SYMBOLS.get(currency.upper(), currency.upper())
    if language == "en":
        return f"{sign}{symbol}{groups}.{cents}"
    if language == "ru":
        nbsp = "\u00a0"
        return f"{sign}{groups.replace(',', nbsp)},{cents}{nbsp}{symbol}"
    return f"{sign}{symbol} {groups.replace(',', '.')},{cents}"


@lru_cache(maxsize=1)
def _glyphs() -> frozenset[int]:
    pdf = FPDF()
    pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
    font: Any = pdf.fonts[FONT.lower()]  # a TTFFont: its cmap maps code points to glyphs
    return frozenset(font.cmap)


def clean(value: object, *, limit: int = MAX_TEXT, formula: bool = True) -> str:
    """Text the PDF can show: control and format characters dropped (newlines and tabs become spaces),
    characters without a glyph shown as U+FFFD, cut at `limit`, formula-like text neutralised."""
    glyphs = _glyphs()
    out = []
    for char in str(value if value is not None else ""):
        category = unicodedata.category(char)
        if char in "\r\n\t\v\f\x85\u2028\u2029":
            out.append(" ")
        elif category in ("Cc", "Cf", "Cs", "Co", "Cn") or (category.startswith("M") and ord(char) not in glyphs):
            continue
        else:
            out.append(char if ord(char) in glyphs else "\ufffd")
    text = " ".join("".join(out).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return formula_safe(text) if formula else text


def _check(doc: Document) -> None:
    amounts = [doc.subtotal, doc.iva_rate, doc.iva_amount, doc.total]
    amounts += [v for line in doc.lines for v in (line.unit_price, line.total)]
    if any(not isinstance(v, Decimal) for v in amounts):
        raise TypeError("amounts must be Decimal (never float)")
    for line in doc.lines:
        if not isinstance(line.qty, int) or line.qty <= 0:
            raise ValueError(f"line {line.sku!r}: quantity must be a positive integer")
        if (line.unit_price * line.qty).quantize(CENT) != line.total.quantize(CENT):
            raise ValueError(f"line {line.sku!r}: {line.qty} × {line.unit_price} is not {line.total}")
    target = doc.total if doc.lines_include_iva else doc.subtotal
    if sum((line.total for line in doc.lines), Decimal(0)).quantize(CENT) != target.quantize(CENT):
        raise ValueError(f"the lines do not add up to the {'total' if doc.lines_include_iva else 'subtotal'}")
    if (doc.subtotal + doc.iva_amount).quantize(CENT) != doc.total.quantize(CENT):
        raise ValueError("subtotal + IVA is not the total")
    if doc.language not in LABELS:
        raise ValueError(f"language must be one of {', '.join(LABELS)}")


class _Pdf(FPDF):
    page_label = "Page"

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, f"{self.page_label} {self.page_no()}/{{nb}}", align="R")


def render_pdf(doc: Document) -> bytes:
    """The document as PDF bytes (A4, fonts embedded)."""
    _check(doc)
    t = LABELS[doc.language]
    pdf = _Pdf(format="A4")
    pdf.page_label = t["page"]
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_font(FONT, "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    title = f"{t[doc.kind]} {clean(doc.number, limit=60, formula=False)}"
    pdf.set_title(title)
    pdf.set_author(clean(doc.seller.name, limit=200, formula=False))
    pdf.set_creator("otklik")
    pdf.add_page()
    width = pdf.epw

    # letterhead
    top = pdf.get_y()
    if doc.seller.logo_png:
        try:
            pdf.image(io.BytesIO(doc.seller.logo_png), x=pdf.l_margin, y=top, h=18)
            pdf.set_xy(pdf.l_margin + 45, top)
        except Exception as exc:  # a broken logo must not lose the document
            raise ValueError(f"the logo is not a readable PNG or JPEG: {type(exc).__name__}") from None
    left = pdf.get_x()
    pdf.set_font(FONT, "B", 13)
    pdf.multi_cell(
        width - (left - pdf.l_margin), 6, clean(doc.seller.name, limit=200), new_x=XPos.LEFT, new_y=YPos.NEXT
    )
    pdf.set_font(FONT, "", 9)
    pdf.multi_cell(
        width - (left - pdf.l_margin), 4.5,
        f"{t['cuit']} {clean(doc.seller.cuit, limit=40)}\n{clean(doc.seller.address, limit=300)}",
        new_x=XPos.LMARGIN, new_y=YPos.NEXT,
    )  # fmt: skip
    pdf.set_y(max(pdf.get_y(), top + (20 if doc.seller.logo_png else 0)) + 4)

    # title block
    pdf.set_font(FONT, "B", 15)
    pdf.cell(width, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    dates = f"{t['date']}: {doc.issued.strftime('%d/%m/%Y')}"
    if doc.valid_until:
        dates += f"    {t['valid']}: {doc.valid_until.strftime('%d/%m/%Y')}"
    pdf.cell(width, 6, dates, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)

    # client
    pdf.set_font(FONT, "B", 10)
    pdf.cell(width, 6, t["client"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    delivery = clean(doc.client.address, limit=300) if doc.client.address else t["pickup"]
    client_lines = [
        clean(doc.client.name, limit=300),
        f"{t['cuit']}: {clean(doc.client.cuit, limit=40)}",
        f"{t['iva']}: {clean(doc.client.iva_condition, limit=80)}",
        f"{t['address']}: {delivery}",
    ]
    pdf.multi_cell(width, 5, "\n".join(client_lines), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    # lines
    pdf.set_font(FONT, "", 9)
    cur, lang = doc.currency, doc.language
    with pdf.table(
        col_widths=(36, 68, 12, 26, 28),
        text_align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=4.8,
        repeat_headings=1,
        first_row_as_headings=True,
        headings_style=_headings(),
    ) as table:
        head = table.row()
        for key in ("sku", "name", "qty", "unit", "line"):
            included = key in ("unit", "line") and doc.lines_include_iva
            head.cell(f"{t[key]} ({t['incl']})" if included else t[key])
        for line in doc.lines:
            row = table.row()
            row.cell(clean(line.sku, limit=60))
            row.cell(clean(line.name, limit=600))
            row.cell(str(line.qty))
            row.cell(money(line.unit_price, cur, lang))
            row.cell(money(line.total, cur, lang))

    # totals, plan and instructions: together, on the last page
    extra = len(doc.financing) + len(doc.payment_instructions) + (2 if doc.financing else 0)
    extra += 2 if doc.payment_instructions else 0
    needed = 3 * 6 + 4 + extra * 5
    if pdf.will_page_break(min(needed, pdf.eph - 10)):
        pdf.add_page()
    pdf.ln(3)
    rate = f"{doc.iva_rate.normalize():f}".replace(".", "," if lang != "en" else ".")
    for label, amount, bold in (
        (t["subtotal"], doc.subtotal, False),
        (f"{t['vat']} {rate} %", doc.iva_amount, False),
        (t["total"], doc.total, True),
    ):
        pdf.set_font(FONT, "B" if bold else "", 11 if bold else 10)
        pdf.cell(width - 40, 6, label, align="R")
        pdf.cell(40, 6, money(amount, cur, lang), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for heading, texts in ((t["financing"], doc.financing), (t["payment"], doc.payment_instructions)):
        if not texts:
            continue
        pdf.ln(3)
        pdf.set_font(FONT, "B", 10)
        pdf.cell(width, 6, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(FONT, "", 9)
        for text in texts[:50]:
            pdf.multi_cell(width, 4.8, clean(text, limit=600), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _headings() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(family=FONT, emphasis="BOLD", fill_color=(230, 230, 230))
