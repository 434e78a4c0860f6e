"""Understanding before the transaction: the offline classifier always, the LLM when it is configured
and the offline reading is unsure. Network calls never happen while a conversation is locked."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from otklik.conversations.context import Readings, RuntimeContext
from otklik.core.messages import EventKind, InboundEvent
from otklik.core.understanding import Understanding
from otklik.platform.prometheus import NLU_SECONDS, timed

log = logging.getLogger(__name__)

# Buyers repeat themselves ("1", "2", "да", "привет", "где мой заказ"): the offline reading of a text is a
# pure function of (classifier, language, text), and `Understanding` is immutable, so recent readings are
# reused. Only short texts are kept; the cache is bounded and belongs to the install (`RuntimeContext.readings`).
_CACHE_MAX = 4096
_CACHE_TEXT_MAX = 256


def _offline(readings: Readings, classifier: object, text: str, language: str | None) -> Understanding:
    if len(text) > _CACHE_TEXT_MAX:
        with timed(NLU_SECONDS):
            return classifier.understand(text, language)  # type: ignore[attr-defined, no-any-return]
    key = (id(classifier), language, text)
    hit = readings.get(key)
    if hit is not None and hit[0] is classifier:  # the id of a dropped classifier may be reused
        readings.move_to_end(key)
        return hit[1]
    with timed(NLU_SECONDS):
        reading: Understanding = classifier.understand(text, language)  # type: ignore[attr-defined]
    readings[key] = (classifier, reading)
    if len(readings) > _CACHE_MAX:
        readings.popitem(last=False)
    return reading


async def understand(ctx: RuntimeContext, event: InboundEvent) -> Understanding | None:
    """The reading of a buyer's text, or None for events without text (buttons, files, commands)."""
    text = (event.text or "").strip()
    if event.kind != EventKind.TEXT or not text or text.startswith("/"):
        return None
    account = ctx.accounts.get(event.channel_account_id)
    if account is None:
        return None
    engine = ctx.engine_for(account.id)
    language = event.language or engine.pack.language
    offline = _offline(ctx.readings, engine.classifier, text, language)
    threshold = float(getattr(engine.classifier, "threshold", engine.pack.threshold))
    if ctx.llm is None or offline.red_flag or offline.confidence >= threshold:
        return offline
    from otklik.conversations.llm.privacy import holds_personal_numbers

    if holds_personal_numbers(text):  # payout details, phones, e-mails never leave for an external LLM
        return offline
    intents = ctx.intent_descriptions.get(account.pack) or {}
    if not intents:
        return offline
    from otklik.conversations.llm.tasks import classify_with_llm

    verdict = await classify_with_llm(ctx.llm, text, intents, language)
    if verdict is None:  # timeout, refusal, unknown intent: the offline reading stands
        return offline
    intent, confidence = verdict
    return replace(
        offline,
        intent=intent,
        confidence=confidence,
        alternatives=((offline.intent, offline.confidence), *offline.alternatives),
    )


def build_llm(settings: Any, usage_sink: Any) -> Any:
    """An LLM client when `llm_base_url` is set, else None (the bot works offline)."""
    if not settings.llm_base_url:
        return None
    from otklik.adapters.llm.client import LLMClient, LLMSettings

    return LLMClient(
        LLMSettings(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            model=settings.llm_model,
            timeout=settings.llm_timeout,
        ),
        usage_sink=usage_sink,
    )
