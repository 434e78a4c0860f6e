"""Spanish free-text product search, offline: what the buyer's words say about brand, category, attributes
and model codes, then a ranking over the active products.

- normalisation: lower case, accents optional ("cámara" = "camara"), plurals folded ("domos" = "domo");
- synonyms and categories from `synonyms.yaml` (data, loaded with `safe_yaml.load_trusted`);
- units: "4 megapíxeles" / "4mp" / "1080p" = resolution, "8 canales" = channels, "disco de 2 teras" = 2TB,
  "2.8 mm" = lens;
- brands: the catalog's own brands, exact or with a typo ("hikvison");
- model codes with typos or missing dashes ("ds2cd1043", "IPC-HFW1230") by rapidfuzz against the skus.

A brand, a category or an attribute the text names is a filter: a product that contradicts it (or lacks the
attribute) is not a hit. A model code that matches some sku well (score ≥ 80) restricts the hits to those
skus. Remaining words are matched against the name, description, brand and category (exact or fuzzy).
Inactive products are never loaded. The hit carries the row as read, so a quote reads the live price.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.sales.models import products
from otklik.conversations.repo import as_tx
from otklik.conversations.timers import QuickTx
from otklik.core import safe_yaml

SYNONYMS = Path(__file__).with_name("synonyms.yaml")
CODE_MIN = 80  # rapidfuzz score for a model code to count
WORD_MIN = 85  # and for a word with a typo
ATTRIBUTE_LABELS = {
    "tech": "tecnología", "form": "formato", "resolution": "resolución", "lens_mm": "lente",
    "outdoor": "exterior", "poe": "PoE", "channels": "canales", "capacity": "capacidad", "type": "tipo",
}  # fmt: skip


TECH = {"ip": "IP", "analogica": "analógica", "wifi": "WiFi"}


def describe(key: str, value: str) -> str:
    """An attribute in the buyer's words: "lente 2.8 mm", "8 canales", "exterior", "con PoE"."""
    if key == "outdoor":
        return {"si": "exterior", "no": "interior"}.get(value, f"exterior {value}")
    if key == "poe":
        return {"si": "con PoE", "no": "sin PoE"}.get(value, f"PoE {value}")
    if key == "lens_mm":
        return f"lente {value} mm"
    if key == "channels":
        return f"{value} canales"
    if key == "tech":
        return f"tecnología {TECH.get(value, value)}"
    if key == "type":
        return value.upper()
    return f"{ATTRIBUTE_LABELS.get(key, key)} {value}"


def fold(text: str) -> str:
    """Lower case without accents; ñ stays an n (buyers type both)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def stem(word: str) -> str:
    if len(word) > 4 and word.endswith("es") and not word.endswith("ees"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s"):
        return word[:-1]
    return word


def words_of(text: str) -> list[str]:
    return [stem(w) for w in re.findall(r"[a-z0-9]+(?:[.,][0-9]+)?", fold(text))]


def compact(code: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(code))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    categories: dict[str, str]  # folded word or phrase -> canonical category
    attributes: dict[str, tuple[str, str]]  # folded word or phrase -> (key, canonical value)
    values: dict[str, dict[str, str]]  # key -> folded value -> canonical value
    implies: dict[str, dict[str, str]]
    stopwords: frozenset[str]
    phrases: tuple[str, ...]  # multi-word entries, longest first


@lru_cache(maxsize=8)
def vocabulary(path: Path = SYNONYMS) -> Vocabulary:
    data = safe_yaml.load_trusted(path.read_text(encoding="utf-8")) or {}
    categories = {fold(str(w)): str(c) for c, ws in (data.get("categories") or {}).items() for w in ws}
    attributes: dict[str, tuple[str, str]] = {}
    values: dict[str, dict[str, str]] = {}
    for key, table in (data.get("attributes") or {}).items():
        for canonical, ws in table.items():
            for w in [canonical, *ws]:
                attributes.setdefault(fold(str(w)), (str(key), str(canonical)))
                values.setdefault(str(key), {})[fold(str(w))] = str(canonical)
    implies = {fold(str(w)): {str(k): str(v) for k, v in m.items()} for w, m in (data.get("implies") or {}).items()}
    stop = frozenset(fold(str(w)) for w in data.get("stopwords") or ())
    phrases = tuple(sorted({p for p in (*categories, *attributes) if " " in p or "-" in p}, key=len, reverse=True))
    return Vocabulary(categories, attributes, values, implies, stop, phrases)


def canonical_value(key: str, value: str, vocab: Vocabulary) -> str:
    """A product's attribute value in the form queries produce: "4 MP" -> "4MP", "Tubo" -> "bullet"."""
    folded = fold(str(value)).strip()
    if key == "resolution":
        m = re.fullmatch(r"(\d{1,2}(?:[.,]\d)?)\s*(?:mp|mpx|megapixel(?:es)?)?", folded)
        return f"{m.group(1).replace(',', '.')}MP" if m else folded
    if key == "capacity":
        m = re.fullmatch(r"(\d+(?:[.,]\d+)?)\s*(tb|gb)", folded)
        if m:
            number = Decimal(m.group(1).replace(",", "."))
            number = number / 1000 if m.group(2) == "gb" else number
            return f"{number.normalize():f}TB"
        return folded
    if key in ("lens_mm", "channels"):
        try:
            return f"{Decimal(folded.replace(',', '.').removesuffix('mm').strip()).normalize():f}"
        except InvalidOperation:
            return folded
    return vocab.values.get(key, {}).get(folded, folded)


UNITS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "resolution",
        re.compile(r"\b(\d{1,2}(?:[.,]\d)?)\s*(?:mp|mpx|mpix|megapixel(?:es)?|mega ?pixel(?:es)?|megas?)\b"),
    ),
    ("resolution", re.compile(r"\b(1080|720|4k)p?\b")),
    ("channels", re.compile(r"\b(\d{1,3})\s*(?:canales|canal|ch|can)\b")),
    ("capacity", re.compile(r"\b(\d{1,2}(?:[.,]\d)?)\s*(?:tb|teras?|terabytes?|tera ?bytes?)\b")),
    ("capacity", re.compile(r"\b(\d{3,4})\s*(?:gb|gigas?|gigabytes?)\b")),
    ("lens_mm", re.compile(r"\b(\d{1,2}(?:[.,]\d{1,2})?)\s*(?:mm|milimetros?)\b")),
)
VIDEO = {"1080": "2MP", "720": "1MP", "4k": "8MP"}


@dataclass(slots=True)
class Query:
    brands: set[str]
    categories: set[str]
    attributes: dict[str, str]
    codes: list[str]
    words: list[str]

    @property
    def empty(self) -> bool:
        return not (self.brands or self.categories or self.attributes or self.codes or self.words)


@dataclass(frozen=True, slots=True)
class Item:
    row: dict[str, Any]
    brand: str
    category: str
    attributes: dict[str, str]
    words: frozenset[str]
    code: str


@dataclass(frozen=True, slots=True)
class Hit:
    product: dict[str, Any]
    score: float
    why: list[str]


class CatalogIndex:
    """The active products, prepared for `search` (built from rows; rebuild it when the catalog changes)."""

    def __init__(self, rows: list[dict[str, Any]], vocab: Vocabulary | None = None) -> None:
        self.vocab = vocab or vocabulary()
        self.items: list[Item] = []
        for row in rows:
            if not row.get("active", True):
                continue  # never found, even when a caller passes every row
            category = fold(str(row["category"])).strip()
            attrs = {str(k).lower(): canonical_value(str(k).lower(), str(v), self.vocab)
                     for k, v in (row["attributes"] or {}).items()}  # fmt: skip
            text = " ".join(str(row[c]) for c in ("name", "brand", "category", "description"))
            self.items.append(Item(
                row, fold(str(row["brand"])).strip(), self.vocab.categories.get(category, category), attrs,
                frozenset(words_of(text)), compact(str(row["sku"])),
            ))  # fmt: skip
        self.brands = {i.brand: str(i.row["brand"]) for i in self.items if i.brand}
        self.vocabulary = sorted({w for i in self.items for w in i.words if len(w) >= 3})
        self.codes = [i.code for i in self.items]
        # postings: which items have a brand, a category, an attribute value, a word, a code
        self.by_brand: dict[str, set[int]] = {}
        self.by_category: dict[str, set[int]] = {}
        self.by_attribute: dict[tuple[str, str], set[int]] = {}
        self.by_word: dict[str, set[int]] = {}
        self.by_code: dict[str, set[int]] = {}
        for idx, item in enumerate(self.items):
            self.by_brand.setdefault(item.brand, set()).add(idx)
            self.by_category.setdefault(item.category, set()).add(idx)
            for pair in item.attributes.items():
                self.by_attribute.setdefault(pair, set()).add(idx)
            for word in item.words:
                self.by_word.setdefault(word, set()).add(idx)
            self.by_code.setdefault(item.code, set()).add(idx)
        self.order = [(str(i.row["name"]), str(i.row["sku"])) for i in self.items]
        self.sorted_codes = sorted(self.by_code)
        self.joined_codes = "\n".join(self.codes)  # substring search in C (`str.find`)
        self.code_starts = list(itertools.accumulate((len(c) + 1 for c in self.codes[:-1]), initial=0))

    def parse(self, text: str) -> Query:
        vocab = self.vocab
        query = Query(set(), set(), {}, [], [])
        s = " " + re.sub(r"[^a-z0-9.,/+\- ]", " ", fold(text)) + " "
        for key, pattern in UNITS:
            for m in pattern.finditer(s):
                raw = m.group(1)
                if key == "resolution":
                    value = VIDEO.get(raw) or f"{raw.replace(',', '.')}MP"
                elif key == "capacity":
                    unit = "gb" if "g" in m.group(0)[len(raw) :] else "tb"
                    value = canonical_value("capacity", f"{raw}{unit}", vocab)
                else:
                    value = canonical_value(key, raw, vocab)
                query.attributes[key] = value
            s = pattern.sub(" ", s)
        for brand in sorted(self.brands, key=len, reverse=True):  # "western digital" before any word
            if " " in brand and f" {brand} " in s:
                query.brands.add(brand)
                s = s.replace(f" {brand} ", " ")
        for phrase in vocab.phrases:
            if f" {phrase} " in s:
                self._concept(query, phrase)
                s = s.replace(f" {phrase} ", " ")
        previous = ""  # a short letters-only word before a code may be its prefix ("ipc hfw1230")
        for token in s.split():
            token = token.strip(".,/+-")
            if not token or token in vocab.stopwords:
                previous = ""
                continue
            if self._concept(query, token) or self._concept(query, stem(token)):
                previous = ""
                continue
            if token in self.brands:
                query.brands.add(token)
            elif re.search(r"\d", token) and re.search(r"[a-z]", token) and len(compact(token)) >= 4:
                query.codes.append(compact(token))
                if previous:
                    query.codes.append(compact(previous + token))
            elif len(token) >= 5 and (near := process.extractOne(token, list(self.brands), scorer=fuzz.ratio,
                                                                 score_cutoff=WORD_MIN)):  # fmt: skip
                query.brands.add(near[0])
            elif stem(token) not in vocab.stopwords:
                query.words.append(stem(token))
            previous = token if token.isalpha() and len(token) <= 5 else ""
        return query

    def _concept(self, query: Query, word: str) -> bool:
        vocab, found = self.vocab, False
        if word in vocab.categories:
            query.categories.add(vocab.categories[word])
            found = True
        if word in vocab.attributes:
            key, value = vocab.attributes[word]
            query.attributes[key] = value
            found = True
        for key, value in vocab.implies.get(word, {}).items():
            if key == "category":
                query.categories.add(value)
        return found

    def search(self, text: str, limit: int = 10) -> list[Hit]:
        query = self.parse(text[:500])
        if query.empty or limit <= 0:
            return []
        code_scores = self._codes(query.codes)
        words = list(query.words)
        if query.codes and not code_scores:
            words += query.codes  # a "code" that is no sku may still be a word of a name ("h265")
        word_sets = {w: set().union(*(self.by_word.get(n, set()) for n in self._near(w))) for w in words}
        candidates: set[int] | None = set(code_scores) if code_scores else None

        def narrow(found: set[int]) -> None:
            nonlocal candidates
            candidates = found if candidates is None else candidates & found

        if query.brands:
            narrow(set().union(*(self.by_brand.get(b, set()) for b in query.brands)))
        if query.categories:
            narrow(set().union(*(self.by_category.get(c, set()) for c in query.categories)))
        for pair in query.attributes.items():
            narrow(self.by_attribute.get(pair, set()))
        filters = bool(query.brands) + bool(query.categories) + len(query.attributes)
        if candidates is None:  # words only
            candidates = set().union(*word_sets.values()) if word_sets else set()
        scored: list[tuple[float, int]] = []
        for idx in candidates:
            score = filters + 3 * code_scores.get(idx, 0) / 100
            score += 0.5 * sum(1 for found in word_sets.values() if idx in found)
            if score == 0:
                continue
            if int(self.items[idx].row["stock"]) > 0:
                score += 0.1
            scored.append((round(score, 3), idx))
        order = self.order
        best = heapq.nsmallest(limit, scored, key=lambda s: (-s[0], order[s[1]]))
        return [Hit(self.items[idx].row, score, self._why(idx, query, code_scores, word_sets)) for score, idx in best]

    def _codes(self, codes: list[str]) -> dict[int, float]:
        found: dict[int, float] = {}

        def note(ids: set[int], score: float) -> None:
            for idx in ids:
                found[idx] = max(found.get(idx, 0), score)

        for code in codes:
            for _, score, idx in process.extract(code, self.codes, scorer=fuzz.ratio, score_cutoff=CODE_MIN,
                                                 limit=50):  # fmt: skip
                note({idx}, score)
            if len(code) < 6:
                continue
            at = bisect.bisect_left(self.sorted_codes, code)  # skus starting with the code
            while at < len(self.sorted_codes) and self.sorted_codes[at].startswith(code):
                note(self.by_code[self.sorted_codes[at]], 95.0)
                at += 1
            for end in range(6, len(code)):  # the code starts with a sku (a suffix typed after it)
                note(self.by_code.get(code[:end], set()), 95.0)
            at = self.joined_codes.find(code)  # the code inside a sku
            while at >= 0 and len(found) < 1000:
                idx = bisect.bisect_right(self.code_starts, at) - 1
                if idx not in found:
                    note({idx}, 90.0)
                at = self.joined_codes.find(code, at + 1)
        return found

    def _why(self, idx: int, query: Query, code_scores: dict[int, float], word_sets: dict[str, set[int]]) -> list[str]:
        item, why = self.items[idx], []
        if idx in code_scores:
            why.append(f"modelo {item.row['sku']} ({code_scores[idx]:.0f} %)")
        if query.brands:
            why.append(f"marca {item.row['brand']}")
        if query.categories:
            why.append(f"categoría {item.row['category']}")
        why += [describe(key, value) for key, value in query.attributes.items()]
        matched = [w for w, found in word_sets.items() if idx in found]
        if matched:
            why.append("palabras: " + ", ".join(matched))
        if int(item.row["stock"]) <= 0:
            why.append("sin stock")
        return why

    def _near(self, word: str) -> set[str]:
        near = {word}
        if len(word) >= 4:
            near |= {m[0] for m in process.extract(word, self.vocabulary, scorer=fuzz.ratio, score_cutoff=WORD_MIN,
                                                    limit=20)}  # fmt: skip
        return near


_ACTIVE = select(products).where(products.c.active.is_(True))
# Two scalar subqueries, not `SELECT max(id), max(updated_at)`: SQLite's min/max shortcut takes an index end
# only for a lone aggregate, and the pair in one SELECT scanned the whole updated_at index on every turn.
_KEY = select(
    select(func.max(products.c.id)).scalar_subquery(), select(func.max(products.c.updated_at)).scalar_subquery()
)


async def load_index(session: AsyncSession | QuickTx) -> CatalogIndex:
    rows = await as_tx(session).fetch(_ACTIVE)
    return CatalogIndex([dict(r._asdict()) for r in rows])


class IndexCache:
    """One index reused while the catalog is unchanged. Every import, sync or edit of a product sets its
    `updated_at` and products are never deleted (they are deactivated), so (newest id, newest `updated_at`)
    changes with any of them; both are read from index ends. Orders taking or giving back stock do not touch
    `updated_at` (a rebuild after every order stalled the turns): the index's stock only nudges the ranking,
    and every answer reads the live row. Kept by the caller (app-scoped state, e.g.
    `ctx.state["sales.index"]`), never in a module global."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.index: CatalogIndex | None = None

    async def get(self, session: AsyncSession | QuickTx) -> CatalogIndex:
        """The index (rebuilt when the catalog changed), on an ORM session or a step's transaction."""
        key = tuple((await as_tx(session).fetch(_KEY))[0])
        if self.index is None or key != self.key:
            self.index, self.key = await load_index(session), key
        return self.index


async def search(
    session: AsyncSession,
    text: str,
    limit: int = 10,
    index: CatalogIndex | None = None,
    cache: IndexCache | None = None,
) -> list[Hit]:
    """The products the text names, best first (active only). Pass an `index`, or a `cache` to reuse one
    while the catalog is unchanged; without either the active rows are read and indexed for this call."""
    if index is None:
        index = await cache.get(session) if cache is not None else await load_index(session)
    return index.search(text, limit)
