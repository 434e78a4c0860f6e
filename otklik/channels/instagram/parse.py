"""Instagram Direct webhooks (Messenger Platform, `object: "instagram"`) → `InboundEvent`s, and the signature
check. Pure: no I/O.

- `messaging[].message`: text; `quick_reply.payload` → a button event; attachments image / video / audio /
  file (their CDN URL is `ig-media:<url>` until the runtime fetches it into the media store); a reply to our
  story (`reply_to.story`, kept in `data["story_reply"]`); a story mention (an attachment `story_mention`,
  `data["story_mention"]`); `is_echo` (our own sends) and `is_deleted` are skipped; `is_unsupported` and
  unknown kinds become an `unsupported` text event the flow answers.
- `messaging[].postback` (an ice-breaker or a generic template button) → a button event.
- `messaging[].read.mid` → the receipt "read"; `messaging[].delivery.mids` → "delivered".
Meta's timestamps are milliseconds; they become `provider_ts` (seconds) for the window and the receipts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from otklik.core.messages import Attachment, EventKind, InboundEvent

SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_PREFIX = "ig-media:"
PAGE_ID = re.compile(r"^[0-9]{1,32}$")
_IGSID = re.compile(r"^[0-9]{1,40}$")
_MEDIA = {"image": "photo", "video": "file", "audio": "file", "file": "file", "ig_reel": "file", "reel": "file"}


def verify_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`, constant time."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.removeprefix("sha256=").strip().lower().encode())


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ValueError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    return payload


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: Any, limit: int = 4096) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _ms(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 10**14:
        return float(value) / 1000.0
    return None


def parse_webhook(payload: dict[str, Any], account_id: int) -> list[InboundEvent]:
    """Every message and receipt of one POST, in the order of Meta's timestamps."""
    events: list[tuple[float, int, InboundEvent]] = []
    for entry in _dicts(payload.get("entry")):
        for item in _dicts(entry.get("messaging")):
            for event in _item(item, account_id):
                events.append((float(event.data.get("provider_ts") or 0), len(events), event))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e for _, _, e in events]


def _item(item: dict[str, Any], account_id: int) -> list[InboundEvent]:
    sender = _str(str(_obj(item.get("sender")).get("id") or ""), 40)
    if not _IGSID.match(sender):
        return []
    ts = _ms(item.get("timestamp"))
    if "message" in item:
        event = _message(_obj(item.get("message")), sender, account_id, ts)
        return [event] if event is not None else []
    if "postback" in item:
        postback = _obj(item.get("postback"))
        mid, payload = _str(postback.get("mid"), 200), _str(postback.get("payload"), 1000)
        if not payload:
            return []
        facts: dict[str, Any] = {"ig_type": "postback", **({"provider_ts": ts} if ts else {})}
        external = mid or f"pb:{sender}:{int((ts or 0) * 1000)}:{payload[:60]}"
        return [InboundEvent(channel_account_id=account_id, external_id=external[:200], sender_id=sender,
                             kind=EventKind.BUTTON, payload=payload, text=_str(postback.get("title"), 200) or None,
                             data=facts)]  # fmt: skip
    receipts: list[tuple[str, str]] = []
    read = _obj(item.get("read"))
    if read.get("mid"):
        receipts.append((_str(read["mid"], 200), "read"))
    mids = _obj(item.get("delivery")).get("mids")
    for mid in mids if isinstance(mids, list) else []:
        if isinstance(mid, str) and mid:
            receipts.append((mid[:200], "delivered"))
    out = []
    for mid, status in receipts:
        data: dict[str, Any] = {"message_external_id": mid}
        if ts:
            data["provider_ts"] = ts
        out.append(InboundEvent(channel_account_id=account_id, external_id=f"st:{mid}:{status}"[:200],
                                sender_id=sender, kind=EventKind.STATUS, payload=status, data=data))  # fmt: skip
    return out


def _message(message: dict[str, Any], sender: str, account_id: int, ts: float | None) -> InboundEvent | None:
    mid = _str(message.get("mid"), 200)
    if not mid or message.get("is_echo") or message.get("is_deleted"):
        return None
    data: dict[str, Any] = {"ig_type": "message"}
    if ts:
        data["provider_ts"] = ts
    reply_to = _obj(message.get("reply_to"))
    story = _obj(reply_to.get("story"))
    if story:
        data["story_reply"] = {"id": _str(str(story.get("id") or ""), 100), "url": _str(story.get("url"), 1000)}
    elif reply_to.get("mid"):
        data["reply_to"] = _str(reply_to.get("mid"), 200)
    base: dict[str, Any] = {"channel_account_id": account_id, "external_id": mid, "sender_id": sender, "data": data}
    text = _str(message.get("text"), 4096)
    quick = _obj(message.get("quick_reply"))
    if quick.get("payload"):
        return InboundEvent(
            kind=EventKind.BUTTON, payload=_str(quick["payload"], 1000), text=text[:200] or None, **base
        )
    attachments = _dicts(message.get("attachments"))
    mention = next((a for a in attachments if a.get("type") == "story_mention"), None)
    if mention is not None:
        base["data"] = {**data, "story_mention": _str(_obj(mention.get("payload")).get("url"), 1000)}
        return InboundEvent(kind=EventKind.TEXT, text=text, **base)
    media = [a for a in attachments if a.get("type") in _MEDIA and _str(_obj(a.get("payload")).get("url"), 2000)]
    if media:
        kept = tuple(
            Attachment(kind=_MEDIA[str(a["type"])], url=MEDIA_PREFIX + _str(_obj(a.get("payload")).get("url"), 2000))
            for a in media[:10]
        )
        kind = EventKind.PHOTO if kept[0].kind == "photo" else EventKind.FILE
        return InboundEvent(kind=kind, text=text or None, attachments=kept, **base)
    if message.get("is_unsupported") or (attachments and not text):
        kinds = ",".join(_str(a.get("type"), 20) for a in attachments) or "unsupported"
        base["data"] = {**data, "unsupported": kinds[:40]}
        return InboundEvent(kind=EventKind.TEXT, text="", **base)
    return InboundEvent(kind=EventKind.TEXT, text=text, **base)
