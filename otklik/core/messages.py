"""One envelope per direction: every channel turns its updates into `InboundEvent`s and receives
`OutboundMessage`s. Channels that lack a feature degrade the message (buttons -> numbered text)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What an inbound event carries."""

    TEXT = "text"
    BUTTON = "button"
    PHOTO = "photo"
    FILE = "file"
    CONTACT = "contact"
    STATUS = "status"  # delivery/read receipt for an outbound message
    EDITED = "edited"  # an edited earlier message: recorded, not answered
    TIMER = "timer"  # a durable timer fired (internal)
    ACTION_RESULT = "action_result"  # a pluggable action finished (internal)
    REACHABILITY = "reachability"  # the buyer blocked/unblocked the bot
    NOTICE = "notice"  # not the buyer's: the marketplace itself, or the seller outside otklik, wrote in the
    # chat (`data["from"]`: "marketplace" | "seller"); shown in the inbox, never answered by the bot


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the buyer sent or the bot sends. `media_id` refers to the media store."""

    kind: str  # "photo" | "file"
    media_id: str | None = None
    url: str | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int | None = None
    caption: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in _asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attachment:
        return cls(**{k: data.get(k) for k in cls.__slots__})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Button:
    """A choice offered to the buyer. `payload` comes back in a BUTTON event."""

    title: str
    payload: str

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "payload": self.payload}


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A normalised update from any channel.

    `external_id` is unique per channel account and makes redelivery harmless.
    `sender_id` is the buyer's id on that channel (chat id, phone, web-chat session).
    """

    channel_account_id: int
    external_id: str
    sender_id: str
    kind: EventKind
    text: str | None = None
    payload: str | None = None  # button payload, /start payload, status value, timer token
    attachments: tuple[Attachment, ...] = ()
    phone: str | None = None  # shared contact
    sender_name: str | None = None
    language: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TemplateRef:
    """An approved message template of a channel with a customer-service window (WhatsApp): its name, its
    language and the values of its body parameters, in order ({{1}}, {{2}}, …)."""

    name: str
    language: str
    params: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "language": self.language, "params": list(self.params)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TemplateRef:
        return cls(str(data["name"]), str(data.get("language") or ""), tuple(str(p) for p in data.get("params") or ()))


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What the bot (or an operator) sends. Adapters render it for their channel.

    `template`: on a channel with a 24-hour window, what goes instead of this message once the window is
    closed (or the message itself when it has no text, no buttons and no attachments); other channels
    ignore it. `reply_to`: the channel's id of the message this one answers, where the channel shows it."""

    text: str = ""
    buttons: tuple[Button, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    request_contact: bool = False  # ask the channel to show a "share phone" button when it can
    template: TemplateRef | None = None
    reply_to: str | None = None

    @property
    def template_only(self) -> bool:
        return self.template is not None and not (self.text.strip() or self.buttons or self.attachments)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text}
        if self.buttons:
            out["buttons"] = [b.to_dict() for b in self.buttons]
        if self.attachments:
            out["attachments"] = [a.to_dict() for a in self.attachments]
        if self.request_contact:
            out["request_contact"] = True
        if self.template is not None:
            out["template"] = self.template.to_dict()
        if self.reply_to:
            out["reply_to"] = self.reply_to
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutboundMessage:
        template = data.get("template")
        return cls(
            text=str(data.get("text") or ""),
            buttons=tuple(Button(str(b["title"]), str(b["payload"])) for b in data.get("buttons") or ()),
            attachments=tuple(Attachment.from_dict(a) for a in data.get("attachments") or ()),
            request_contact=bool(data.get("request_contact")),
            template=TemplateRef.from_dict(template) if isinstance(template, dict) else None,
            reply_to=str(data["reply_to"]) if data.get("reply_to") else None,
        )


def degrade_buttons(message: OutboundMessage) -> OutboundMessage:
    """Render buttons as a numbered list for channels without buttons.

    The buyer can answer with the number or the title; `match_choice` understands both.
    """
    if not message.buttons:
        return message
    lines = [message.text] if message.text else []
    lines += [f"{i}. {b.title}" for i, b in enumerate(message.buttons, start=1)]
    return OutboundMessage(
        text="\n".join(lines), attachments=message.attachments, template=message.template, reply_to=message.reply_to
    )


def match_choice(text: str, buttons: tuple[Button, ...] | list[Button]) -> Button | None:
    """Find the button a typed answer means: its title or payload first (case-insensitive), else its
    number in the list. Titles win so that "5" on rating buttons 5..1 means the button titled 5."""
    answer = text.strip().lower()
    for candidate in (answer, answer.rstrip(".)")):
        for button in buttons:
            if candidate in (button.title.strip().lower(), button.payload.lower()):
                return button
    number = answer.rstrip(".)")
    if number.isdigit():
        index = int(number) - 1
        return buttons[index] if 0 <= index < len(buttons) else None
    return None


def _asdict(obj: Attachment) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


# C0 controls but tab and newline, DEL, and lone UTF-16 surrogates (a JSON "\ud800" decodes to one): no
# channel means them as text, PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def strip_controls(text: str) -> str:
    """The text without control characters (tab and newline are kept; CR LF becomes LF)."""
    return _CONTROLS.sub("", text)


def _clean(value: str | None) -> str | None:
    return None if value is None else strip_controls(value)


def clean_inbound(event: InboundEvent) -> InboundEvent:
    """The event with control characters removed from every string a channel (or the buyer) chose."""
    fields: list[str | None] = [event.external_id, event.sender_id, event.text, event.payload, event.sender_name]
    fields += [event.phone, event.language, *(a.filename for a in event.attachments)]
    fields += [a.caption for a in event.attachments]
    if not any(_CONTROLS.search(v) for v in fields if v):
        return event  # the common case: nothing to copy
    attachments = tuple(replace(a, filename=_clean(a.filename), caption=_clean(a.caption)) for a in event.attachments)
    return replace(
        event,
        external_id=strip_controls(event.external_id),
        sender_id=strip_controls(event.sender_id),
        language=_clean(event.language),
        text=_clean(event.text),
        payload=_clean(event.payload),
        sender_name=_clean(event.sender_name),
        phone=_clean(event.phone),
        attachments=attachments,
    )
