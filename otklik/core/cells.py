"""Text that leaves otklik as a spreadsheet cell (CSV and XLSX exports) or a document's text.

Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (and, in some, a tab or a carriage return) as a
formula, so buyer text such as `=HYPERLINK(…)` must not start one: it gets a leading apostrophe, which the
spreadsheet shows as text. The one rule for every export (care's incidents and reviews, cashback's payout
registry, the audit log, the sales documents).
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE = re.compile(r"\+\d{7,15}")


def formula_safe(value: object, *, phones: bool = False) -> str:
    """`value` as text that no spreadsheet runs; idempotent. `phones=True` leaves an international phone number
    (`+79991234567`, nothing else in the cell) as it is: a payout registry's column the bank reads."""
    text = "" if value is None else str(value)
    if text[:1] not in FORMULA_STARTS or (phones and _PHONE.fullmatch(text)):
        return text
    return "'" + text
