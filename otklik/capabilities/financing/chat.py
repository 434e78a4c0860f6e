"""The simulator in the conversation, pure: what the buyer asked (an installment count, an amount, a plan
button) and the reply texts filled with the simulator's figures in the pack's locale (es-AR: `$ 29.401,58`).

Every figure in a reply comes from `rules.simulate`; nothing is computed here but formatting. The
`*_figures` functions list the numbers a reply may state (for the guardrail on an LLM's phrasing of it,
`otklik.core.figures`): each template's numbers are among them (a test checks it).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from otklik.capabilities.financing.rules import Plan, RatesTable, Refused, format_money, money, ranges
from otklik.core.figures import Figures

PLAN_PAYLOAD = "fin:"  # a plan button: "fin:6" chooses the plan in 6 installments
_UNITS = r"(?:cuotas?|pagos?|mes(?:es)?|veces|installments?|payments?|months?|платеж\w*|месяц\w*)"
_NUMBER = re.compile(
    r"(?P<cur>\$|ars\s*)?\s*"
    r"(?P<num>\d{1,3}(?:[.\s]\d{3})+(?:,\d{1,2})?|\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
    r"(?!\d)\s*(?P<mul>mil(?:lones|lón|lon)?\b|millones\b|k\b|lucas?\b)?\s*(?P<unit>" + _UNITS + r"\b)?"
)
_WORDS = {
    "una": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8,
    "nueve": 9, "diez": 10, "once": 11, "doce": 12, "quince": 15, "dieciocho": 18, "veinticuatro": 24,
}  # fmt: skip
_WORD_COUNT = re.compile(r"\b(" + "|".join(_WORDS) + r")\s+(?=" + _UNITS + r"\b)")
_COUNT_BEFORE = re.compile(r"(?:\ben|\ba|\bde|\bin|\bx|\bв|\bна)\s*$")
_TOPIC = re.compile(r"cuota|financ|plan|interes|tasa|pagar|install|financ|рассроч")
MAX_AMOUNT_TEXT = 200


@dataclass(frozen=True, slots=True)
class Asked:
    installments: int | None = None
    amount: Decimal | None = None
    chosen: int | None = None  # a plan button was pressed
    on_topic: bool = False  # the text talks about installments/financing (no figure needed)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in text if not unicodedata.combining(ch) or ch == "\u0306")


def _decimal(raw: str) -> Decimal | None:
    """'150.000' -> 150000, '150.000,50' -> 150000.50, '29401.58' -> 29401.58, '150,000' -> 150000."""
    text = raw.replace(" ", "")
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?", text):
        text = text.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?", text):
        text = text.replace(",", "")
    else:
        text = text.replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def read(text: str | None, payload: str | None = None) -> Asked:
    """What a buyer's message asks of the simulator."""
    if payload and payload.startswith(PLAN_PAYLOAD) and payload[len(PLAN_PAYLOAD) :].isdigit():
        return Asked(chosen=int(payload[len(PLAN_PAYLOAD) :][:3]))
    folded = _fold(text or "")[:MAX_AMOUNT_TEXT]
    folded = _WORD_COUNT.sub(lambda m: f"{_WORDS[m.group(1)]} ", folded)
    installments: int | None = None
    amount: Decimal | None = None
    for match in _NUMBER.finditer(folded):
        value = _decimal(match.group("num"))
        if value is None:
            continue
        mul = (match.group("mul") or "").strip()
        if mul.startswith("mill"):
            value *= 1_000_000
        elif mul:
            value *= 1000
        integral = value == value.to_integral_value()
        before = folded[: match.start()]
        if match.group("unit") and integral and installments is None and not mul and not match.group("cur"):
            installments = int(value)
        elif match.group("cur") or mul or value >= 1000 or not integral:
            amount = amount if amount is not None else value
        elif _COUNT_BEFORE.search(before) and installments is None:
            installments = int(value)
        elif installments is None and amount is None and value <= 120:
            installments = int(value)  # "¿y 10?": a bare small number after the plans is a count
    return Asked(installments, amount, None, bool(_TOPIC.search(folded)))


# --- replies ------------------------------------------------------------------------------------------

TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "plans": "Para un monto de {amount}, estos son los planes:\n{lines}\nElegí uno o preguntame por otra cantidad de cuotas (de 1 a {max}).",
        "plan_line": "• {n} cuotas de {payment} (total {total})",
        "plan_line_last": "• {n} cuotas: {regular_n} de {payment} y una última de {last} (total {total})",
        "button": "{n} × {payment} · total {total}",
        "none_fit": "Para un monto de {amount} no hay cuotas que lleguen a la cuota mínima de {minimum}.",
        "one": "En {n} cuotas: {n} pagos de {payment}; total {total}{rates}.",
        "one_last": "En {n} cuotas: {regular_n} pagos de {payment} y uno último de {last}; total {total}{rates}.",
        "single": "En 1 pago: {total}{rates}.",
        "rates": " (TNA {tna} %, TEA {tea} %, CFTEA {cftea} %)",
        "choose": "Elegir {n} cuotas",
        "chosen": "Anoté el plan de {n} cuotas de {payment} (total {total}) para un monto de {amount}.",
        "need_amount": "¿Sobre qué monto querés calcular las cuotas? Escribilo en pesos, por ejemplo 150.000.",
        "refused.installments": "No puedo calcular {n} cuotas: ofrecemos {offered} cuotas (como máximo {max}).",
        "refused.min_installment": "No puedo calcular {n} cuotas: la cuota mínima es {minimum}; para un monto de {amount} el máximo es {largest} cuotas.",
        "refused.min_installment_none": "No puedo calcular {n} cuotas: la cuota mínima es {minimum} y un monto de {amount} no alcanza para financiarlo.",
        "refused.amount": "El monto tiene que ser mayor que cero y de hasta dos decimales; escribilo en pesos, por ejemplo 150.000.",
        "refused.down_payment": "El anticipo tiene que ser menor que el monto.",
    },
    "en": {
        "plans": "For an amount of {amount}, these are the plans:\n{lines}\nPick one or ask me about another number of installments (1 to {max}).",
        "plan_line": "• {n} installments of {payment} (total {total})",
        "plan_line_last": "• {n} installments: {regular_n} of {payment} and a last one of {last} (total {total})",
        "button": "{n} × {payment} · total {total}",
        "none_fit": "For an amount of {amount} no plan reaches the minimum installment of {minimum}.",
        "one": "In {n} installments: {n} payments of {payment}; total {total}{rates}.",
        "one_last": "In {n} installments: {regular_n} payments of {payment} and a last one of {last}; total {total}{rates}.",
        "single": "In 1 payment: {total}{rates}.",
        "rates": " (TNA {tna} %, TEA {tea} %, CFTEA {cftea} %)",
        "choose": "Choose {n} installments",
        "chosen": "Noted: the plan of {n} installments of {payment} (total {total}) for an amount of {amount}.",
        "need_amount": "What amount should I compute the installments for? For example 150000.",
        "refused.installments": "I cannot compute {n} installments: we offer {offered} installments (at most {max}).",
        "refused.min_installment": "I cannot compute {n} installments: the minimum installment is {minimum}; for {amount} the most is {largest} installments.",
        "refused.min_installment_none": "I cannot compute {n} installments: the minimum installment is {minimum} and {amount} is too little to finance.",
        "refused.amount": "The amount must be greater than zero with at most two decimals, for example 150000.",
        "refused.down_payment": "The down payment must be less than the amount.",
    },
}


def _texts(language: str) -> dict[str, str]:
    return TEXTS.get(language[:2].lower(), TEXTS["es"] if language.lower().startswith("es") else TEXTS["en"])


def _money(value: Decimal, language: str) -> str:
    return format_money(value, "es-AR" if language.startswith("es") else "en")


def _percent(value: Decimal | None, language: str) -> str:
    text = f"{money(value or Decimal(0)):f}"
    return text.replace(".", ",") if language.startswith("es") else text


def _figures(plan: Plan, language: str) -> dict[str, Any]:
    return {
        "n": plan.installments,
        "regular_n": plan.installments - 1,
        "payment": _money(plan.installment, language),
        "last": _money(plan.last_installment, language),
        "total": _money(plan.total, language),
        "amount": _money(plan.amount, language),
    }


def plan_text(plan: Plan, language: str) -> str:
    t = _texts(language)
    figures = _figures(plan, language)
    rates = ""
    if plan.tna is not None:
        rates = t["rates"].format(
            tna=_percent(plan.tna, language), tea=_percent(plan.tea, language), cftea=_percent(plan.cftea, language)
        )
    if plan.installments == 1:
        return t["single"].format(rates=rates, **figures)
    key = "one" if plan.installment == plan.last_installment else "one_last"
    return t[key].format(rates=rates, **figures)


def plans_text(table: RatesTable, amount: Decimal, plans: list[Plan], language: str) -> str:
    t = _texts(language)
    if not plans:
        return t["none_fit"].format(amount=_money(amount, language), minimum=_money(table.min_installment, language))
    lines = []
    for plan in plans:
        key = "plan_line" if plan.installment == plan.last_installment else "plan_line_last"
        lines.append(t[key].format(**_figures(plan, language)))
    return t["plans"].format(amount=_money(amount, language), lines="\n".join(lines), max=table.max_installments)


def plan_button(plan: Plan, language: str) -> dict[str, str]:
    title = _texts(language)["button"].format(**_figures(plan, language))
    return {"title": title, "payload": f"{PLAN_PAYLOAD}{plan.installments}"}


def choose_button(plan: Plan, language: str) -> dict[str, str]:
    return {
        "title": _texts(language)["choose"].format(n=plan.installments),
        "payload": f"{PLAN_PAYLOAD}{plan.installments}",
    }


def chosen_text(plan: Plan, language: str) -> str:
    return _texts(language)["chosen"].format(**_figures(plan, language))


def refused_text(exc: Refused, table: RatesTable, amount: Decimal | None, n: object, language: str) -> str:
    """The refusal in the buyer's language, naming the limit (built from the table, not from the English
    message of the rules)."""
    t = _texts(language)
    minimum = _money(max(table.min_installment, Decimal("0.01")), language)
    shown_amount = _money(amount, language) if amount is not None else ""
    if exc.code == "min_installment":
        key = "refused.min_installment" if exc.largest is not None else "refused.min_installment_none"
        return t[key].format(n=n, minimum=minimum, amount=shown_amount, largest=exc.largest)
    if exc.code == "installments":
        offered = ranges(table.counts())
        return t["refused.installments"].format(n=n, offered=offered, max=table.max_installments)
    return t[f"refused.{exc.code}"]


def text(key: str, language: str) -> str:
    return _texts(language)[key]


# --- the figures a reply may state (the LLM guardrail) ------------------------------------------------


def _plan_numbers(plan: Plan) -> tuple[list[Decimal], list[Decimal | None], list[int]]:
    money_ = [plan.amount, plan.down_payment, plan.financed, plan.installment, plan.last_installment]
    money_ += [plan.total, plan.interest, plan.iva]
    return money_, [plan.tna, plan.tem, plan.tea, plan.cftea], [plan.installments, plan.installments - 1]


def plan_figures(plan: Plan) -> Figures:
    """One plan (`plan_text`, `chosen_text`): its money, rates and counts; the payment and the total must be
    stated."""
    money_, rates, counts = _plan_numbers(plan)
    return Figures.of(
        money=money_, percent=rates, number=counts, required=(plan.installment, plan.total), currency=plan.currency
    )


def plans_figures(table: RatesTable, amount: Decimal, plans: list[Plan]) -> Figures:
    """The suggested plans (`plans_text`): every plan's figures, the amount, the limits the text names; the
    amount and every plan's payment must be stated."""
    money_: list[Decimal] = [amount, table.min_installment]
    rates: list[Decimal | None] = []
    counts: list[int] = [1, table.max_installments]
    for plan in plans:
        m, r, c = _plan_numbers(plan)
        money_, rates, counts = money_ + m, rates + r, counts + c
    required = [amount, *(p.installment for p in plans)]
    return Figures.of(money=money_, percent=rates, number=counts, required=required, currency=table.currency)


def refused_figures(exc: Refused, table: RatesTable, amount: Decimal | None, n: object) -> Figures:
    """A refusal (`refused_text`): the count asked, the counts offered and the limit, the minimum payment."""
    counts = [*table.counts(), table.max_installments]
    if isinstance(n, int):
        counts.append(n)
    if exc.largest is not None:
        counts.append(exc.largest)
    minimum = max(table.min_installment, Decimal("0.01"))
    money_ = [minimum, *([amount] if amount is not None else [])]
    required: list[Decimal | int] = []
    if exc.code == "installments":
        required = [table.max_installments]
    elif exc.code == "min_installment":
        required = [minimum, *([exc.largest] if exc.largest is not None else [])]
    return Figures.of(money=money_, number=counts, required=required, currency=table.currency)


def plan_facts(plan: Plan, language: str) -> dict[str, str]:
    """More figures of a plan, formatted for the buyer's locale, that an LLM's phrasing may mention."""
    facts = {
        "amount": _money(plan.amount, language),
        "installments": str(plan.installments),
        "installment": _money(plan.installment, language),
        "last_installment": _money(plan.last_installment, language),
        "total": _money(plan.total, language),
        "interest": _money(plan.interest, language),
        "iva": _money(plan.iva, language),
    }
    if plan.down_payment:
        facts["down_payment"] = _money(plan.down_payment, language)
        facts["financed"] = _money(plan.financed, language)
    for name in ("tna", "tem", "tea", "cftea"):
        value = getattr(plan, name)
        if value is not None:
            facts[name] = f"{_percent(value, language)} %"
    return facts
