"""Money amounts with a currency: "1 500 ₽", "300р", "$ 25.000", "u$s 120", "5 тыс руб" → "1500.00 RUB"."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation

from otklik.conversations.nlu.spans import Claimed, Found

__all__ = ["money_finder", "parse_amount"]

_AMOUNT = r"(?P<amount>\d{1,3}(?:[ \u00a0.,]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
_MULT = r"(?:\s*(?P<mult>тыс\.?|тысяч\w*|млн\.?|миллион\w*|mil|millones|mill[oó]n|lucas?|k|к)(?![\w]))?"
_USD = r"u\$s|us\$|usd|d[oó]lares|d[oó]lar|долл\w*|баксов|бакса"
_RUB = r"руб(?:лей|ля|ль)?\.?|р\.|р(?![\w])|₽|rub|rur"
_ARS = r"pesos?|ars"
_AFTER = re.compile(rf"(?<![\w.,]){_AMOUNT}{_MULT}\s*(?P<cur>{_USD}|{_RUB}|{_ARS}|\$)(?![\w$])", re.IGNORECASE)
_BEFORE = re.compile(
    rf"(?P<cur>{_USD}|ars|₽|\$)\s?{_AMOUNT}{_MULT}(?![\w.,]?\d)(?!\s*(?:{_RUB}|{_USD}|{_ARS}))",
    re.IGNORECASE,
)
_MULTIPLIERS = {"тыс": 1_000, "k": 1_000, "к": 1_000, "mil": 1_000, "luca": 1_000, "млн": 1_000_000}


def parse_amount(raw: str) -> Decimal | None:
    """Parse "1 500", "1.500,50", "1,500.50", "1500.5" → Decimal; a 3-digit group after a separator is
    a thousands group, a 1-2 digit tail is decimals."""
    text = raw.replace("\u00a0", " ").replace(" ", "")
    separators = [ch for ch in text if ch in ".,"]
    if separators:
        last = text.rfind(separators[-1])
        tail = text[last + 1 :]
        if len(tail) == 3 and (len(set(separators)) == 1):
            text = text.replace(".", "").replace(",", "")
        else:
            head = text[:last].replace(".", "").replace(",", "")
            text = f"{head}.{tail}"
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _multiplier(word: str | None) -> int:
    if not word:
        return 1
    lowered = word.lower().rstrip(".")
    if lowered.startswith(("млн", "миллион", "millon", "millón", "millones")):
        return 1_000_000
    for prefix, factor in _MULTIPLIERS.items():
        if lowered.startswith(prefix):
            return factor
    return 1


def _currency(symbol: str, language: str) -> str:
    lowered = symbol.lower()
    if lowered == "$":
        return "ARS" if language == "es" else "USD"
    if re.fullmatch(_USD, lowered):
        return "USD"
    if re.fullmatch(_ARS, lowered):
        return "ARS"
    return "RUB"


def money_finder(language: str) -> Callable[[str, Claimed], Iterator[Found]]:
    """A finder of money amounts; a bare "$" means ARS in Spanish packs and USD otherwise."""

    def find(text: str, claimed: Claimed) -> Iterator[Found]:
        for pattern in (_AFTER, _BEFORE):
            for m in pattern.finditer(text):
                amount = parse_amount(m.group("amount"))
                if amount is None:
                    continue
                value = amount * _multiplier(m.group("mult"))
                currency = _currency(m.group("cur"), language)
                yield Found("money", f"{value:.2f} {currency}", m.start(), m.end())

    return find
