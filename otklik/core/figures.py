"""The numbers a text states, read the way a buyer reads them, and the check that each one is a figure
deterministic code produced (pure: no I/O).

Used on generated text (`otklik.conversations.llm.guardrails.check_figures`): an LLM may phrase an answer
about money, but every number in its text must equal a number the deterministic code produced, otherwise
the templated answer is sent.

How a number is read (`find_figures`), after Unicode NFKC (so `²`, `６` are digits too):

- a token is a run of digits with `.` or `,` between digits, or a space (also no-break and narrow no-break)
  before a group of exactly three digits: `29.401,58`, `29 401.58`, `48,00`, `150000`, `1,234.50`;
- both `.` and `,`: the last one is the decimal mark, the other groups thousands (`29.401,58`,
  `29,401.58`); the groups must be of three digits (`1.23,4` is malformed);
- one mark used twice or more: thousands (`1.500.000`); groups of three digits, else malformed;
- one mark used once: a decimal mark unless exactly three digits follow it and one to three (not `0`)
  precede it; then the text's language decides, as a buyer of that language reads it: Spanish and Russian
  group thousands with `.` and write decimals with `,` (`1.500` = 1500, `1,500` = 1.5), English the other
  way round;
- `mil`, `millón/millones`, `k`, `lucas`, `тыс.`, `тысяч`, `млн`, `миллион`, `thousand`, `million` right
  after a number multiply it (`150 mil` = 150000), so `12 mil` is not the count 12;
- number words (`seis`, `doce`, `шесть`, `двенадцати`, `six`…) are numbers too; `un/una/uno/one/один` are
  not read (articles); ordinals are not read;
- a `%` (or `por ciento`, `процент…`) after a number makes it a percent, a currency mark before or after
  (`$`, `ARS`, `pesos`) makes it money; a mark of another currency (`US$`, `USD`, `€`, `₽`, `dólares`…) is
  reported on its own.

`check_figures` then requires every percent to be one of the allowed percents, every amount of money one of
the allowed amounts, every other number one of all the allowed numbers, the `required` ones to be present,
and no other currency. The honest limit: a number that is allowed can still be put in the wrong place
("total" with the installment's value); the check catches changed, invented and re-formatted numbers, not
swapped ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

__all__ = ["Figure", "Figures", "check_figures", "find_figures", "foreign_currencies", "read_number", "without_figures"]

Kind = Literal["money", "percent", "number"]

_SPACES = "\u00a0\u202f\u2009\u2007"
_TOKEN = re.compile(r"(?<!\d)\d+(?:[.,]\d+|[ " + _SPACES + r"]\d{3}(?!\d))*")
_MULTIPLIERS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"\s*(?:mill[oó]n(?:es)?|millones|mill\.|млн\.?|миллион\w*|million\w*|mln|mm\b|m\b)", re.I), 10**6),
    (re.compile(r"\s*(?:mil\b|k\b|lucas?\b|тыс\.?|тысяч\w*|thousand\w*)", re.I), 1000),
)
_PERCENT_AFTER = re.compile(r"\s*(?:%|por\s*ciento|процент\w*|percent\b)", re.I)
_MONEY_BEFORE = re.compile(r"(?:\$|\bars|\bpesos?)\s*$", re.I)
_MONEY_AFTER = re.compile(r"\s*(?:\$|ars\b|pesos?\b)", re.I)
_CURRENCIES: dict[str, re.Pattern[str]] = {
    "USD": re.compile(r"u\s?s\s?\$|u\$s|u\$d|\busd\b|\bd[oó]lar\w*|\bdollar\w*|долл\w*", re.I),
    "EUR": re.compile(r"€|\beur\b|\beuros?\b|евро", re.I),
    "RUB": re.compile(r"₽|\brub\b|\bруб\w*|\bр\.(?!\w)", re.I),
    "BRL": re.compile(r"r\$|\breais\b", re.I),
    "ARS": re.compile(r"(?<![a-z])\$|\bars\b|\bpesos?\b", re.I),  # not the "$" of "US$", "R$", "U$S"
}
_WORDS_ES = {
    "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8, "nueve": 9, "diez": 10,
    "once": 11, "doce": 12, "trece": 13, "catorce": 14, "quince": 15, "dieciseis": 16, "diecisiete": 17,
    "dieciocho": 18, "diecinueve": 19, "veinte": 20, "veintiuno": 21, "veintiun": 21, "veintiuna": 21,
    "veintidos": 22, "veintitres": 23, "veinticuatro": 24, "veinticinco": 25, "veintiseis": 26,
    "veintisiete": 27, "veintiocho": 28, "veintinueve": 29, "treinta": 30, "cuarenta": 40, "cincuenta": 50,
    "sesenta": 60, "setenta": 70, "ochenta": 80, "noventa": 90, "cien": 100, "ciento": 100,
    "doscientos": 200, "trescientos": 300, "cuatrocientos": 400, "quinientos": 500, "seiscientos": 600,
    "setecientos": 700, "ochocientos": 800, "novecientos": 900, "mil": 1000, "millon": 10**6,
    "millones": 10**6, "docena": 12,
}  # fmt: skip
_WORDS_EN = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 10**6, "dozen": 12,
}  # fmt: skip
_RU_STEMS = {
    "два": 2, "две": 2, "двух": 2, "двум": 2, "двумя": 2, "три": 3, "трех": 3, "трем": 3, "тремя": 3,
    "четыре": 4, "четырех": 4, "четырем": 4, "четырьмя": 4, "пять": 5, "пяти": 5, "пятью": 5,
    "шесть": 6, "шести": 6, "шестью": 6, "семь": 7, "семи": 7, "восемь": 8, "восьми": 8, "восемью": 8,
    "девять": 9, "девяти": 9, "девятью": 9, "десять": 10, "десяти": 10, "десятью": 10,
    "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13, "четырнадцать": 14, "пятнадцать": 15,
    "шестнадцать": 16, "семнадцать": 17, "восемнадцать": 18, "девятнадцать": 19, "двадцать": 20,
    "тридцать": 30, "сорок": 40, "сорока": 40, "пятьдесят": 50, "шестьдесят": 60, "семьдесят": 70,
    "восемьдесят": 80, "девяносто": 90, "девяноста": 90, "сто": 100, "ста": 100, "двести": 200,
    "триста": 300, "четыреста": 400, "пятьсот": 500, "тысяча": 1000, "тысячи": 1000, "тысячу": 1000,
    "тысяч": 1000, "тысячей": 1000, "миллион": 10**6, "миллиона": 10**6, "миллионов": 10**6, "дюжина": 12,
}  # fmt: skip
for _word, _value in list(_RU_STEMS.items()):  # "-надцать"/"-дцать": also their oblique forms (-и, -ью)
    if _word.endswith("дцать"):
        _RU_STEMS[_word[:-1] + "и"] = _value
        _RU_STEMS[_word[:-1] + "ью"] = _value
_ONLY_IN = {"once": "es", "ten": "en"}  # "once" is English too, "ten" is Spanish too ("ten en cuenta")
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class Figure:
    """One number as written (`raw`) and as read (`value`; None: it cannot be read unambiguously)."""

    raw: str
    value: Decimal | None
    kind: Kind = "number"
    word: bool = False  # written as a word ("seis")
    span: tuple[int, int] = (0, 0)  # where it is in the NFKC form of the text


@dataclass(frozen=True, slots=True)
class Figures:
    """The numbers deterministic code produced, by kind, and those a text must state (`required`)."""

    money: frozenset[Decimal] = frozenset()
    percent: frozenset[Decimal] = frozenset()
    number: frozenset[Decimal] = frozenset()  # counts and other plain numbers
    required: frozenset[Decimal] = frozenset()
    currency: str = "ARS"
    everything: frozenset[Decimal] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "everything", self.money | self.percent | self.number)

    @classmethod
    def of(
        cls,
        *,
        money: Iterable[Decimal | int] = (),
        percent: Iterable[Decimal | int | None] = (),
        number: Iterable[Decimal | int] = (),
        required: Iterable[Decimal | int] = (),
        currency: str = "ARS",
    ) -> Figures:
        def norm(values: Iterable[Decimal | int | None]) -> frozenset[Decimal]:
            return frozenset(Decimal(v).normalize() for v in values if v is not None)

        return cls(norm(money), norm(percent), norm(number), norm(required), currency.upper())

    def __or__(self, other: Figures) -> Figures:
        return Figures(
            self.money | other.money,
            self.percent | other.percent,
            self.number | other.number,
            self.required | other.required,
            self.currency,
        )


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(" " if ch in _SPACES else ch for ch in text)


def _grouped(groups: list[str]) -> bool:
    """Thousands groups: 1-3 digits first (no leading zero unless it is "0"), then exactly 3 each."""
    head, rest = groups[0], groups[1:]
    return 1 <= len(head) <= 3 and not (head.startswith("0") and head != "0") and all(len(g) == 3 for g in rest)


def read_number(raw: str, language: str = "es") -> Decimal | None:
    """The value of one token as a reader of `language` takes it; None when it is malformed."""
    text = _normalise(raw)
    marks = [ch for ch in text if ch in ".,  "]
    groups = re.split(r"[., ]", text)
    if not all(g.isdigit() for g in groups):
        return None
    integer: list[str]
    decimals = ""
    kinds = set(marks)
    if not marks:
        integer = groups
    elif len(kinds) > 1:
        last = marks[-1]
        if last == " " or last in marks[:-1] or len(set(marks[:-1])) != 1:
            return None
        integer, decimals = groups[:-1], groups[-1]
        if not _grouped(integer):
            return None
    elif marks[0] == " " or len(marks) > 1:
        integer = groups
        if not _grouped(integer):
            return None
    else:
        mark, (head, tail) = marks[0], groups
        decimal_mark = len(tail) != 3 or len(head) > 3 or (head.startswith("0"))
        if not decimal_mark:  # "1.500" / "1,500": as the language writes numbers
            thousands = "," if language[:2].lower() == "en" else "."
            decimal_mark = mark != thousands
        integer, decimals = ([head], tail) if decimal_mark else ([head, tail], "")
    digits = "".join(integer) + ("." + decimals if decimals else "")
    try:
        return Decimal(digits).normalize()
    except InvalidOperation:  # pragma: no cover - the groups are digits
        return None


def _word_values(language: str) -> dict[str, int]:
    lang = language[:2].lower()
    words: dict[str, int] = {}
    for table in (_WORDS_ES, _WORDS_EN, _RU_STEMS):
        words.update(table)
    for word, only in _ONLY_IN.items():
        if lang != only:
            words.pop(word, None)
    return words


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower().replace("ё", "е"))
    return "".join(ch for ch in text if not unicodedata.combining(ch) or ch == "\u0306")


def find_figures(text: str, language: str = "es") -> list[Figure]:
    """Every number the text states (digits and number words), with its kind."""
    prepared = _normalise(text)
    lowered = prepared.lower()
    found: list[Figure] = []
    taken: list[tuple[int, int]] = []  # the spans of digit numbers with their multiplier ("150 mil")
    for match in _TOKEN.finditer(prepared):
        raw = match.group(0).strip()
        value = read_number(raw, language)
        after = lowered[match.end() :]
        end = match.end()
        if value is not None:
            for pattern, factor in _MULTIPLIERS:
                multiplied = pattern.match(after)
                if multiplied:
                    value, end = (value * factor).normalize(), end + multiplied.end()
                    raw = prepared[match.start() : end].strip()
                    break
        taken.append((match.start(), end))
        kind: Kind = "number"
        if _PERCENT_AFTER.match(lowered[end:]):
            kind = "percent"
        elif _MONEY_BEFORE.search(lowered[max(0, match.start() - 8) : match.start()]) or _MONEY_AFTER.match(
            lowered[end:]
        ):
            kind = "money"
        found.append(Figure(raw, value, kind, span=(match.start(), end)))
    words = _word_values(language)
    previous = ""
    for match in _WORD.finditer(prepared):
        word = _fold(match.group(0))
        if any(start <= match.start() < end for start, end in taken):
            previous = word
            continue
        number = words.get(word)
        if number is not None and not (word == "ciento" and previous == "por"):  # "48 por ciento"
            found.append(Figure(word, Decimal(number), "number", word=True, span=match.span()))
        previous = word
    return found


def without_figures(text: str, figures: Figures, language: str = "es") -> str:
    """The text (NFKC) with every allowed number blanked out: what other checks should see, so that a plan's
    `7 559 496.27` is not taken for a phone number while an invented number still is."""
    prepared = _normalise(text)
    for figure in sorted(find_figures(text, language), key=lambda f: -f.span[0]):
        if figure.value is not None and figure.value in figures.everything and not figure.word:
            start, end = figure.span
            prepared = prepared[:start] + "#" + prepared[end:]
    return prepared


def foreign_currencies(text: str, currency: str) -> list[str]:
    """The marks of other currencies than `currency` the text holds (`US$`, `€`, `dólares`…)."""
    prepared = _normalise(text)
    found: list[str] = []
    for code, pattern in _CURRENCIES.items():
        if code == currency.upper():
            continue
        found.extend(match.group(0) for match in pattern.finditer(prepared))
    return list(dict.fromkeys(found))


def check_figures(text: str, figures: Figures, *, language: str = "es") -> list[str]:
    """Reasons (empty: the text passes): `figure:malformed:<raw>`, `figure:unknown:<raw>` (a number that is
    not among the allowed ones of its kind), `figure:missing:<value>` (a required number the text does not
    state), `figure:currency:<mark>` (another currency)."""
    reasons: list[str] = []
    stated: set[Decimal] = set()
    for figure in find_figures(text, language):
        if figure.value is None:
            reasons.append(f"figure:malformed:{figure.raw[:40]}")
            continue
        stated.add(figure.value)
        allowed = {"money": figures.money, "percent": figures.percent}.get(figure.kind, figures.everything)
        if figure.value not in allowed:
            reasons.append(f"figure:unknown:{figure.raw[:40]}")
    reasons += [f"figure:missing:{value:f}" for value in sorted(figures.required) if value not in stated]
    reasons += [f"figure:currency:{mark[:20]}" for mark in foreign_currencies(text, figures.currency)]
    return list(dict.fromkeys(reasons))
