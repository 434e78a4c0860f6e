"""The kernel's event webhooks (docs/webhooks.md): what happened to a conversation and its messages, emitted
in the transaction of the change itself (`platform.webhooks.emit_many`), with the subject
`conversation:<id>` so one endpoint receives one conversation's events in order.

| type | when | data |
|---|---|---|
| `conversation.started` | a buyer's first message, or the first one after the conversation was closed | conversation_id, contact_id, channel, channel_account_id, reopened |
| `message.received` | a buyer's message is stored (text masked as stored) | + message: id, kind, text, attachments, created_at |
| `message.sent` | a reply is handed to the channel (the web chat: written) | conversation_id, channel, message: id, text, sent_at |
| `message.status` | the channel reports delivered / read, or the send failed for good | conversation_id, channel, message: id, external_id; status, error |
| `conversation.handoff` | the bot hands the conversation to people, or an API call does | conversation_id, contact_id, channel, reason, priority, by |
| `conversation.closed` | an operator or an API call closes it | conversation_id, contact_id, channel, by |
| `survey.answered` | `survey.answer` records a question's first answer (per contact and source) | + contact_id, survey, question, option, text, source, answered_at |
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from otklik.platform.webhooks.events import CoreTx, emit_many, iso

Event = tuple[str, dict[str, Any]]


def subject(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


def _base(conversation_id: int, channel: str, contact_id: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"conversation_id": conversation_id, "channel": channel}
    if contact_id is not None:
        data["contact_id"] = contact_id
    return data


def started(conversation_id: int, contact_id: int, channel: str, account_id: int, *, reopened: bool) -> Event:
    data = _base(conversation_id, channel, contact_id) | {"channel_account_id": account_id, "reopened": reopened}
    return "conversation.started", data


def received(
    conversation_id: int, contact_id: int, channel: str, account_id: int, message_id: int, row: Mapping[str, Any]
) -> Event:
    raw = row.get("payload")
    payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
    message = {
        "id": message_id,
        "kind": row.get("kind"),
        "text": row.get("text") or "",
        "attachments": len(payload.get("attachments") or []),
        "created_at": row.get("created_at"),
    }
    if payload.get("payload"):
        message["button"] = payload["payload"]
    data = _base(conversation_id, channel, contact_id) | {"channel_account_id": account_id, "message": message}
    return "message.received", data


def sent(conversation_id: int, channel: str, message_id: int, text: str, at: datetime) -> Event:
    return "message.sent", _base(conversation_id, channel) | {
        "message": {"id": message_id, "text": text, "sent_at": iso(at)}
    }


def status(
    conversation_id: int, channel: str, message_id: int | None, external_id: str | None, state: str, error: str = ""
) -> Event:
    data = _base(conversation_id, channel) | {
        "message": {"id": message_id, "external_id": external_id},
        "status": state,
    }
    if error:
        data["error"] = error[:500]
    return "message.status", data


def handoff(conversation_id: int, contact_id: int, channel: str, reason: str, priority: bool, by: str = "bot") -> Event:
    data = _base(conversation_id, channel, contact_id) | {"reason": reason, "priority": priority, "by": by}
    return "conversation.handoff", data


def closed(conversation_id: int, contact_id: int, channel: str, by: str) -> Event:
    return "conversation.closed", _base(conversation_id, channel, contact_id) | {"by": by}


def survey_answered(
    conversation_id: int, contact_id: int, channel: str, answer: Mapping[str, Any], at: datetime
) -> Event:
    data = _base(conversation_id, channel, contact_id) | {
        key: answer.get(key) for key in ("survey", "question", "option", "text", "source")
    }
    return "survey.answered", data | {"answered_at": iso(at)}


async def emit_events(tx: AsyncSession | CoreTx, conversation_id: int, events: list[Event], now: datetime) -> None:
    """Emit `events` of one conversation in the caller's transaction, in order."""
    if events:
        await emit_many(tx, list(events), now=now, subject=subject(conversation_id))
