"""Masking of personal numbers before anything is written (pure: the engine and ingest share it).

- `mask_sensitive`: the answer to a question declared `sensitive: true` (payout details): every digit is
  hidden, a run of 10+ digits keeps its last four (`•••• 1234`), e-mail addresses are hidden.
- `mask_cards`: the safety net for any buyer text: a Luhn-valid run of 13–19 digits (a bank card) becomes
  `•••• 1234`. A 13-digit run with a valid EAN-13 check digit is a barcode and is kept.
- `DIGIT_RUN` / `EMAIL`: the broad "personal numbers" heuristic (7+ digits), also used to keep such texts
  away from an external LLM (`otklik.conversations.llm.privacy`).
"""

from __future__ import annotations

import re

DIGIT_RUN = re.compile(r"(?:\d[\s\-.()]{0,2}){7,}")
"""A run of 7 or more digits, spaces, dashes, dots and brackets between them allowed."""
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
MASK = "••••"

_SEPARATORS = " \t\r\n\f\v-.()"
_ANY_DIGITS = re.compile(r"\d(?:[\s\-.()]{0,2}\d)*")
_GROUP = re.compile(r"\d+")
_MAX_GROUPS = 40


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _ean13_ok(digits: str) -> bool:
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _is_card(digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
        return False
    return not (len(digits) == 13 and _ean13_ok(digits))


def _masked(digits: str) -> str:
    return f"{MASK} {digits[-4:]}"


def _hide_cards(run: str) -> str:
    """One digit run: the whole of it when it is a card, else any card made of consecutive digit groups
    (a phone and a card typed in one line form one long run)."""
    digits = "".join(_GROUP.findall(run))
    if _is_card(digits):
        return _masked(digits)
    if len(digits) <= 19:
        return run
    groups = list(_GROUP.finditer(run))[:_MAX_GROUPS]
    out, cursor, i = [], 0, 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            window = "".join(g.group() for g in groups[i:j])
            if _is_card(window):
                out += [run[cursor : groups[i].start()], _masked(window)]
                cursor, i = groups[j - 1].end(), j
                break
        else:
            i += 1
    return "".join(out) + run[cursor:]


def mask_cards(text: str) -> str:
    """Hide bank card numbers (Luhn-valid 13–19 digit runs) in any text; everything else is kept."""
    if not text:
        return text

    def hide(match: re.Match[str]) -> str:
        run = match.group(0)
        body = run.rstrip(_SEPARATORS)
        return _hide_cards(body) + run[len(body) :]

    return DIGIT_RUN.sub(hide, text)


def mask_sensitive(text: str) -> str:
    """The form of a sensitive answer that may be stored: no digit and no e-mail address survives, except
    the last four digits of a long number (`+7 916 123-45-67 Сбер` -> `+•••• 4567 Сбер`)."""
    if not text:
        return text

    def hide(match: re.Match[str]) -> str:
        digits = "".join(_GROUP.findall(match.group(0)))
        return _masked(digits) if len(digits) >= 10 else MASK

    return _ANY_DIGITS.sub(hide, EMAIL.sub(MASK, text))
