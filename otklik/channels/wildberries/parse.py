"""WB buyer chat events (`GET /api/v1/seller/events`) -> `InboundEvent`s. Pure: no I/O.

- `sender: client` -> the buyer's text, photo or file (attachments refer to WB's `downloadID` until the
  runtime downloads them); the attached product / order card goes into `data["context"]["wb_card"]`, so
  the flows know the product (`wb_card.nm_id`, `wb_card.size`) and the order (`wb_card.order_id`).
- `sender: wb` -> a NOTICE from the marketplace: shown in the inbox, never answered.
- `sender: seller` -> written from the seller portal (a NOTICE from the seller); our own API messages
  (`source: seller-public-api`) come back as events too and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from otklik.adapters.wildberries.schemas import ChatEvent, GoodCard
from otklik.core.messages import Attachment, EventKind, InboundEvent

DOWNLOAD_PREFIX = "wb-download:"
MAX_TEXT = 8192  # WB caps a buyer's message far below this; anything longer is cut, not refused
MAX_FILES = 10


@dataclass(frozen=True, slots=True)
class Parsed:
    """One event read: `event` to ingest (None: nothing to ingest), the chat it belongs to, the chat's
    new `replySign` (first event of a new chat) and card, or `problem` when it could not be read."""

    event: InboundEvent | None
    chat_id: str = ""
    reply_sign: str = ""
    card: dict[str, Any] | None = None
    problem: str = ""


def parse_event(account_id: int, raw: Any) -> Parsed:
    """One raw event; never raises (a malformed event is a `problem`, the others go on)."""
    if not isinstance(raw, dict):
        return Parsed(None, problem=f"not an object: {type(raw).__name__}")
    try:
        ev = ChatEvent.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "event"
        return Parsed(None, problem=f"{where}: {first['msg']}")
    card = _card(ev)
    base = Parsed(None, ev.chat_id, ev.reply_sign[:255] if ev.is_new_chat else "", card)
    if ev.event_type and ev.event_type != "message":
        return Parsed(None, ev.chat_id, base.reply_sign, card, problem=f"event type {ev.event_type!r} ignored")
    message = ev.message
    text = (message.text if message else "")[:MAX_TEXT]
    if ev.sender == "seller" and ev.source == "seller-public-api":
        return base  # our own reply (or another integration's), echoed back
    if ev.sender in ("wb", "seller"):
        notice = InboundEvent(
            channel_account_id=account_id,
            external_id=ev.event_id,
            sender_id=ev.chat_id,
            kind=EventKind.NOTICE,
            text=text,
            data={"from": "marketplace" if ev.sender == "wb" else "seller"},
        )
        return Parsed(notice, ev.chat_id, base.reply_sign, card)
    if ev.sender != "client":
        return Parsed(None, ev.chat_id, base.reply_sign, card, problem=f"unknown sender {ev.sender!r}")
    attachments = _attachments(ev)
    kind = EventKind.TEXT
    if any(a.kind == "photo" for a in attachments):
        kind = EventKind.PHOTO
    elif attachments:
        kind = EventKind.FILE
    data: dict[str, Any] = {"wb_source": ev.source[:32]}
    if card is not None:
        data["context"] = {"wb_card": card}
    event = InboundEvent(
        channel_account_id=account_id,
        external_id=ev.event_id,
        sender_id=ev.chat_id,
        kind=kind,
        text=text,
        attachments=attachments,
        sender_name=ev.client_name[:200] or None,
        language="ru",
        data=data,
    )
    return Parsed(event, ev.chat_id, base.reply_sign, card)


def _card(ev: ChatEvent) -> dict[str, Any] | None:
    attachments = ev.message.attachments if ev.message else None
    card: GoodCard | None = attachments.good_card if attachments else None
    return card.as_context() if card is not None else None


def _attachments(ev: ChatEvent) -> tuple[Attachment, ...]:
    attachments = ev.message.attachments if ev.message else None
    if attachments is None:
        return ()
    out: list[Attachment] = []
    for image in attachments.images:
        if image.download_id:
            out.append(Attachment(kind="photo", url=DOWNLOAD_PREFIX + image.download_id[:200]))
    for file in attachments.files:
        if file.download_id:
            out.append(
                Attachment(
                    kind="photo" if file.content_type.startswith("image/") else "file",
                    url=DOWNLOAD_PREFIX + file.download_id[:200],
                    filename=file.name[:200] or None,
                    content_type=file.content_type[:100] or None,
                    size=file.size,
                )
            )
    return tuple(out[:MAX_FILES])
