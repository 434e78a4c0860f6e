"""Zenvia's webhook events → `InboundEvent`s, the secret-header check, templates as Zenvia lists them. Pure.

- `MESSAGE` (direction IN): `message.contents` of type text (a `payload` makes it a button reply), button,
  file (`fileUrl`: the runtime fetches it into the media store; the URL is `zenvia-file:<url>` until then),
  location; anything else is an `unsupported` text event the flow answers like text it does not understand.
  The contact keeps its Zenvia id (`message.from`) as its sender id, its `visitor.name` as its name.
- `MESSAGE_STATUS`: `messageStatus.code` SENT / DELIVERED / READ → the receipts of the same name,
  NOT_DELIVERED / REJECTED → failed (with Zenvia's description and causes); others (CLICKED, DELETED …) are
  ignored. Receipts carry Zenvia's timestamp, so the kernel applies them in order whatever order they came in.
"""

from __future__ import annotations

import hmac
import json
import re
from datetime import datetime
from typing import Any

from otklik.conversations.window import TemplateInfo
from otklik.core.messages import Attachment, EventKind, InboundEvent

SECRET_HEADER = "X-Otklik-Secret"  # noqa: S105 - a header name
FILE_PREFIX = "zenvia-file:"
HOOK_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
STATUS_CODES = {
    "SENT": "sent",
    "DELIVERED": "delivered",
    "READ": "read",
    "NOT_DELIVERED": "failed",
    "REJECTED": "failed",
}
_FIELD = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
MAX_EVENTS = 1000  # Zenvia posts one event per call; a body with more items than this is refused


def verify_secret(expected: str, header: str | None) -> bool:
    """Zenvia signs nothing: our subscriptions register a random secret header, compared in constant time."""
    if not expected or not header:
        return False
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def parse_body(body: bytes) -> list[dict[str, Any]]:
    """The event object of a webhook POST (or a list of them); `ValueError` for anything else."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ValueError("the body is not JSON") from None
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(isinstance(i, dict) for i in items):
        raise ValueError("the body is not a JSON object")
    if len(items) > MAX_EVENTS:
        raise ValueError(f"more than {MAX_EVENTS} events in one body")
    return items


def iso_ts(value: Any) -> float | None:
    """Zenvia's ISO 8601 timestamps ("2017-05-03T06:04:45Z", with or without milliseconds) → epoch seconds."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any, limit: int = 4096) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _contact_id(value: Any) -> str | None:
    text = str(value or "") if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if 3 <= len(text) <= 64 and all(c.isalnum() or c in "+-_.@" for c in text) else None


def parse_events(items: list[dict[str, Any]], account_id: int, sender: str) -> list[InboundEvent]:
    """Every event we can use, in the order of Zenvia's timestamps; a message to another sender is skipped."""
    out: list[tuple[float, int, InboundEvent]] = []
    for item in items:
        kind = item.get("type")
        event = None
        if kind == "MESSAGE":
            event = _message(item, account_id, sender)
        elif kind == "MESSAGE_STATUS":
            event = _status(item, account_id)
        if event is not None:
            out.append((float(event.data.get("provider_ts") or 0), len(out), event))
    out.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in out]


def _message(item: dict[str, Any], account_id: int, sender: str) -> InboundEvent | None:
    message = _obj(item.get("message"))
    direction = message.get("direction") or item.get("direction")
    if direction not in (None, "IN"):
        return None  # our own messages echoed back
    to = message.get("to")
    if to is not None and sender and str(to) != sender:
        return None
    contact = _contact_id(message.get("from"))
    external = _str(message.get("id"), 200)
    if contact is None or not external:
        return None
    data: dict[str, Any] = {"zenvia_type": "MESSAGE"}
    ts = iso_ts(item.get("timestamp")) or iso_ts(message.get("timestamp"))
    if ts:
        data["provider_ts"] = ts
    name = _str(_obj(item.get("visitor")).get("name") or _obj(message.get("visitor")).get("name"), 200) or None
    base: dict[str, Any] = {
        "channel_account_id": account_id,
        "external_id": external,
        "sender_id": contact,
        "sender_name": name,
        "data": data,
    }
    contents = [c for c in message.get("contents") or [] if isinstance(c, dict)] if isinstance(message.get("contents"), list) else []  # fmt: skip
    if not contents:
        return _unsupported(base, "empty")
    content = contents[0]
    kind = _str(content.get("type"), 40)
    if kind in ("text", "button", "reply"):
        payload = _str(content.get("payload"), 256)
        text = _str(content.get("text"))
        if payload:
            return InboundEvent(kind=EventKind.BUTTON, payload=payload, text=text[:200] or None, **base)
        if kind != "text":
            return _unsupported(base, kind)
        return InboundEvent(kind=EventKind.TEXT, text=text, **base)
    if kind == "file":
        url = _str(content.get("fileUrl"), 2000)
        if not url.startswith(("https://", "http://")):
            return _unsupported(base, "file")
        mime = _str(content.get("fileMimeType"), 100) or None
        caption = _str(content.get("fileCaption"), 1024) or None
        photo = bool(mime and mime.startswith("image/"))
        attachment = Attachment(
            kind="photo" if photo else "file",
            url=FILE_PREFIX + url,
            filename=_str(content.get("fileName"), 255) or None,
            content_type=mime,
            caption=caption,
        )
        return InboundEvent(kind=EventKind.PHOTO if photo else EventKind.FILE, text=caption, attachments=(attachment,), **base)  # fmt: skip
    if kind == "location":
        try:  # Zenvia sends numbers; some integrations strings
            lat, lon = float(content.get("latitude")), float(content.get("longitude"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return _unsupported(base, "location")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return _unsupported(base, "location")
        label = " — ".join(p for p in (_str(content.get("name"), 200), _str(content.get("address"), 300)) if p)
        base["data"] = {**data, "location": {"latitude": lat, "longitude": lon, "name": label}}
        return InboundEvent(kind=EventKind.TEXT, text=label or f"{lat}, {lon}", **base)
    return _unsupported(base, kind or "unknown")


def _unsupported(base: dict[str, Any], kind: str) -> InboundEvent:
    base = {**base, "data": {**base["data"], "unsupported": kind[:40]}}
    return InboundEvent(kind=EventKind.TEXT, text="", **base)


def _status(item: dict[str, Any], account_id: int) -> InboundEvent | None:
    message_id = _str(item.get("messageId"), 200)
    status = _obj(item.get("messageStatus"))
    code = _str(status.get("code"), 40).upper()
    receipt = STATUS_CODES.get(code)
    if not message_id or receipt is None:
        return None
    contact = (
        _contact_id(_obj(item.get("message")).get("to")) or _contact_id(item.get("to")) or ""
    )  # the runtime finds it
    data: dict[str, Any] = {"message_external_id": message_id, "zenvia_status": code}
    ts = iso_ts(status.get("timestamp")) or iso_ts(item.get("timestamp"))
    if ts:
        data["provider_ts"] = ts
    if receipt == "failed":
        causes = [c for c in status.get("causes") or [] if isinstance(c, dict)] if isinstance(status.get("causes"), list) else []  # fmt: skip
        reason = _str(status.get("description"), 200)
        if causes:
            reason += f" ({_str(causes[0].get('reason'), 100)}: {_str(causes[0].get('details'), 200)})"
        data["error"] = f"{code}: {reason}"[:500]
    return InboundEvent(
        channel_account_id=account_id,
        external_id=f"st:{message_id}:{code}"[:200],
        sender_id=contact,
        kind=EventKind.STATUS,
        payload=receipt,
        data=data,
    )


def field_names(body: str) -> list[str]:
    """The template's fields in the order they first appear in its body (`{{name}}`, `{{order}}`)."""
    seen: list[str] = []
    for name in _FIELD.findall(body):
        if name not in seen:
            seen.append(name)
    return seen


def template_info(raw: dict[str, Any]) -> TemplateInfo | None:
    """One template of `GET /v2/templates` (WhatsApp ones only): the flow fills its fields in body order."""
    channel = str(raw.get("channel") or "WHATSAPP").upper()
    template_id, name = _str(raw.get("id"), 64), _str(raw.get("name"), 512)
    language = _str(raw.get("locale") or raw.get("language"), 15)
    if channel != "WHATSAPP" or not template_id or not name or not language:
        return None
    components = _obj(raw.get("components"))
    body = _str(_obj(components.get("body")).get("text")) or _str(raw.get("text"))
    names = field_names(body)
    return TemplateInfo(
        name=name,
        language=language,
        category=_str(raw.get("category"), 32),
        status=_str(raw.get("status"), 32),
        params=len(names),
        body=body,
        provider_id=template_id,
    )
