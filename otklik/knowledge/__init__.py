"""Knowledge answers: the seller's articles, lemma-based retrieval and the answer text to send."""

from otklik.knowledge.articles import (
    MEDICAL_KINDS,
    Article,
    ArticleError,
    load_articles,
    pack_articles_dir,
    parse_article,
)
from otklik.knowledge.retrieval import Hit, KnowledgeAnswer, KnowledgeBase, KnowledgeSettings
from otklik.knowledge.terms import content_terms

__all__ = [
    "MEDICAL_KINDS",
    "Article",
    "ArticleError",
    "Hit",
    "KnowledgeAnswer",
    "KnowledgeBase",
    "KnowledgeSettings",
    "content_terms",
    "load_articles",
    "pack_articles_dir",
    "parse_article",
]
