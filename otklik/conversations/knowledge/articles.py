"""Knowledge articles: Markdown files with a YAML front matter, written and approved by the seller.

```markdown
---
id: warming-gel-sensation
title: Тепло и покраснение после разогревающего геля
tags: [жжет, печет, ожог, аллергия]
language: ru
products: [123456789, warming-gel]   # optional: WB nmIds or product keys the article is about
approved: true                       # required true for side-effect / medical answers
kind: side_effect                    # optional: side_effect, medical, howto, policy, faq, product
---
Background for operators and the LLM…

## Ответ
The text the bot sends (when this section is absent, the whole body is sent).
```
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from otklik.core.errors import InvalidInput

__all__ = [
    "ANSWER_HEADINGS",
    "MEDICAL_KINDS",
    "Article",
    "ArticleError",
    "load_articles",
    "pack_articles_dir",
    "parse_article",
]

#: Kinds whose answers touch health: only `approved: true` articles of these kinds are ever used.
MEDICAL_KINDS = frozenset({"side_effect", "medical"})
#: Headings of the buyer-facing section, by language.
ANSWER_HEADINGS = ("ответ", "respuesta", "answer")

_FIELDS = {"id", "title", "tags", "language", "products", "approved", "kind"}
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
_LANGUAGE = re.compile(r"^[a-z]{2}$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_PACKS_DIR = Path(__file__).resolve().parents[2] / "packs"


class ArticleError(InvalidInput):
    """A malformed article; the message names the file and the field."""

    def __init__(self, source: str, field: str | None, problem: str) -> None:
        where = f"{source}: field '{field}'" if field else source
        super().__init__(f"{where}: {problem}", details={"source": source, "field": field, "problem": problem})
        self.source, self.field, self.problem = source, field, problem


@dataclass(frozen=True, slots=True)
class Article:
    """One knowledge article. `products` holds nmIds and product keys as strings."""

    id: str
    title: str
    body: str
    language: str
    tags: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    approved: bool = False
    kind: str | None = None
    source: str = ""

    @property
    def answer_text(self) -> str:
        """The buyer-facing text: the `## Ответ`/`## Respuesta`/`## Answer` section, else the whole body."""
        return answer_section(self.body) or self.body.strip()

    @property
    def usable(self) -> bool:
        """False for a side-effect/medical article that is not approved: such text is never sent."""
        return self.approved or self.kind not in MEDICAL_KINDS

    def scoped_to(self, product: str | int | None) -> bool:
        return product is not None and str(product).strip().lower() in self.products


def answer_section(body: str) -> str | None:
    """The text under the first answer heading, up to the next heading of the same or higher level."""
    headings = list(_HEADING.finditer(body))
    for i, match in enumerate(headings):
        if match.group(2).strip().lower().rstrip(":") not in ANSWER_HEADINGS:
            continue
        level = len(match.group(1))
        end = next((h.start() for h in headings[i + 1 :] if len(h.group(1)) <= level), len(body))
        text = body[match.end() : end].strip()
        return text or None
    return None


def parse_article(text: str, source: str = "<article>") -> Article:
    """Parse one article; raises `ArticleError` naming `source` and the offending field."""
    match = _FRONT.match(text.lstrip("\ufeff"))
    if match is None:
        raise ArticleError(source, None, "no YAML front matter: the file must start with '---' and close it with '---'")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (front matter line {mark.line + 1})" if mark is not None else ""
        raise ArticleError(source, None, f"front matter is not valid YAML{line}: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArticleError(source, None, "front matter must be a mapping of fields (id, title, ...)")
    unknown = sorted(str(k) for k in meta if k not in _FIELDS)
    if unknown:
        raise ArticleError(source, unknown[0], f"unknown field; allowed: {', '.join(sorted(_FIELDS))}")
    body = match.group(2).strip()
    if not body:
        raise ArticleError(source, "body", "the article has no text after the front matter")
    return Article(
        id=_pattern(meta, "id", _ID, source, "lower-case letters, digits, '-' and '_'"),
        title=_text(meta, "title", source),
        body=body,
        language=_pattern(meta, "language", _LANGUAGE, source, "a two-letter code such as ru or es"),
        tags=_strings(meta, "tags", source),
        products=tuple(p.lower() for p in _strings(meta, "products", source)),
        approved=_flag(meta, "approved", source),
        kind=_pattern(meta, "kind", _KIND, source, "a lower-case word such as howto") if "kind" in meta else None,
        source=source,
    )


def load_articles(directory: Path | str, *, language: str | None = None) -> list[Article]:
    """Every `*.md` file of `directory` (sorted by name); duplicate ids are an error."""
    root = Path(directory)
    if not root.is_dir():
        raise ArticleError(str(root), None, "not a directory")
    articles: list[Article] = []
    seen: dict[str, str] = {}
    for path in sorted(root.glob("*.md")):
        article = parse_article(path.read_text(encoding="utf-8"), source=str(path))
        if article.id in seen:
            raise ArticleError(str(path), "id", f"duplicate id {article.id!r} (also in {seen[article.id]})")
        seen[article.id] = str(path)
        if language is None or article.language == language:
            articles.append(article)
    return articles


def pack_articles_dir(pack: str) -> Path:
    """The articles folder of a built-in pack, e.g. `care-ru` or `sales-es`."""
    return _PACKS_DIR / pack / "articles"


def _require(meta: dict[str, Any], name: str, source: str) -> Any:
    value = meta.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ArticleError(source, name, "missing or empty")
    return value


def _text(meta: dict[str, Any], name: str, source: str) -> str:
    value = _require(meta, name, source)
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ArticleError(source, name, f"must be text, got {type(value).__name__}")
    return str(value).strip()


def _pattern(meta: dict[str, Any], name: str, pattern: re.Pattern[str], source: str, hint: str) -> str:
    value = _text(meta, name, source)
    if not pattern.match(value):
        raise ArticleError(source, name, f"{value!r} is not valid: use {hint}")
    return value


def _strings(meta: dict[str, Any], name: str, source: str) -> tuple[str, ...]:
    value = meta.get(name)
    if value is None:
        return ()
    items: Iterable[Any] = [value] if isinstance(value, str | int) and not isinstance(value, bool) else value
    if not isinstance(items, list | tuple):
        raise ArticleError(source, name, f"must be a list, got {type(value).__name__}")
    result: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            raise ArticleError(source, name, f"every item must be non-empty text or a number, got {item!r}")
        result.append(str(item).strip())
    return tuple(result)


def _flag(meta: dict[str, Any], name: str, source: str) -> bool:
    value = meta.get(name, False)
    if not isinstance(value, bool):
        raise ArticleError(source, name, f"must be true or false, got {value!r}")
    return value
