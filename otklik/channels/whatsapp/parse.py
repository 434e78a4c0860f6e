"""WhatsApp Cloud API webhooks → `InboundEvent`s, the signature check, templates as listed by Meta. Pure: no I/O.

Media is not downloaded here: an image / document / audio / video / sticker becomes an `Attachment` whose url
is `wa-media:<media id>`; the runtime fetches it (within its 5-minute URL) into the media store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from otklik.conversations.window import TemplateInfo
from otklik.core.messages import Attachment, EventKind, InboundEvent

SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_PREFIX = "wa-media:"
PHONE_NUMBER_ID = re.compile(r"^[0-9]{1,32}$")
_PARAM = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_MEDIA_TYPES = {"image": "photo", "document": "file", "audio": "file", "video": "file", "sticker": "file"}
RECEIPTS = ("sent", "delivered", "read", "failed")


def verify_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`, compared in
    constant time. A missing, malformed or wrong header is False."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").strip().lower().encode())


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a webhook POST; `ValueError` for anything else."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    return payload


def parse_webhook(payload: dict[str, Any], channel_account_id: int, phone_number_id: str) -> list[InboundEvent]:
    """Every message and status of one POST (several entries, changes, messages, statuses), in the order of
    their provider timestamps (Meta does not promise one). Changes for another phone number, fields other
    than `messages` and items without an id are skipped."""
    events: list[tuple[int, int, InboundEvent]] = []
    entries = payload.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            if not isinstance(change, dict) or change.get("field") != "messages":
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            metadata = _obj(value.get("metadata"))
            if str(metadata.get("phone_number_id") or phone_number_id) != phone_number_id:
                continue
            names = _names(value.get("contacts"))
            for message in _dicts(value.get("messages")):
                event = _message(message, channel_account_id, names)
                if event is not None:
                    events.append((_ts(message), len(events), event))
            for status in _dicts(value.get("statuses")):
                event = _status(status, channel_account_id)
                if event is not None:
                    events.append((_ts(status), len(events), event))
    events.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in events]


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in _dicts(contacts):
        profile = _obj(contact.get("profile"))
        if contact.get("wa_id") and isinstance(profile.get("name"), str):
            names[str(contact["wa_id"])] = profile["name"][:200]
    return names


def _ts(item: dict[str, Any]) -> int:
    raw = item.get("timestamp")
    try:
        return int(str(raw))
    except ValueError:
        return 0


def _str(value: Any, limit: int = 4096) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _wa_id(value: Any) -> str | None:
    text = str(value or "")
    return text if text.isdigit() and 5 <= len(text) <= 32 else None


def _message(message: dict[str, Any], account_id: int, names: dict[str, str]) -> InboundEvent | None:
    sender = _wa_id(message.get("from"))
    wamid = _str(message.get("id"), 200)
    if sender is None or not wamid:
        return None
    kind = _str(message.get("type"), 40)
    data: dict[str, Any] = {"wa_type": kind}
    ts = _ts(message)
    if ts:
        data["provider_ts"] = ts
    context = message.get("context")
    if isinstance(context, dict) and context.get("id"):
        data["reply_to"] = _str(context.get("id"), 200)
    referral = message.get("referral")
    if isinstance(referral, dict):
        keys = ("source_url", "source_id", "source_type", "headline", "body", "ctwa_clid", "media_type")
        data["referral"] = {k: _str(referral.get(k), 500) for k in keys if referral.get(k)}
    base: dict[str, Any] = {
        "channel_account_id": account_id,
        "external_id": wamid,
        "sender_id": sender,
        "sender_name": names.get(sender),
        "data": data,
    }
    if kind == "text":
        body = _obj(message.get("text"))
        return InboundEvent(kind=EventKind.TEXT, text=_str(body.get("body")), **base)
    if kind == "interactive":
        interactive = _obj(message.get("interactive"))
        reply = interactive.get(str(interactive.get("type") or ""))
        if interactive.get("type") in ("button_reply", "list_reply") and isinstance(reply, dict) and reply.get("id"):
            return InboundEvent(kind=EventKind.BUTTON, payload=_str(reply["id"], 256), text=_str(reply.get("title"), 200), **base)  # fmt: skip
        return _unsupported(base, f"interactive:{_str(interactive.get('type'), 40)}")
    if kind == "button":  # a template's quick-reply button
        button = _obj(message.get("button"))
        payload = _str(button.get("payload"), 256) or _str(button.get("text"), 256)
        if not payload:
            return _unsupported(base, "button")
        return InboundEvent(kind=EventKind.BUTTON, payload=payload, text=_str(button.get("text"), 200), **base)
    if kind in _MEDIA_TYPES:
        media = _obj(message.get(kind))
        media_id = _str(media.get("id"), 100)
        if not media_id:
            return _unsupported(base, kind)
        caption = _str(media.get("caption"), 1024) or None
        attachment = Attachment(
            kind=_MEDIA_TYPES[kind],
            url=f"{MEDIA_PREFIX}{media_id}",
            filename=_str(media.get("filename"), 255) or None,
            content_type=_str(media.get("mime_type"), 100) or None,
            caption=caption,
        )
        event_kind = EventKind.PHOTO if kind == "image" else EventKind.FILE
        return InboundEvent(kind=event_kind, text=caption, attachments=(attachment,), **base)
    if kind == "location":
        where = _obj(message.get("location"))
        lat, lon = where.get("latitude"), where.get("longitude")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
            return _unsupported(base, "location")
        label = " — ".join(p for p in (_str(where.get("name"), 200), _str(where.get("address"), 300)) if p)
        base["data"] = {**data, "location": {"latitude": lat, "longitude": lon, "name": label}}
        return InboundEvent(kind=EventKind.TEXT, text=label or f"{lat}, {lon}", **base)
    if kind == "contacts":
        cards = _dicts(message.get("contacts"))
        phones = [p for c in cards for p in _dicts(c.get("phones"))]
        phone = next(
            (_str(p.get("wa_id") or p.get("phone"), 32) for p in phones if p.get("wa_id") or p.get("phone")), ""
        )
        name = next((_str((c.get("name") or {}).get("formatted_name"), 200) for c in cards if isinstance(c.get("name"), dict)), "")  # fmt: skip
        if not phone:
            return _unsupported(base, "contacts")
        return InboundEvent(kind=EventKind.CONTACT, phone=phone, text=name or None, **base)
    if kind == "reaction":  # recorded on the conversation, not answered
        reaction = _obj(message.get("reaction"))
        base["data"] = {**data, "reaction": _str(reaction.get("emoji"), 16), "reply_to": _str(reaction.get("message_id"), 200)}  # fmt: skip
        return InboundEvent(kind=EventKind.EDITED, text=_str(reaction.get("emoji"), 16), **base)
    return _unsupported(base, kind or "unknown")


def _unsupported(base: dict[str, Any], kind: str) -> InboundEvent:
    """A message the bot cannot read (Meta's `unknown` / `unsupported`, an order, a poll …): an empty text
    event marked `unsupported`, which the flow answers like any text it does not understand."""
    base = {**base, "data": {**base["data"], "unsupported": kind[:40]}}
    return InboundEvent(kind=EventKind.TEXT, text="", **base)


def _status(status: dict[str, Any], account_id: int) -> InboundEvent | None:
    wamid = _str(status.get("id"), 200)
    value = _str(status.get("status"), 20)
    recipient = _wa_id(status.get("recipient_id"))
    if not wamid or value not in RECEIPTS or recipient is None:
        return None
    data: dict[str, Any] = {"message_external_id": wamid}
    ts = _ts(status)
    if ts:
        data["provider_ts"] = ts
    errors = _dicts(status.get("errors"))
    if errors:
        first = errors[0]
        data["error"] = f"{first.get('code', '')}: {_str(first.get('title') or first.get('message'), 300)}"
    return InboundEvent(
        channel_account_id=account_id,
        external_id=f"st:{wamid}:{value}"[:200],
        sender_id=recipient,
        kind=EventKind.STATUS,
        payload=value,
        data=data,
    )


def template_info(raw: dict[str, Any]) -> TemplateInfo | None:
    """One template of `GET /{waba_id}/message_templates`; the body's parameter count from its {{n}}."""
    name, language = _str(raw.get("name"), 512), _str(raw.get("language"), 15)
    if not name or not language:
        return None
    body = ""
    for component in _dicts(raw.get("components")):
        if str(component.get("type") or "").upper() == "BODY":
            body = _str(component.get("text"))
    numbers = {int(n) for n in _PARAM.findall(body)}
    return TemplateInfo(
        name=name,
        language=language,
        category=_str(raw.get("category"), 32),
        status=_str(raw.get("status"), 32),
        params=max(numbers) if numbers else 0,
        body=body,
        provider_id=_str(str(raw.get("id") or ""), 64),
    )
