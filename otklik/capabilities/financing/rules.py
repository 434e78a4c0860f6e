"""The financing simulator's rules (issue 17): pure, exact, `Decimal` only — no float anywhere.

- money is rounded ROUND_HALF_UP to 0.01 at every step the rules name; intermediate math runs in a local
  decimal context of `PRECISION` significant digits (also ROUND_HALF_UP);
- a band with `tna`: i = tna / 1200, v = iva_on_interest / 100, j = i·(1 + v), payment
  A = round(F·j / (1 − (1 + j)^−n)) (round(F / n) when j = 0); each row's interest = round(balance·i),
  IVA = round(interest·v), principal = A − interest − IVA; the last row takes the remaining balance;
- a band with `coefficient` c: total = round(F·c), payment = round(total / n), the last payment is the rest;
- refusals carry one of four codes: `amount`, `down_payment`, `installments`, `min_installment`.

The rates table is parsed from YAML or JSON (the same keys) by `parse_table`, which lists every problem at
once (`RatesInvalid.errors`) and never returns a partial table. See docs/financing.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Any, Literal

import yaml

from otklik.core import safe_yaml
from otklik.core.errors import InvalidInput

PRECISION = 28  # significant digits of intermediate results (the rules ask for at least 28)
CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)
MAX_AMOUNT = Decimal("999999999999.99")  # 12 integer digits: far above any sale, far below the precision
MAX_INSTALLMENTS = 120  # the largest `max_installments` a table may set
MAX_TNA = Decimal(1000)  # percent a year
MAX_COEFFICIENT = Decimal(100)
MAX_IVA = Decimal(100)
MAX_TABLE_BYTES = 64 * 1024
MAX_TABLE_DEPTH = 6
MAX_BANDS = 120
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
KEYS = ("currency", "iva_on_interest", "max_installments", "min_installment", "suggested", "plans")
BAND_KEYS = ("from", "to", "tna", "coefficient")

Code = Literal["amount", "down_payment", "installments", "min_installment"]


def _context() -> Context:
    return Context(prec=PRECISION, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> Decimal:
    """Round to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class Refused(InvalidInput):
    """The simulator refuses the input; `code` is one of `amount`, `down_payment`, `installments`,
    `min_installment`; `user_message` names the limit."""

    def __init__(self, code: Code, message: str, *, largest: int | None = None) -> None:
        super().__init__(message)
        self.code: Code = code
        self.largest = largest  # min_installment: the largest count that passes (None: none does)

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.user_message}


class RatesInvalid(InvalidInput):
    """A rates table is refused; `errors` lists every problem (the message joins them)."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("the rates table is invalid: " + "; ".join(self.errors), details=list(self.errors))


@dataclass(frozen=True, slots=True)
class Band:
    start: int  # `from`
    end: int  # `to`
    tna: Decimal | None = None
    coefficient: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        rate = {"tna": self.tna} if self.tna is not None else {"coefficient": self.coefficient}
        return {"from": self.start, "to": self.end, **rate}


@dataclass(frozen=True, slots=True)
class RatesTable:
    currency: str
    iva_on_interest: Decimal
    max_installments: int
    min_installment: Decimal
    suggested: tuple[int, ...]
    plans: tuple[Band, ...]

    def band_for(self, n: int) -> Band | None:
        return next((b for b in self.plans if b.start <= n <= self.end_of(b)), None)

    def end_of(self, band: Band) -> int:
        return min(band.end, self.max_installments)

    def counts(self) -> list[int]:
        """Every installment count some band offers, ascending."""
        return sorted({n for b in self.plans for n in range(b.start, self.end_of(b) + 1)})

    def to_dict(self) -> dict[str, Any]:
        """The table's document (numbers as `Decimal`/`int`); `dump_table` writes it as YAML or JSON."""
        return {
            "currency": self.currency,
            "iva_on_interest": self.iva_on_interest,
            "max_installments": self.max_installments,
            "min_installment": self.min_installment,
            "suggested": list(self.suggested),
            "plans": [b.to_dict() for b in self.plans],
        }


@dataclass(frozen=True, slots=True)
class Row:
    n: int
    payment: Decimal
    interest: Decimal | None = None  # None on a coefficient plan's rows
    iva: Decimal | None = None
    principal: Decimal | None = None
    balance: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        if self.interest is None:
            return {"n": self.n, "payment": _m(self.payment)}
        assert self.iva is not None and self.principal is not None and self.balance is not None
        return {
            "n": self.n,
            "payment": _m(self.payment),
            "interest": _m(self.interest),
            "iva": _m(self.iva),
            "principal": _m(self.principal),
            "balance": _m(self.balance),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    currency: str
    amount: Decimal
    down_payment: Decimal
    financed: Decimal
    installments: int
    installment: Decimal  # the regular payment
    last_installment: Decimal
    total: Decimal
    interest: Decimal
    iva: Decimal
    tna: Decimal | None
    tem: Decimal | None
    tea: Decimal | None
    cftea: Decimal | None
    schedule: tuple[Row, ...]

    @property
    def kind(self) -> Literal["tna", "coefficient"]:
        return "coefficient" if self.tna is None else "tna"

    def numbers(self) -> set[Decimal]:
        """Every figure of the plan (for checking a text that quotes it)."""
        found = {self.amount, self.down_payment, self.financed, self.installment, self.last_installment}
        found |= {self.total, self.interest, self.iva, Decimal(self.installments)}
        found |= {r for r in (self.tna, self.tem, self.tea, self.cftea) if r is not None}
        return found

    def to_json(self) -> dict[str, Any]:
        """The issue's JSON shape: money as strings with two decimals, rates as strings or null."""
        return {
            "amount": _m(self.amount),
            "down_payment": _m(self.down_payment),
            "financed": _m(self.financed),
            "installments": self.installments,
            "installment": _m(self.installment),
            "last_installment": _m(self.last_installment),
            "total": _m(self.total),
            "interest": _m(self.interest),
            "iva": _m(self.iva),
            "tna": _r(self.tna),
            "tem": _r(self.tem),
            "tea": _r(self.tea),
            "cftea": _r(self.cftea),
            "schedule": [r.to_json() for r in self.schedule],
        }


def _m(value: Decimal) -> str:
    return f"{money(value):f}"


def _r(value: Decimal | None) -> str | None:
    return None if value is None else f"{money(value):f}"


# --- input --------------------------------------------------------------------------------------------


def to_decimal(value: object, code: Code, field: str) -> Decimal:
    """A money value from an int, a `Decimal` or a text like "150000.00"; never a float."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise Refused(code, f"{field} must be a number written with a dot for decimals, e.g. 150000.00")
    try:
        number = value if isinstance(value, Decimal) else Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise Refused(code, f"{field} must be a number written with a dot for decimals, e.g. 150000.00") from None
    if not number.is_finite():
        raise Refused(code, f"{field} must be a finite number")
    if number.copy_abs() > MAX_AMOUNT:
        raise Refused(code, f"{field} must be at most {MAX_AMOUNT:f}")
    if number != number.quantize(CENT, rounding=ROUND_HALF_UP, context=_context()):
        raise Refused(code, f"{field} may have at most two decimals (cents)")
    return number


# --- the rules ----------------------------------------------------------------------------------------


def simulate(table: RatesTable, amount: object, installments: object, down_payment: object = 0) -> Plan:
    """The plan for `amount` in `installments` payments, or `Refused`."""
    amount_d = to_decimal(amount, "amount", "amount")
    if amount_d <= 0:
        raise Refused("amount", "the amount must be greater than 0")
    down = to_decimal(down_payment, "down_payment", "down_payment")
    if down < 0:
        raise Refused("down_payment", "the down payment cannot be negative")
    if down >= amount_d:
        raise Refused("down_payment", f"the down payment must be less than the amount ({money(amount_d):f})")
    n = _count(installments, table)
    band = table.band_for(n)
    if band is None:
        offered = ranges(table.counts())
        raise Refused("installments", f"{n} installments are not offered; the plans offered are {offered}")
    plan = _compute(table, band, amount_d, down, n)
    lowest = min(plan.installment, plan.last_installment)
    if lowest < _floor(table):
        largest = largest_passing(table, amount_d, down)
        tail = (
            f"the most installments possible for this amount is {largest}"
            if largest is not None
            else "no plan is possible for this amount"
        )
        raise Refused(
            "min_installment",
            f"a payment of {lowest:f} is below the minimum installment of {_floor(table):f}; {tail}",
            largest=largest,
        )
    return plan


def largest_passing(table: RatesTable, amount: Decimal, down: Decimal) -> int | None:
    """The largest offered count whose every payment is at least `min_installment` (None: no count does)."""
    for n in reversed(table.counts()):
        band = table.band_for(n)
        assert band is not None
        plan = _compute(table, band, amount, down, n)
        if min(plan.installment, plan.last_installment) >= _floor(table):
            return n
    return None


def _floor(table: RatesTable) -> Decimal:
    """The smallest payment allowed: `min_installment`, and never less than one cent (a tiny amount in
    many installments would otherwise round to payments of 0.00 or a negative last one)."""
    return max(money(table.min_installment), CENT)


def suggested_plans(table: RatesTable, amount: object, down_payment: object = 0) -> list[Plan | Refused]:
    """Each suggested count's plan or its refusal, in the table's order. An invalid amount or down payment
    is raised (it refuses every plan alike)."""
    amount_d = to_decimal(amount, "amount", "amount")
    if amount_d <= 0:
        raise Refused("amount", "the amount must be greater than 0")
    out: list[Plan | Refused] = []
    for n in table.suggested:
        try:
            out.append(simulate(table, amount, n, down_payment))
        except Refused as exc:
            if exc.code in ("amount", "down_payment"):
                raise
            out.append(exc)
    return out


def _count(value: object, table: RatesTable) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise Refused("installments", "the number of installments must be a whole number")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise Refused("installments", "the number of installments must be a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise Refused("installments", "the number of installments must be a whole number")
    if number < 1:
        raise Refused("installments", "the number of installments must be at least 1")
    if number > table.max_installments:
        raise Refused("installments", f"the number of installments must be at most {table.max_installments}")
    return int(number)


def _compute(table: RatesTable, band: Band, amount: Decimal, down: Decimal, n: int) -> Plan:
    with localcontext(_context()):
        financed = amount - down
        if band.coefficient is not None:
            return _by_coefficient(table, band.coefficient, amount, down, financed, n)
        assert band.tna is not None
        return _by_tna(table, band.tna, amount, down, financed, n)


def _by_coefficient(table: RatesTable, c: Decimal, amount: Decimal, down: Decimal, financed: Decimal, n: int) -> Plan:
    total = money(financed * c)
    payment = money(total / n)
    last = total - (n - 1) * payment
    rows = tuple(Row(k, payment if k < n else last) for k in range(1, n + 1))
    return Plan(
        table.currency, amount, down, financed, n, payment, last, total, total - financed, ZERO,
        None, None, None, None, rows,
    )  # fmt: skip


def _by_tna(table: RatesTable, tna: Decimal, amount: Decimal, down: Decimal, financed: Decimal, n: int) -> Plan:
    i = tna / 1200
    v = table.iva_on_interest / 100
    j = i * (1 + v)
    payment = money(financed / n) if j == 0 else money(financed * j / (1 - (1 + j) ** -n))
    rows = _amortize(financed, payment, i, v, n)
    # Each payment is rounded to the cent, and at a high rate over many months the cents' drift compounds into
    # the last payment, which can fall below the floor or even below zero (F 10.00 at TNA 146.41 % with
    # IVA 27 % in 32 payments: -0.55). Then the regular payment goes down a cent at a time until the last one
    # is at least the floor: the last payment takes the drift, as a lender's schedule does.
    floor = _floor(table)
    steps = 0
    while n > 1 and rows[-1].payment < floor and payment > floor and steps < MAX_CENT_STEPS:
        payment -= CENT
        steps += 1
        rows = _amortize(financed, payment, i, v, n)
    return Plan(
        currency=table.currency,
        amount=amount,
        down_payment=down,
        financed=financed,
        installments=n,
        installment=payment if n > 1 else rows[-1].payment,
        last_installment=rows[-1].payment,
        total=sum((r.payment for r in rows), ZERO),
        interest=sum((r.interest or ZERO for r in rows), ZERO),
        iva=sum((r.iva or ZERO for r in rows), ZERO),
        tna=money(tna),
        tem=money(i * 100),
        tea=money(((1 + i) ** 12 - 1) * 100),
        cftea=money(((1 + j) ** 12 - 1) * 100),
        schedule=tuple(rows),
    )


#: How far `_by_tna` may lower the regular payment to keep the last one above the floor (then: refused).
MAX_CENT_STEPS = 500


def _amortize(financed: Decimal, payment: Decimal, i: Decimal, v: Decimal, n: int) -> list[Row]:
    """The French schedule for a regular `payment`: interest and its IVA rounded each month, the last payment
    whatever is left."""
    balance = financed
    rows: list[Row] = []
    for k in range(1, n + 1):
        interest = money(balance * i)
        iva = money(interest * v)
        if k < n:
            principal = payment - interest - iva
            pay = payment
        else:
            principal = balance
            pay = principal + interest + iva
        balance -= principal
        rows.append(Row(k, pay, interest, iva, principal, balance))
    return rows


def ranges(counts: Iterable[int]) -> str:
    """[1, 2, 3, 7, 8, 18] -> "1-3, 7-8, 18"."""
    spans: list[list[int]] = []
    for n in counts:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans) or "none"


# --- the rates table ----------------------------------------------------------------------------------


class _DecimalLoader(safe_yaml.LOADER):  # type: ignore[misc]
    """The safe loader, with YAML floats read as `Decimal` from their text (never through a float)."""


def _decimal_float(loader: Any, node: yaml.ScalarNode) -> Decimal | str:
    text = str(loader.construct_scalar(node)).replace("_", "").lower()
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text  # ".inf", ".nan", "1:30": refused as text where a number belongs
    return number if number.is_finite() else text


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal_float)


def parse_table(source: str | bytes) -> RatesTable:
    """A rates table from YAML or JSON text; `RatesInvalid` lists every problem."""
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            raise RatesInvalid(["the file is not UTF-8 text"]) from None
    source = source.removeprefix("\ufeff")
    size = len(source.encode("utf-8", "replace"))
    if size > MAX_TABLE_BYTES:
        raise RatesInvalid([f"the file is {size} bytes; the limit is {MAX_TABLE_BYTES} bytes"])
    if not source.strip():
        raise RatesInvalid(["the file is empty"])
    try:
        if source.lstrip().startswith(("{", "[")):
            data = _load_json(source)
        else:
            data = safe_yaml.load(source, max_bytes=MAX_TABLE_BYTES, max_depth=MAX_TABLE_DEPTH, loader=_DecimalLoader)
    except safe_yaml.UnsafeYaml as exc:
        raise RatesInvalid([str(exc)]) from None
    except yaml.YAMLError as exc:
        raise RatesInvalid([safe_yaml.syntax_message(exc)]) from None
    return validate_table(data)


def _load_json(source: str) -> Any:
    control = _CONTROL.search(source)
    if control:
        raise safe_yaml.UnsafeYaml(f"binary data or a control character (U+{ord(control.group()):04X}) is not allowed")
    depth = deepest = 0
    in_string = escaped = False
    for ch in source:  # nesting measured before the decoder recurses into it
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_TABLE_DEPTH:
        raise safe_yaml.UnsafeYaml(f"nested deeper than {MAX_TABLE_DEPTH} levels")

    def no_constant(name: str) -> Any:
        return name  # NaN, Infinity: text where a number belongs

    try:
        return json.loads(source, parse_float=_json_decimal, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise RatesInvalid([f"JSON syntax error: line {exc.lineno}, column {exc.colno}: {exc.msg}"]) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise RatesInvalid([f"JSON: {exc}"]) from None


def _json_decimal(text: str) -> Decimal | str:
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def validate_table(data: Any) -> RatesTable:
    """A `RatesTable` from a loaded document, or `RatesInvalid` with every problem found."""
    errors: list[str] = []
    if not isinstance(data, Mapping):
        raise RatesInvalid(["the table must be a mapping with the keys " + ", ".join(KEYS)])
    for key in KEYS:
        if key not in data:
            errors.append(f"{key}: missing")
    errors.extend(f"{key}: unknown key (the keys are {', '.join(KEYS)})" for key in data if key not in KEYS)

    currency = data.get("currency")
    if "currency" in data and (not isinstance(currency, str) or not currency.isascii() or not currency.isalpha()
                               or len(currency) != 3):  # fmt: skip
        errors.append(f"currency: must be a three-letter code such as ARS, not {_show(currency)}")
    iva = _number(data, "iva_on_interest", errors, low=ZERO, high=MAX_IVA)
    max_n = _whole(data, "max_installments", errors, low=1, high=MAX_INSTALLMENTS)
    minimum = _number(data, "min_installment", errors, low=ZERO, high=MAX_AMOUNT)
    if minimum is not None and minimum != money(minimum):
        errors.append("min_installment: may have at most two decimals (cents)")

    bands: list[Band] = []
    spans: list[tuple[int, int]] = []  # every band with a usable from/to, even if its rate is wrong
    raw_plans = data.get("plans")
    if "plans" in data:
        if not isinstance(raw_plans, list) or not raw_plans:
            errors.append("plans: must be a non-empty list of bands like {from: 1, to: 3, tna: 0}")
        elif len(raw_plans) > MAX_BANDS:
            errors.append(f"plans: at most {MAX_BANDS} bands")
        else:
            for index, raw in enumerate(raw_plans):
                band = _band(raw, f"plans[{index}]", max_n, errors, spans)
                if band is not None:
                    bands.append(band)
            spans.sort()
            for index, (b0, b1) in enumerate(spans):
                for a0, a1 in spans[:index]:
                    if b0 <= a1:
                        errors.append(
                            f"plans: the bands {a0}-{a1} and {b0}-{b1} overlap "
                            f"({b0}-{min(a1, b1)} would have two rates)"
                        )
            bands.sort(key=lambda b: b.start)

    suggested: list[int] = []
    raw_suggested = data.get("suggested")
    if "suggested" in data:
        if not isinstance(raw_suggested, list):
            errors.append("suggested: must be a list of installment counts, e.g. [3, 6, 9, 12]")
        elif len(raw_suggested) > MAX_INSTALLMENTS:
            errors.append(f"suggested: at most {MAX_INSTALLMENTS} counts")
        else:
            for index, raw in enumerate(raw_suggested):
                n = _as_whole(raw)
                if n is None:
                    errors.append(f"suggested[{index}]: must be a whole number, not {_show(raw)}")
                elif n in suggested:
                    errors.append(f"suggested[{index}]: {n} is listed twice")
                elif max_n is not None and not 1 <= n <= max_n:
                    errors.append(f"suggested[{index}]: {n} is outside 1-{max_n} (max_installments)")
                elif isinstance(raw_plans, list) and not any(a <= n <= b for a, b in spans):
                    errors.append(f"suggested[{index}]: {n} is in no band of plans")
                else:
                    suggested.append(n)

    if errors:
        raise RatesInvalid(errors)
    assert isinstance(currency, str) and iva is not None and max_n is not None and minimum is not None
    return RatesTable(currency.upper(), iva, max_n, minimum, tuple(suggested), tuple(bands))


def _band(raw: Any, where: str, max_n: int | None, errors: list[str], spans: list[tuple[int, int]]) -> Band | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: must be a mapping like {{from: 1, to: 3, tna: 0}}, not {_show(raw)}")
        return None
    before = len(errors)
    for key in raw:
        if key not in BAND_KEYS:
            errors.append(f"{where}.{key}: unknown key (a band has from, to and tna or coefficient)")
    start = _whole(raw, "from", errors, low=1, high=MAX_INSTALLMENTS, where=where)
    end = _whole(raw, "to", errors, low=1, high=MAX_INSTALLMENTS, where=where)
    if start is not None and end is not None and start > end:
        errors.append(f"{where}: from ({start}) is greater than to ({end})")
    elif start is not None and end is not None:
        spans.append((start, end))
    if max_n is not None and end is not None and end > max_n:
        errors.append(f"{where}: to ({end}) is beyond max_installments ({max_n})")
    tna = coefficient = None
    if ("tna" in raw) == ("coefficient" in raw):
        errors.append(f"{where}: give exactly one of tna or coefficient")
    elif "tna" in raw:
        tna = _number(raw, "tna", errors, low=ZERO, high=MAX_TNA, where=where)
    else:
        coefficient = _number(raw, "coefficient", errors, low=ONE, high=MAX_COEFFICIENT, where=where)
    if len(errors) > before or start is None or end is None:
        return None
    return Band(start, end, tna, coefficient)


def _number(
    data: Mapping[str, Any], key: str, errors: list[str], *, low: Decimal, high: Decimal, where: str = ""
) -> Decimal | None:
    if key not in data:
        if where:
            errors.append(f"{where}.{key}: missing")
        return None
    raw = data[key]
    name = f"{where}.{key}" if where else key
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
        errors.append(f"{name}: must be a number, not {_show(raw)}")
        return None
    number = Decimal(raw)
    if number < 0:
        errors.append(f"{name}: cannot be negative ({number:f})")
        return None
    if number < low:
        errors.append(f"{name}: must be at least {low:f} (got {number:f})")
        return None
    if number > high:
        errors.append(f"{name}: must be at most {high:f} (got {number:f})")
        return None
    return number


def _whole(data: Mapping[str, Any], key: str, errors: list[str], *, low: int, high: int, where: str = "") -> int | None:
    name = f"{where}.{key}" if where else key
    if key not in data:
        if where:
            errors.append(f"{name}: missing")
        return None
    n = _as_whole(data[key])
    if n is None:
        errors.append(f"{name}: must be a whole number, not {_show(data[key])}")
        return None
    if not low <= n <= high:
        errors.append(f"{name}: must be between {low} and {high} (got {n})")
        return None
    return n


def _as_whole(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, Decimal) and raw == raw.to_integral_value():
        return int(raw)
    return None


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else f"{value}"
    if isinstance(value, Decimal):
        text = f"{value:f}"
    elif isinstance(value, list | dict):
        text = "a list" if isinstance(value, list) else "a mapping"
    elif value is None:
        text = "nothing"
    return text if len(text) <= 40 else text[:37] + "…"


def dump_table(table: RatesTable, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The table as a file: YAML in the issue's layout (one band per line), or JSON with numbers as numbers."""
    if fmt == "json":
        text = json.dumps(_plain(table.to_dict()), ensure_ascii=False, indent=2)
        return re.sub(f'"{_MARK}([0-9.]+){_MARK}"', r"\1", text) + "\n"
    lines = [
        f"currency: {table.currency}",
        f"iva_on_interest: {_num(table.iva_on_interest)}",
        f"max_installments: {table.max_installments}",
        f"min_installment: {_num(table.min_installment)}",
        f"suggested: [{', '.join(str(n) for n in table.suggested)}]",
        "plans:",
    ]
    for b in table.plans:
        rate = f"tna: {_num(b.tna)}" if b.tna is not None else f"coefficient: {_num(b.coefficient)}"
        lines.append(f"  - {{from: {b.start}, to: {b.end}, {rate}}}")
    return "\n".join(lines) + "\n"


def _num(value: Decimal | None) -> str:
    """A number as YAML/JSON text without exponent: 48, 62.5, 1.95."""
    assert value is not None
    text = f"{value.normalize():f}" if value != value.to_integral_value() else f"{int(value)}"
    return text


_MARK = "@@decimal@@"


def _plain(value: Any) -> Any:
    """Decimals become marked strings that `dump_table` turns back into bare JSON numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return f"{_MARK}{_num(value)}{_MARK}"
    return value


def format_money(value: Decimal, locale: str = "es-AR") -> str:
    """`$ 29.401,58` for es-AR (thousands with dots, decimal comma); `29 401.58` otherwise."""
    text = f"{money(value):,.2f}"
    if locale.lower().startswith("es"):
        return "$ " + text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text.replace(",", " ")
