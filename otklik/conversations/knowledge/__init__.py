"""Knowledge answers: the seller's articles, lemma-based retrieval and the answer text to send."""

from otklik.conversations.knowledge.articles import (
    MEDICAL_KINDS,
    Article,
    ArticleError,
    load_articles,
    pack_articles_dir,
    parse_article,
)
from otklik.conversations.knowledge.retrieval import Hit, KnowledgeAnswer, KnowledgeBase, KnowledgeSettings
from otklik.conversations.knowledge.terms import content_terms

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
