"""Money for the sales capability: es-AR formatting, line totals, IVA and the cart's totals. Decimal only,
every rounding ROUND_HALF_UP to the cent.

A price list is either with IVA included (the row's `prices_include_iva`, the usual consumer list) or net.
Totals per order: the lines of each kind are summed, then
- with IVA: total = Σ line totals, net = round(total / (1 + rate)), IVA = total − net;
- net:      subtotal = Σ line totals, IVA = round(subtotal · rate), total = subtotal + IVA;
and both kinds are added (a cart may mix them). `subtotal` is always the amount without IVA.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
SYMBOLS = {"ARS": "$", "USD": "US$", "EUR": "€"}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal, currency: str = "ARS", locale: str = "es-AR") -> str:
    """`$ 58.900,00` (es-AR: thousands with dots, decimal comma); `US$ 1.234,50` for dollars."""
    text = f"{cents(Decimal(value)):,.2f}"
    symbol = SYMBOLS.get(currency.upper(), currency.upper())
    if locale.lower().startswith("es"):
        return f"{symbol} " + text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return f"{symbol} {text}"


def percent(value: Decimal) -> str:
    """`21 %`, `10,5 %`."""
    text = f"{Decimal(value).normalize():f}"
    return text.replace(".", ",") + " %"


def line_total(unit_price: Decimal, quantity: int) -> Decimal:
    return cents(Decimal(unit_price) * quantity)


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Decimal  # without IVA
    iva: Decimal
    total: Decimal


def totals(lines: Iterable[tuple[Decimal, bool]], rate: Decimal) -> Totals:
    """`lines`: (line total, price includes IVA). `rate`: percent (21 → 21 %)."""
    factor = Decimal(rate) / 100
    given = list(lines)
    gross = sum((t for t, with_iva in given if with_iva), Decimal(0))
    net_lines = sum((t for t, with_iva in given if not with_iva), Decimal(0))
    gross_net = cents(gross / (1 + factor)) if gross else Decimal("0.00")
    net_iva = cents(net_lines * factor)
    subtotal = cents(gross_net + net_lines)
    iva = cents((gross - gross_net) + net_iva)
    return Totals(subtotal, iva, cents(subtotal + iva))
