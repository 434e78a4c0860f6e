"""Answering a buyer's question from knowledge articles, with the LLM as an optional improvement.

search the articles ──(nothing above the threshold)──► None: ask to rephrase / offer an operator
      │
      ├─ no LLM, or a side-effect/medical article ──► the approved article text, verbatim
      └─ LLM grounded answer ──(unavailable or rejected by a guardrail)──► the article text
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from otklik.adapters.llm.client import LLMClient
from otklik.conversations.knowledge.articles import MEDICAL_KINDS
from otklik.conversations.knowledge.retrieval import KnowledgeBase
from otklik.conversations.llm.guardrails import Grant
from otklik.conversations.llm.tasks import RejectSink, grounded_answer

__all__ = ["KnowledgeReply", "answer_question"]


@dataclass(frozen=True, slots=True)
class KnowledgeReply:
    """What to send. `source` says whether the text was generated ("llm") or is the article's ("article")."""

    text: str
    article_ids: tuple[str, ...]
    confidence: float
    source: Literal["llm", "article"]


async def answer_question(
    question: str,
    kb: KnowledgeBase,
    language: str,
    *,
    channel_is_marketplace: bool,
    product: str | int | None = None,
    llm: LLMClient | None = None,
    granted: Sequence[Grant] = (),
    paraphrase_medical: bool = False,
    on_reject: RejectSink | None = None,
) -> KnowledgeReply | None:
    """The reply to a question, or None when no article is confident enough.

    With `llm`, the articles at or above the threshold are given to the model and its answer is used
    only if it passes the guardrails. Side-effect/medical articles are sent verbatim unless
    `paraphrase_medical` is set.
    """
    threshold = kb.settings.threshold
    hits = [h for h in kb.search(question, language, product, k=3) if h.confidence >= threshold]
    if not hits:
        return None
    articles = [a for a in (kb.get(h.article_id) for h in hits) if a is not None]
    top, confidence = articles[0], hits[0].confidence
    fallback = KnowledgeReply(top.answer_text, (top.id,), confidence, "article")
    if llm is None or (top.kind in MEDICAL_KINDS and not paraphrase_medical):
        return fallback
    generated = await grounded_answer(
        llm, question, articles, language, channel_is_marketplace, granted=granted, on_reject=on_reject
    )
    if generated is None:
        return fallback
    return KnowledgeReply(generated.text, generated.cited_ids, confidence, "llm")
