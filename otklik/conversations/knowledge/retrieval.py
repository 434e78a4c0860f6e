"""Retrieval of knowledge articles: lemma-based BM25 with a confidence the caller can threshold.

The confidence of a hit combines what a person would also look at:

* support — how much of the question the article accounts for: the larger of *coverage* (the
  IDF-weighted share of the question's content terms found in the article; a word no article has
  counts against every article) and *evidence* (the IDF mass of the matched terms, saturating, so a long
  story with the key words in it is not penalised for its other words). Terms found only in the body,
  not in the title or tags, count `body_only_weight`;
* margin — how far the hit is ahead of the next best article, `(s1 - s2) / s1`.

`confidence = support * (margin_floor + (1 - margin_floor) * margin)`, in [0, 1]. An answer is given
only at `threshold` or above; docs/knowledge-and-llm.md explains how the defaults were measured.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, process

from otklik.conversations.knowledge.articles import Article, load_articles, pack_articles_dir
from otklik.conversations.knowledge.terms import content_terms

__all__ = ["Hit", "KnowledgeAnswer", "KnowledgeBase", "KnowledgeSettings"]


class KnowledgeSettings(BaseModel):
    """Tuning of knowledge answers; the defaults were measured on the built-in packs' questions."""

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(0.25, ge=0.0, le=1.0, description="Minimum confidence to answer from an article.")
    product_boost: float = Field(1.5, ge=1.0, description="Score factor for articles scoped to the asked product.")
    title_weight: int = Field(2, ge=1, description="How many times title terms count (tags likewise).")
    tags_weight: int = Field(2, ge=1)
    k1: float = Field(1.2, gt=0.0, description="BM25 term-frequency saturation.")
    b: float = Field(0.75, ge=0.0, le=1.0, description="BM25 length normalisation.")
    unknown_term_weight: float = Field(
        1.0, ge=0.0, description="Weight of a question word no article contains, as a share of IDF(df=0)."
    )
    body_only_weight: float = Field(
        0.4, ge=0.0, le=1.0, description="Coverage credit for a question term found only in the body, not title/tags."
    )
    evidence_scale: float = Field(
        6.0, gt=0.0, description="IDF mass of matched terms that gives evidence 1 - 1/e (about 0.63)."
    )
    margin_floor: float = Field(0.6, ge=0.0, le=1.0, description="Confidence factor when two articles tie.")
    fuzzy_min_ratio: float = Field(
        80.0, ge=0.0, le=100.0, description="A misspelt word (5+ letters) maps to a known term this similar."
    )


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved article with its BM25 score and a confidence in [0, 1]."""

    article_id: str
    score: float
    confidence: float


@dataclass(frozen=True, slots=True)
class KnowledgeAnswer:
    """The buyer-facing text of the best article, when the confidence passed the threshold."""

    article_id: str
    text: str
    confidence: float
    kind: str | None = None
    approved: bool = False
    products: tuple[str, ...] = ()


class _Index:
    """BM25 statistics of the usable articles of one language."""

    def __init__(self, articles: Sequence[Article], settings: KnowledgeSettings) -> None:
        self.articles = list(articles)
        self.settings = settings
        self.docs = [self._terms(a) for a in self.articles]
        self.heads = [set(content_terms(f"{a.title} {' '.join(a.tags)}", a.language)) for a in self.articles]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avgdl = (sum(self.lengths) / len(self.docs)) if self.docs else 1.0
        df: Counter[str] = Counter()
        for doc in self.docs:
            df.update(doc.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1.0 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self.vocab = sorted(self.idf)
        # A word no article contains is as specific as a word can be: it gets the IDF of df = 0.
        self.unknown_weight = settings.unknown_term_weight * math.log(1.0 + (n + 0.5) / 0.5)

    def _terms(self, article: Article) -> Counter[str]:
        s, lang = self.settings, article.language
        terms: Counter[str] = Counter(content_terms(article.body, lang))
        for _ in range(s.title_weight):
            terms.update(content_terms(article.title, lang))
        for _ in range(s.tags_weight):
            terms.update(content_terms(" ".join(article.tags), lang))
        return terms

    def query_terms(self, query: str, language: str) -> list[str]:
        """Unique content terms of the query; a misspelt word is replaced by the closest known term."""
        result: list[str] = []
        for term in content_terms(query, language):
            if term not in self.idf and len(term) >= 5 and not term.isdigit() and self.vocab:
                match = process.extractOne(
                    term, self.vocab, scorer=fuzz.ratio, score_cutoff=self.settings.fuzzy_min_ratio
                )
                term = match[0] if match else term
            if term not in result:
                result.append(term)
        return result

    def bm25(self, i: int, terms: Iterable[str]) -> float:
        doc, s = self.docs[i], self.settings
        norm = s.k1 * (1.0 - s.b + s.b * self.lengths[i] / self.avgdl)
        total = 0.0
        for term in terms:
            tf = doc.get(term, 0)
            if tf:
                total += self.idf[term] * tf * (s.k1 + 1.0) / (tf + norm)
        return total

    def support(self, i: int, terms: Sequence[str]) -> float:
        """How well the article accounts for the question, in [0, 1]: the larger of
        coverage (IDF-weighted share of the question's terms the article has) and evidence (the IDF mass
        of the matched terms, saturating) — so a long story with the key words in it still counts.
        A term found only in the body, not in the title or tags, counts `body_only_weight`."""
        weights = {t: self.idf.get(t, self.unknown_weight) for t in terms}
        total = sum(weights.values())
        body_only = self.settings.body_only_weight
        found = sum(w * (1.0 if t in self.heads[i] else body_only) for t, w in weights.items() if t in self.docs[i])
        coverage = found / total if total > 0 else 0.0
        evidence = 1.0 - math.exp(-found / self.settings.evidence_scale)
        return max(coverage, evidence)


class KnowledgeBase:
    """Search and answers over a set of articles (several languages may be mixed)."""

    def __init__(self, articles: Iterable[Article], settings: KnowledgeSettings | None = None) -> None:
        self.settings = settings or KnowledgeSettings()
        self._articles = {a.id: a for a in articles}
        self._indexes: dict[str, _Index] = {}

    @classmethod
    def from_directory(cls, directory: Path | str, settings: KnowledgeSettings | None = None) -> KnowledgeBase:
        return cls(load_articles(directory), settings)

    @classmethod
    def from_pack(cls, pack: str, settings: KnowledgeSettings | None = None) -> KnowledgeBase:
        """The articles of a built-in pack (`care-ru`, `sales-es`)."""
        return cls.from_directory(pack_articles_dir(pack), settings)

    @property
    def articles(self) -> list[Article]:
        return list(self._articles.values())

    def get(self, article_id: str) -> Article | None:
        return self._articles.get(article_id)

    def search(self, query: str, language: str, product: str | int | None = None, k: int = 3) -> list[Hit]:
        """Up to `k` articles for the query, best first. With `product`, articles scoped to another
        product are left out and those scoped to this one get `product_boost`."""
        index = self._index(language)
        terms = index.query_terms(query, language)
        if not terms:
            return []
        scored: list[tuple[float, int]] = []
        for i, article in enumerate(index.articles):
            if product is not None and article.products and not article.scoped_to(product):
                continue
            score = index.bm25(i, terms)
            if score <= 0.0:
                continue
            if article.scoped_to(product):
                score *= self.settings.product_boost
            scored.append((score, i))
        scored.sort(key=lambda pair: (-pair[0], index.articles[pair[1]].id))
        hits = []
        for rank, (score, i) in enumerate(scored[: max(k, 0)]):
            rival = scored[1][0] if rank == 0 and len(scored) > 1 else (scored[0][0] if rank else 0.0)
            margin = min(1.0, max(0.0, (score - rival) / score))
            floor = self.settings.margin_floor
            confidence = index.support(i, terms) * (floor + (1.0 - floor) * margin)
            hits.append(Hit(index.articles[i].id, round(score, 4), round(confidence, 4)))
        return hits

    def answer(
        self, query: str, language: str, product: str | int | None = None, *, threshold: float | None = None
    ) -> KnowledgeAnswer | None:
        """The best article's answer text, or None when the confidence is below the threshold (the flow
        then asks the buyer to rephrase or offers an operator)."""
        hits = self.search(query, language, product, k=2)
        limit = self.settings.threshold if threshold is None else threshold
        if not hits or hits[0].confidence < limit:
            return None
        article = self._articles[hits[0].article_id]
        return KnowledgeAnswer(
            article_id=article.id,
            text=article.answer_text,
            confidence=hits[0].confidence,
            kind=article.kind,
            approved=article.approved,
            products=article.products,
        )

    def _index(self, language: str) -> _Index:
        key = language.lower()[:2]
        if key not in self._indexes:
            usable = [a for a in self._articles.values() if a.language == key and a.usable]
            self._indexes[key] = _Index(usable, self.settings)
        return self._indexes[key]
