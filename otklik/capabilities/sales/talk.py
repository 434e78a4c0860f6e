"""Reading a buyer's sales message (Spanish, deterministic): what they want done and with which quantities.

`read(text)` → `Reading(kind, items, number)`:
- kinds: `more` ("ver más"), `explain` ("¿qué diferencia hay…?", "¿para qué sirve…?": the articles), `status` (payment, dispatch, invoice, "mi pedido"), `clear`, `remove`, `change`,
  `summary` ("resumen", "cerrar el pedido", "confirmo"), `cart` ("ver carrito"), `add` (a verb such as
  "quiero", "agregá", or a leading quantity), `ask` (anything else: a product question);
- items (for `add`): one per "3 de la DS-2CD1043 y 2 discos de 1 TB" part: (quantity, problem, product text),
  the quantity `None` when not given (1 is meant), `problem` one of `zero`, `negative`, `fraction`, `huge`;
- number (for `change`): the new quantity.
Numbers followed by a unit ("16 canales", "4 MP", "1 TB", "2.8 mm") are product attributes, never quantities.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otklik.capabilities.sales.search import fold

WORDS = {
    "un": 1, "una": 1, "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7, "ocho": 8,
    "nueve": 9, "diez": 10, "once": 11, "doce": 12, "quince": 15, "veinte": 20, "treinta": 30, "cincuenta": 50,
    "cien": 100, "media docena": 6, "una docena": 12, "docena": 12,
}  # fmt: skip
HUGE = r"un\s+millon|\d+\s+millones|un\s+millones|mil\s+millones|millones"
WORD_RX = "|".join(sorted((re.escape(w) for w in WORDS), key=len, reverse=True))
QTY = rf"(?P<q>{HUGE}|-\s?\d+(?:[.,]\d+)?(?![\d.,])|\d+(?:[.,]\d+)?(?![\d.,])|(?:{WORD_RX})(?![a-z]))"
UNITS = (
    r"(?:canales?|ch\b|can\b|mp\b|mpx|megapixel|megas?\b|tb\b|teras?\b|terabytes?|gb\b|gigas?\b|mm\b|milimetros?"
    r"|pulgadas?|metros?\b|m\b|k\b|p\b|puertos?|bocas?|v\b|w\b|%)"
)
ADD = (
    r"(?:quiero|quisiera|queria|agrega(?:me|r|le)?|agregue|agreguen|suma(?:me|r|le)?|dame|deme|pasame|mandame"
    r"|anota(?:me|r)?|pone(?:me)?|poneme|me llevo|llevo|compro|comprar|anadi|anadir|anade|carga(?:me|r)?|sumale)"
)
LEAD = rf"^(?:(?:{ADD}|y|tambien|ademas|otr[oa]s?|mas|porfa|por favor|hola|buenas|dale|ok)\s+)*"
ITEM = re.compile(
    LEAD + QTY + rf"(?!\s*{UNITS})\s*(?:unidades?\b|u\b\.?|x\b)?\s*"
    r"(?:de\s+(?:la|las|los|el|esas?|esos?|estas?|estos?)\b|del\b|de\b|la\b|el\b|los\b|las\b)?\s*(?P<rest>.*)$"
)
TAIL_QTY = re.compile(r"(?:\bx\s*|\bpor\s+)(?P<q>\d+)\s*(?:unidades?|u)?\s*$|\b(?P<u>\d+)\s*unidades?\s*$")
SPLIT = re.compile(
    rf"\s*(?:,\s|;|\+|\by\b|\btambien\b|\bademas\b)\s*(?=(?:{HUGE}|-?\d+(?![\d.,])|(?:{WORD_RX})\b)(?!\s*{UNITS}))"
)
ADD_RX = re.compile(rf"\b{ADD}\b")
ASKING = re.compile(r"\b(precio|cuanto|saber|info|informacion|tienen|tenes|hay|stock|disponible|caracteristicas)\b|\?")

MORE = re.compile(
    r"^\s*(?:ver|mostrame|quiero ver|dame)?\s*(?:mas|otros|otras|siguientes?)(?:\s+(?:opciones|productos|resultados))?\s*[.!]*\s*$|\bver mas\b"
)
STATUS = re.compile(
    r"\b(pago|pague|pagado|transferencia|transferi|deposite|acreditad\w*|acredito|recibieron|despach\w*|enviaron"
    r"|envian|mandan|mandaron|entregan|llega\w*|factura\w*|estado de mi pedido|mi pedido|mi orden|mi compra"
    r"|pv-?\d+)\b"
)
# A question about how things work or differ ("¿qué diferencia hay entre un NVR y un DVR?", "¿para qué sirve el
# PoE?"): the articles answer it, not the catalog (its "un NVR y un DVR" is no order of one of each).
EXPLAIN = re.compile(
    r"\b(diferencias?|que es|que son|como funcionan?|como se (?:instala|configura|conecta)n?|para que sirven?"
    r"|sirve para|conviene|recomendas|recomiendan|ventajas?|explica\w*|significa)\b"
)
CLEAR = re.compile(r"\b(vacia\w*|borra\w* todo|saca\w* todo|quita\w* todo|elimina\w* todo)\b")
REMOVE = re.compile(r"\b(saca\w*|quita\w*|elimina\w*|borra\w*|saque\w*|quite\w*|remove\w*|ya no quiero|no quiero)\b")
CHANGE = re.compile(r"\b(cambia\w*|modifica\w*|pone\w*|deja\w*|que sean|mejor|actualiza\w*|corregi\w*)\b")
SUMMARY = re.compile(
    r"\b(resumen|cerrar|cerra|cierro|finaliza\w*|terminar|checkout|eso es todo|es todo|nada mas|confirm\w*"
    r"|total|cotiza\w*|presupuesto|comprar ya|hacer el pedido|listo)\b"
)
CART = re.compile(r"\b(carrito|changuito|que tengo|que llevo|que agregue|mi carro)\b")
NEW_QTY = re.compile(
    r"\ba\s+(?P<a>\d+)\b|\bque sean\s+(?P<b>\d+)\b|\b(?P<c>\d+)\s*(?:unidades?|u)\b|\bpor\s+(?P<d>\d+)\b"
)


@dataclass(frozen=True, slots=True)
class Item:
    quantity: int | None
    problem: str | None  # zero, negative, fraction, huge
    text: str
    written: str = ""  # the quantity as the buyer wrote it


@dataclass(slots=True)
class Reading:
    kind: str
    items: list[Item] = field(default_factory=list)
    number: int | None = None
    problem: str | None = None
    text: str = ""  # the folded message without the command words


def _quantity(raw: str) -> tuple[int | None, str | None]:
    raw = raw.strip()
    if re.fullmatch(HUGE, raw):
        return None, "huge"
    if raw in WORDS:
        return WORDS[raw], None
    compact = raw.replace(" ", "")
    if compact.startswith("-"):
        return None, "negative"
    if "," in compact or "." in compact:
        whole, _, dec = compact.replace(",", ".").partition(".")
        if dec.strip("0"):
            return None, "fraction"
        compact = whole
    value = int(compact)
    if value == 0:
        return None, "zero"
    if value > 100_000:
        return None, "huge"
    return value, None


def item(segment: str) -> Item:
    segment = segment.strip(" .!¡¿?")
    m = ITEM.match(segment)
    if m is not None and m.group("rest").strip():
        given, trouble = _quantity(m.group("q"))
        return Item(given, trouble, m.group("rest").strip(" .!?"), m.group("q"))
    rest = re.sub(LEAD, "", segment).strip()
    tail = TAIL_QTY.search(rest)
    raw = ""
    quantity: int | None = None
    problem: str | None = None
    if tail is not None:
        raw = tail.group("q") or tail.group("u")
        quantity, problem = _quantity(raw)
        rest = rest[: tail.start()]
    rest = re.sub(r"^(?:de\s+(?:la|las|los|el)|del|de|la|el|los|las)\s+", "", rest.strip())
    return Item(quantity, problem, rest.strip(" .!?"), raw)


def read(text: str) -> Reading:
    t = " ".join(fold(text).split())[:500]
    if not t:
        return Reading("ask")
    if MORE.search(t):
        return Reading("more")
    if EXPLAIN.search(t) and not ADD_RX.search(t):
        return Reading("explain", text=t)
    if CLEAR.search(t) and not ADD_RX.search(t):
        return Reading("clear")
    if REMOVE.search(t):
        rest = REMOVE.sub(" ", t)
        return Reading("remove", text=_strip_articles(rest))
    if CHANGE.search(t) and (m := NEW_QTY.search(t)):
        raw = next(g for g in m.groups() if g)
        number, problem = _quantity(raw)
        rest = CHANGE.sub(" ", t[: m.start()] + " " + t[m.end() :])
        return Reading("change", number=number, problem=problem, text=_strip_articles(rest))
    adding = bool(ADD_RX.search(t))
    parts = [p for p in SPLIT.split(t) if p.strip()]
    items = [item(p) for p in parts]
    leading = any(i.written for i in items)
    if not leading and (SUMMARY.search(t) or CART.search(t)) and not ASKING.search(t):
        return Reading("summary" if SUMMARY.search(t) else "cart")
    if (adding or leading) and not (ASKING.search(t) and not leading):
        items = [i for i in items if i.text]
        if items:
            return Reading("add", items=items)
    if STATUS.search(t) and not adding:
        return Reading("status", text=t)
    if SUMMARY.search(t):
        return Reading("summary")
    if CART.search(t):
        return Reading("cart")
    return Reading("ask", text=t)


def _strip_articles(text: str) -> str:
    words = [w for w in text.split() if w not in ("la", "el", "los", "las", "de", "del", "a", "al", "me", "y", "por")]
    return " ".join(words).strip(" .!?")
