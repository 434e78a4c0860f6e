"""Telegram updates -> `InboundEvent`s, webhook body and secret checks, deep links. Pure: no I/O.

Only private chats are served: a bot added to a group by mistake ignores the group.
Files are not downloaded here: a photo/document becomes an `Attachment` whose url is
`tg-file:<file_id>`, and `TelegramInbound` replaces it with a `media_id`.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from typing import Any

from otklik.core.messages import Attachment, EventKind, InboundEvent

from .render import callback_store_key

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
TG_FILE_PREFIX = "tg-file:"
START_PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_START_RE = re.compile(r"^/start(?:@[A-Za-z0-9_]+)?(?:\s+(?P<args>.*))?$", re.DOTALL)
# Media a buyer may send as evidence (a video of a defect, a voice note): kept as files.
_FILE_FIELDS = ("video", "animation", "audio", "voice", "video_note")
_UNSUPPORTED_FIELDS = ("sticker", "location", "venue", "poll", "dice", "game", "story")


def parse_update(update: Any, channel_account_id: int) -> list[InboundEvent]:
    """Normalise one Telegram Update (a dict or an aiogram `Update`) to zero or more events.

    `external_id` is `u<update_id>`, so a redelivered update maps to the same event. A callback whose
    data is a CallbackStore key has `payload=None` and `data["callback_key"]`; `TelegramInbound`
    resolves it.
    """
    raw = _as_dict(update)
    update_id = raw.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise ValueError("a Telegram update needs an integer update_id")
    base = {"channel_account_id": channel_account_id, "external_id": f"u{update_id}"}
    if isinstance(raw.get("message"), dict):
        return _message(raw["message"], base)
    if isinstance(raw.get("edited_message"), dict):
        return _edited(raw["edited_message"], base)
    if isinstance(raw.get("callback_query"), dict):
        return _callback(raw["callback_query"], base)
    if isinstance(raw.get("my_chat_member"), dict):
        return _chat_member(raw["my_chat_member"], base)
    return []


def _as_dict(update: Any) -> dict[str, Any]:
    if isinstance(update, dict):
        return update
    dump = getattr(update, "model_dump", None)
    if dump is None:
        raise TypeError(f"cannot parse a Telegram update of type {type(update).__name__}")
    result: dict[str, Any] = dump(by_alias=True, exclude_none=True, mode="json")
    return result


def _private_chat_id(message: dict[str, Any]) -> str | None:
    chat = message.get("chat") or {}
    if chat.get("type") != "private" or "id" not in chat:
        return None
    return str(chat["id"])


def _who(user: dict[str, Any] | None) -> dict[str, Any]:
    user = user or {}
    name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)
    return {"sender_name": name or user.get("username"), "language": user.get("language_code")}


def _message(message: dict[str, Any], base: dict[str, Any]) -> list[InboundEvent]:
    chat_id = _private_chat_id(message)
    if chat_id is None:
        return []
    common = {**base, "sender_id": chat_id, **_who(message.get("from"))}
    data: dict[str, Any] = {"message_id": message.get("message_id")}
    if message.get("media_group_id"):
        data["media_group_id"] = message["media_group_id"]
    caption = message.get("caption")
    if isinstance(message.get("contact"), dict):
        return [_contact(message, common, data)]
    attachment = _attachment(message, caption)
    if attachment is not None:
        kind = EventKind.PHOTO if attachment.kind == "photo" else EventKind.FILE
        return [InboundEvent(kind=kind, text=caption, attachments=(attachment,), data=data, **common)]
    text = message.get("text")
    if isinstance(text, str):
        payload = _start_payload(text)
        if _START_RE.match(text.strip()):
            data["command"] = "start"
        return [InboundEvent(kind=EventKind.TEXT, text=text, payload=payload, data=data, **common)]
    unsupported = next((name for name in _UNSUPPORTED_FIELDS if name in message), "other")
    data["unsupported"] = unsupported
    return [InboundEvent(kind=EventKind.TEXT, text=None, data=data, **common)]


def _contact(message: dict[str, Any], common: dict[str, Any], data: dict[str, Any]) -> InboundEvent:
    contact = message["contact"]
    sender = message.get("from") or {}
    data["own_contact"] = contact.get("user_id") is not None and contact.get("user_id") == sender.get("id")
    digits = re.sub(r"\D", "", str(contact.get("phone_number") or ""))
    # Clients send "79161234567", "+79161234567" or a formatted number typed into the address book.
    phone = "+" + digits if digits else None
    return InboundEvent(kind=EventKind.CONTACT, phone=phone, data=data, **common)


def _attachment(message: dict[str, Any], caption: str | None) -> Attachment | None:
    photos = message.get("photo")
    if isinstance(photos, list) and photos:
        largest = max(photos, key=lambda size: size.get("width", 0) * size.get("height", 0))
        return Attachment(
            kind="photo",
            url=TG_FILE_PREFIX + str(largest["file_id"]),
            content_type="image/jpeg",  # Telegram recompresses photos to JPEG
            size=largest.get("file_size"),
            caption=caption,
        )
    for field in ("document", *_FILE_FIELDS):
        item = message.get(field)
        if isinstance(item, dict) and item.get("file_id"):
            mime = item.get("mime_type")
            # A screenshot sent "as a file" is still a picture of the review/label for the flow.
            kind = "photo" if field == "document" and str(mime or "").startswith("image/") else "file"
            return Attachment(
                kind=kind,
                url=TG_FILE_PREFIX + str(item["file_id"]),
                filename=item.get("file_name"),
                content_type=mime,
                size=item.get("file_size"),
                caption=caption,
            )
    return None


def _start_payload(text: str) -> str | None:
    match = _START_RE.match(text.strip())
    if match is None or not match.group("args"):
        return None
    args = match.group("args").strip()
    return args if START_PAYLOAD_RE.match(args) else None


def _edited(message: dict[str, Any], base: dict[str, Any]) -> list[InboundEvent]:
    chat_id = _private_chat_id(message)
    if chat_id is None:
        return []
    data = {"message_id": message.get("message_id"), "edit_date": message.get("edit_date")}
    text = message.get("text", message.get("caption"))
    return [
        InboundEvent(
            kind=EventKind.EDITED,
            sender_id=chat_id,
            text=text,
            data=data,
            **base,
            **_who(message.get("from")),
        )
    ]


def _callback(query: dict[str, Any], base: dict[str, Any]) -> list[InboundEvent]:
    data = query.get("data")
    if not isinstance(data, str):
        return []  # game callbacks carry no data
    message = query.get("message")
    if isinstance(message, dict):
        chat_id = _private_chat_id(message)
        if chat_id is None:
            return []
    else:  # the message is too old to be included: the chat of a private bot is the user
        chat_id = str((query.get("from") or {}).get("id", ""))
        if not chat_id:
            return []
    key = callback_store_key(data)
    extra: dict[str, Any] = {"callback_query_id": query.get("id"), "callback_data": data}
    if isinstance(message, dict):
        extra["message_id"] = message.get("message_id")
    if key is not None:
        extra["callback_key"] = key
    return [
        InboundEvent(
            kind=EventKind.BUTTON,
            sender_id=chat_id,
            payload=None if key is not None else data,
            data=extra,
            **base,
            **_who(query.get("from")),
        )
    ]


def _chat_member(update: dict[str, Any], base: dict[str, Any]) -> list[InboundEvent]:
    chat_id = _private_chat_id(update)
    status = (update.get("new_chat_member") or {}).get("status")
    if chat_id is None or status not in ("kicked", "member"):
        return []
    payload = "blocked" if status == "kicked" else "unblocked"
    return [
        InboundEvent(
            kind=EventKind.REACHABILITY,
            sender_id=chat_id,
            payload=payload,
            data={"date": update.get("date")},
            **base,
            **_who(update.get("from")),
        )
    ]


# --- webhooks --------------------------------------------------------------------------------------


def verify_secret(header_value: str | None, expected: str) -> bool:
    """Check `X-Telegram-Bot-Api-Secret-Token` in constant time. No secret configured → refuse."""
    if not expected or header_value is None:
        return False
    return hmac.compare_digest(header_value.encode(), expected.encode())


def generate_secret_token() -> str:
    """A webhook secret: 64 characters of `A-Za-z0-9_-` (Telegram allows 1–256 of them)."""
    return secrets.token_urlsafe(48)


def parse_webhook_body(body: bytes) -> dict[str, Any]:
    """Decode a webhook POST body into an Update dict; `ValueError` with a clear message otherwise."""
    try:
        update = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"webhook body is not valid JSON: {error}") from error
    if not isinstance(update, dict):
        raise ValueError(f"webhook body must be a JSON object, got {type(update).__name__}")
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        raise ValueError("webhook body has no valid update_id (a non-negative integer)")
    return update


# --- deep links ------------------------------------------------------------------------------------


def validate_start_payload(payload: str) -> str:
    """Return `payload` if Telegram accepts it after `?start=`, else raise `ValueError`."""
    if not START_PAYLOAD_RE.match(payload):
        raise ValueError(f"deep-link payload {payload!r} is invalid: use 1-64 characters of A-Z, a-z, 0-9, _ and -")
    return payload


def deep_link(username: str, payload: str) -> str:
    """`https://t.me/<username>?start=<payload>`; the buyer's client then sends `/start <payload>`."""
    name = username.removeprefix("@")
    if not _USERNAME_RE.match(name):
        raise ValueError(f"bot username {username!r} is invalid: 5-32 characters of A-Z, a-z, 0-9 and _")
    return f"https://t.me/{name}?start={validate_start_payload(payload)}"
