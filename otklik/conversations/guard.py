"""The marketplace guard in the kernel: every outbound text to a marketplace channel is checked
(`otklik.core.guard`) before it is written.

- Bot, template and generated texts (`screen`) that fail are never written: the templated safe fallback
  (`otklik.core.guard.fallback`) takes their place, and a `guard.blocked` entry goes to the audit log in the
  same transaction.
- An operator's text (`refuse_operator_text`) that fails is refused (`GuardRefused`, with the reasons, the
  spans and a suggested rewording) and the refusal is audited (`guard.refused`).
- The dispatcher checks once more before sending (`Dispatcher._send_one`), so a row written by any other
  path (a job, an import) cannot leave with a contact in it either.
- What a buyer writes on a marketplace channel is stored masked (`mask_inbound`): the rules forbid
  keeping buyers' personal data.

A marketplace channel is an account whose kind is declared `marketplace=True` (`ctx.marketplace_kinds`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from otklik.conversations.context import RuntimeContext
from otklik.core import guard as rules
from otklik.core.errors import InvalidInput, NotFound
from otklik.core.messages import OutboundMessage, degrade_buttons
from otklik.core.redact import mask_cards

BLOCKED = "guard.blocked"  # a bot, template or generated text replaced by the fallback
REFUSED = "guard.refused"  # an operator's text refused in the inbox
_MAX_LOGGED = 1000


class GuardRefused(InvalidInput):
    """An operator's text breaks the marketplace's chat rules; `details` holds reasons, spans, suggestion."""


def is_marketplace(ctx: RuntimeContext, account_id: int) -> bool:
    account = ctx.accounts.get(account_id)
    return account is not None and account.kind in ctx.marketplace_kinds


def language_of(ctx: RuntimeContext, account_id: int, contact_language: str | None = None) -> str:
    """The language of the fallback: the buyer's, else the account's pack's, else Russian."""
    if contact_language:
        return contact_language
    try:
        return ctx.engine_for(account_id).pack.language
    except NotFound:
        return "ru"


def visible_text(message: OutboundMessage) -> str:
    """What the buyer reads: the text with the buttons as a numbered list (marketplace chats have none)."""
    return degrade_buttons(message).text


def check_message(message: OutboundMessage) -> rules.Verdict | None:
    """None when the message passes (or says nothing: an attachment alone), else the verdict."""
    text = visible_text(message)
    if not text.strip():
        return None
    verdict = rules.check(text)
    return None if verdict.allowed else verdict


def fallback_message(message: OutboundMessage, language: str) -> OutboundMessage:
    """The safe fallback in place of `message`: its buttons stay when they pass with the fallback text."""
    candidate = replace(message, text=rules.fallback(language), request_contact=False)
    if candidate.buttons and check_message(candidate) is not None:
        candidate = replace(candidate, buttons=())
    return candidate


def log_row(
    kind: str,
    conversation_id: int,
    verdict: rules.Verdict,
    text: str,
    *,
    author: str,
    actor: str,
    now: datetime,
    sent: str | None = None,
) -> dict[str, Any]:
    """An `event_log` row for the audit view. The text is kept masked (`mask_personal`): an operator may
    have typed the buyer's data, and the rules forbid storing it."""
    data: dict[str, Any] = {
        "author": author,
        "reasons": list(verdict.reasons),
        "found": [{"reason": s.reason, "text": rules.mask_personal(s.text)[:200]} for s in verdict.spans[:20]],
        "text": rules.mask_personal(text[: rules.MAX_CHARS])[:_MAX_LOGGED],
    }
    if sent is not None:
        data["sent"] = sent
    return {
        "ts": now,
        "actor": actor[:120],
        "kind": kind,
        "subject_type": "conversation",
        "subject_id": str(conversation_id),
        "data": data,
    }


def screen(
    ctx: RuntimeContext,
    account_id: int,
    conversation_id: int,
    messages: list[OutboundMessage],
    *,
    language: str,
    now: datetime,
    author: str = "bot",
) -> tuple[list[OutboundMessage], list[dict[str, Any]]]:
    """Bot, template or generated messages as they may be written for this account, and the audit rows of
    the ones replaced. Not a marketplace account: the messages unchanged, no rows."""
    if not messages or not is_marketplace(ctx, account_id):
        return messages, []
    out: list[OutboundMessage] = []
    logs: list[dict[str, Any]] = []
    for message in messages:
        verdict = check_message(message)
        if verdict is None:
            out.append(message)
            continue
        safe = fallback_message(message, language)
        out.append(safe)
        logs.append(
            log_row(
                BLOCKED, conversation_id, verdict, visible_text(message), author=author, actor=author, now=now,
                sent=safe.text,
            )
        )  # fmt: skip
    return out, logs


def refusal(text: str, language: str = "ru") -> tuple[GuardRefused, rules.Verdict] | None:
    """The refusal of an operator's text and its verdict, or None when the text may be sent."""
    verdict = rules.check(text)
    if verdict.allowed:
        return None
    names = ", ".join(rules.REASONS.get(r, (r, r))[0 if language.startswith("ru") else 1] for r in verdict.reasons)
    details = {
        "reasons": list(verdict.reasons),
        "spans": [s.to_dict() for s in verdict.spans],
        "suggestion": rules.suggest(text, verdict, language),
        "text": text,
    }
    message = (
        f"Правила маркетплейса не разрешают это сообщение: {names}."
        if language.startswith("ru")
        else f"The marketplace's rules do not allow this message: {names}."
    )
    return GuardRefused(message, details=details), verdict


def mask_inbound(text: str) -> str:
    """A buyer's text as it may be stored for a marketplace conversation."""
    return mask_cards(rules.mask_personal(text)) if text else text


def segments(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The text cut into (piece, reason or None) for highlighting; overlapping spans are joined."""
    marks: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: (int(s["start"]), -int(s["end"]))):
        start, end = max(0, int(span["start"])), min(len(text), int(span["end"]))
        if end <= start:
            continue
        if marks and start < marks[-1][1]:
            last = marks[-1]
            marks[-1] = (last[0], max(last[1], end), last[2])
            continue
        marks.append((start, end, str(span["reason"])))
    out: list[tuple[str, str | None]] = []
    cursor = 0
    for start, end, reason in marks:
        if start > cursor:
            out.append((text[cursor:start], None))
        out.append((text[start:end], reason))
        cursor = end
    if cursor < len(text):
        out.append((text[cursor:], None))
    return out
