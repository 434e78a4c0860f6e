"""The optional LLM: an OpenAI-compatible client, its uses (classification, grounded answers, review
reply drafts) and the guardrails every generated reply must pass."""

from otklik.adapters.llm.client import (
    ChatMessage,
    LLMClient,
    LLMResult,
    LLMSettings,
    LLMUnavailable,
    Usage,
    UsageRecord,
    UsageSink,
)
from otklik.conversations.llm.answering import KnowledgeReply, answer_question
from otklik.conversations.llm.guardrails import Grant, GuardrailVerdict, check_reply
from otklik.conversations.llm.tasks import (
    GroundedAnswer,
    RejectSink,
    classify_with_llm,
    draft_review_reply,
    grounded_answer,
)

__all__ = [
    "ChatMessage",
    "Grant",
    "GroundedAnswer",
    "GuardrailVerdict",
    "KnowledgeReply",
    "LLMClient",
    "LLMResult",
    "LLMSettings",
    "LLMUnavailable",
    "RejectSink",
    "Usage",
    "UsageRecord",
    "UsageSink",
    "answer_question",
    "check_reply",
    "classify_with_llm",
    "draft_review_reply",
    "grounded_answer",
]
