"""What the optional LLM is used for. Each use returns a value or None; None always means "use the
offline path" (the offline classifier, the article text itself, no draft). Nothing here raises on an
unavailable or misbehaving model."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from otklik.adapters.llm.client import ChatMessage, LLMClient, LLMResult, LLMUnavailable
from otklik.conversations.knowledge.articles import Article
from otklik.conversations.llm import prompts
from otklik.conversations.llm.guardrails import Grant, GuardrailVerdict, check_figures_reply, check_reply
from otklik.core.figures import Figures
from otklik.platform.prometheus import LLM_FALLBACKS, LLM_SECONDS, timed

__all__ = [
    "GroundedAnswer",
    "RejectSink",
    "classify_with_llm",
    "draft_review_reply",
    "grounded_answer",
    "phrase_figures",
]

log = logging.getLogger(__name__)

#: Called with (purpose, reasons, raw model text) whenever an LLM output is thrown away.
RejectSink = Callable[[str, list[str], str], None]

_REVIEW_MIN_WORDS = 3  # Wildberries forbids one-word answers
_REVIEW_MAX_CHARS = 1000


@dataclass(frozen=True, slots=True)
class GroundedAnswer:
    text: str
    cited_ids: tuple[str, ...]


async def _call(
    llm: LLMClient, messages: list[ChatMessage], purpose: str, on_reject: RejectSink | None
) -> LLMResult | None:
    try:
        with timed(LLM_SECONDS, purpose):
            return await llm.complete(messages, json_mode=True, purpose=purpose)
    except LLMUnavailable as exc:
        _reject(on_reject, purpose, [f"unavailable:{exc.reason}"], "")
        return None


def _reject(on_reject: RejectSink | None, purpose: str, reasons: list[str], raw: str) -> None:
    log.info("llm %s output rejected: %s", purpose, ", ".join(reasons))
    LLM_FALLBACKS.labels(purpose).inc()
    if on_reject is not None:
        on_reject(purpose, reasons, raw)


async def classify_with_llm(
    llm: LLMClient,
    text: str,
    intents: Mapping[str, str],
    language: str,
    *,
    on_reject: RejectSink | None = None,
) -> tuple[str, float] | None:
    """(intent, confidence) when the model names one of `intents` with a confidence in [0, 1];
    anything else (unknown intent, "none", bad JSON, timeout) is None."""
    if not text.strip() or not intents:
        return None
    result = await _call(llm, prompts.classify_messages(text, intents), "classify", on_reject)
    if result is None or result.data is None:
        return None
    intent, confidence = result.data.get("intent"), result.data.get("confidence")
    if not isinstance(intent, str) or intent not in intents:
        _reject(on_reject, "classify", [f"unknown_intent:{intent!r}"[:80]], result.text)
        return None
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not math.isfinite(confidence):
        _reject(on_reject, "classify", ["bad_confidence"], result.text)
        return None
    if not 0.0 <= confidence <= 1.0:
        _reject(on_reject, "classify", ["bad_confidence"], result.text)
        return None
    return intent, float(confidence)


async def grounded_answer(
    llm: LLMClient,
    question: str,
    hits: Sequence[Article],
    language: str,
    channel_is_marketplace: bool,
    *,
    granted: Sequence[Grant] = (),
    on_reject: RejectSink | None = None,
) -> GroundedAnswer | None:
    """A free-form answer written from the retrieved articles only, citing them, that passed every
    guardrail; None otherwise (the caller sends the article text itself)."""
    if not hits or not question.strip():
        return None
    messages = prompts.grounded_messages(question, hits, language, channel_is_marketplace)
    result = await _call(llm, messages, "grounded_answer", on_reject)
    if result is None or result.data is None:
        return None
    answer, sources = result.data.get("answer"), result.data.get("sources")
    if not isinstance(answer, str) or not answer.strip():
        _reject(on_reject, "grounded_answer", ["no_answer"], result.text)
        return None
    cited = tuple(dict.fromkeys(str(s) for s in sources)) if isinstance(sources, list) else ()
    verdict = check_reply(
        answer,
        language=language,
        channel_is_marketplace=channel_is_marketplace,
        articles=hits,
        cited_ids=cited,
        granted=granted,
        system_prompt=prompts.grounded_system_prompt(language, channel_is_marketplace),
    )
    if not verdict.ok:
        _reject(on_reject, "grounded_answer", verdict.reasons, result.text)
        return None
    return GroundedAnswer(answer.strip(), cited)


async def draft_review_reply(
    llm: LLMClient,
    review_text: str,
    rating: int,
    category: str,
    language: str,
    *,
    on_reject: RejectSink | None = None,
) -> str | None:
    """A draft public reply to a marketplace review for an operator to approve; None when the model is
    unavailable or the draft fails the guardrails (marketplace rules always apply here)."""
    result = await _call(
        llm, prompts.review_messages(review_text, rating, category, language), "review_reply", on_reject
    )
    if result is None or result.data is None:
        return None
    reply = result.data.get("reply")
    if not isinstance(reply, str):
        _reject(on_reject, "review_reply", ["no_reply"], result.text)
        return None
    verdict = _review_verdict(reply.strip(), language)
    if not verdict.ok:
        _reject(on_reject, "review_reply", verdict.reasons, result.text)
        return None
    return reply.strip()


def _review_verdict(reply: str, language: str) -> GuardrailVerdict:
    verdict = check_reply(
        reply,
        language=language,
        channel_is_marketplace=True,
        system_prompt=prompts.review_system_prompt(language),
    )
    reasons = list(verdict.reasons)
    if len(reply.split()) < _REVIEW_MIN_WORDS:
        reasons.append("review:too_short")
    if len(reply) > _REVIEW_MAX_CHARS:
        reasons.append("review:too_long")
    return GuardrailVerdict.of(reasons)


async def phrase_figures(
    llm: LLMClient,
    draft: str,
    figures: Figures,
    language: str,
    channel_is_marketplace: bool,
    *,
    facts: Mapping[str, str] | None = None,
    on_reject: RejectSink | None = None,
) -> str | None:
    """The deterministic `draft` (e.g. a financing plan) rewritten by the model in `language`, only when every
    number in the new text is one of `figures` and it passes the other guardrails (`check_figures_reply`);
    None otherwise (the caller sends the draft). `facts`: more figures, already formatted, that the text
    may mention (they must be in `figures` too). The buyer's message is not sent: nothing the buyer typed
    reaches the model here."""
    if not draft.strip():
        return None
    messages = prompts.phrasing_messages(draft, facts or {}, language, channel_is_marketplace)
    result = await _call(llm, messages, "phrase_figures", on_reject)
    if result is None or result.data is None:
        return None
    reply = result.data.get("reply")
    if not isinstance(reply, str) or not reply.strip():
        _reject(on_reject, "phrase_figures", ["no_reply"], result.text)
        return None
    verdict = check_figures_reply(
        reply.strip(),
        figures,
        language=language,
        channel_is_marketplace=channel_is_marketplace,
        system_prompt=prompts.phrasing_system_prompt(language, channel_is_marketplace),
        max_chars=max(600, 3 * len(draft)),
    )
    if not verdict.ok:
        _reject(on_reject, "phrase_figures", verdict.reasons, result.text)
        return None
    return reply.strip()
