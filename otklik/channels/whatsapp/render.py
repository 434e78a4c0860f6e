"""An `OutboundMessage` → the Graph API calls that carry it. Pure: no I/O.

- text ≤ 4096 characters per message, split beyond (at a line break or a space when there is one);
- buttons: ≤ 3 with titles ≤ 20 characters, unique → reply buttons; ≤ 10 rows (titles ≤ 24, the full title
  in the row's description when longer, descriptions ≤ 72) → a list; beyond → numbered text (the buyer
  answers with the number or the title, as on channels without buttons). The interactive message's body is
  ≤ 1024 characters: longer text goes first as plain text;
- attachments: photos as `image`, everything else as `document` (with its file name), by uploaded media id
  (the sender uploads) or by https link; one attachment with a short text carries it as its caption;
- `reply_to`: the first message quotes it (`context.message_id`);
- templates (`template_body`) with their body parameters in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otklik.core.messages import Attachment, Button, OutboundMessage, TemplateRef, degrade_buttons

TEXT_LIMIT = 4096
BODY_LIMIT = 1024
CAPTION_LIMIT = 1024
BUTTONS_MAX, BUTTON_TITLE = 3, 20
ROWS_MAX, ROW_TITLE, ROW_DESCRIPTION, ROW_ID = 10, 24, 72, 200
BUTTON_ID = 256
LIST_LABELS = {"ru": "Выбрать", "es": "Elegir", "en": "Choose"}
IMAGE_TYPES = ("image/jpeg", "image/png")


@dataclass(slots=True)
class Step:
    """One POST /messages: `body` without `to`; `attachment` set when a media id must be uploaded first."""

    body: dict[str, Any]
    attachment: Attachment | None = None
    media_kind: str | None = None  # "image" | "document"
    meta: dict[str, Any] = field(default_factory=dict)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Chunks of at most `limit` characters, cut at the last line break (else space) before the limit."""
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        chunks.append(text)
    return chunks


def _text(body: str) -> Step:
    return Step({"type": "text", "text": {"preview_url": False, "body": body}})


def buttons_fit(buttons: tuple[Button, ...]) -> bool:
    titles = [b.title.strip() for b in buttons]
    return (
        0 < len(buttons) <= BUTTONS_MAX
        and all(0 < len(t) <= BUTTON_TITLE for t in titles)
        and len(set(titles)) == len(titles)
        and all(0 < len(b.payload) <= BUTTON_ID for b in buttons)
        and len({b.payload for b in buttons}) == len(buttons)
    )


def list_fits(buttons: tuple[Button, ...]) -> bool:
    return (
        0 < len(buttons) <= ROWS_MAX
        and all(b.title.strip() for b in buttons)
        and all(0 < len(b.payload) <= ROW_ID for b in buttons)
        and len({b.payload for b in buttons}) == len(buttons)
    )


def _row(button: Button) -> dict[str, Any]:
    title = button.title.strip()
    row: dict[str, Any] = {"id": button.payload, "title": title}
    if len(title) > ROW_TITLE:
        row["title"] = title[: ROW_TITLE - 1].rstrip() + "…"
        row["description"] = title[: ROW_DESCRIPTION - 1] + "…" if len(title) > ROW_DESCRIPTION else title
    return row


def _interactive(body: str, buttons: tuple[Button, ...], list_label: str) -> Step:
    if buttons_fit(buttons):
        action: dict[str, Any] = {
            "buttons": [{"type": "reply", "reply": {"id": b.payload, "title": b.title.strip()}} for b in buttons]
        }
        return Step(
            {"type": "interactive", "interactive": {"type": "button", "body": {"text": body}, "action": action}}
        )
    action = {"button": list_label[:BUTTON_TITLE], "sections": [{"rows": [_row(b) for b in buttons]}]}
    return Step({"type": "interactive", "interactive": {"type": "list", "body": {"text": body}, "action": action}})


def _media(attachment: Attachment, caption: str | None) -> Step:
    photo = attachment.kind == "photo" and (attachment.content_type in (None, *IMAGE_TYPES))
    kind = "image" if photo else "document"
    body: dict[str, Any] = {}
    if caption:
        body["caption"] = caption[:CAPTION_LIMIT]
    if kind == "document":
        body["filename"] = (attachment.filename or "document")[:240]
    return Step({"type": kind, kind: body}, attachment=attachment, media_kind=kind)


def render(message: OutboundMessage, *, language: str = "en") -> list[Step]:
    """The calls, in order. Empty when there is nothing to send."""
    buttons = message.buttons
    text = message.text.strip()
    if buttons and not (buttons_fit(buttons) or list_fits(buttons)):
        degraded = degrade_buttons(message)
        buttons, text = (), degraded.text.strip()
    steps: list[Step] = []
    attachments = message.attachments
    captioned = len(attachments) == 1 and not buttons and 0 < len(text) <= CAPTION_LIMIT
    if captioned:
        steps.append(_media(attachments[0], text))
    else:
        if buttons:
            chunks = split_text(text) if text else []
            last = chunks.pop() if chunks else ""
            if len(last) > BODY_LIMIT:  # the interactive body is shorter than a text message
                chunks += split_text(last, BODY_LIMIT)
                last = chunks.pop()
            steps += [_text(c) for c in chunks]
            for attachment in attachments:
                steps.append(_media(attachment, attachment.caption))
            steps.append(_interactive(last or "⬇️", buttons, LIST_LABELS.get(language, LIST_LABELS["en"])))
        else:
            steps += [_text(c) for c in split_text(text)]
            for attachment in attachments:
                steps.append(_media(attachment, attachment.caption))
    if steps and message.reply_to:
        steps[0].body["context"] = {"message_id": message.reply_to}
    return steps


def template_body(ref: TemplateRef) -> dict[str, Any]:
    """`type: template` with the body parameters in order (their number checked against the synced template
    by `WindowGuard.plan` before this is sent)."""
    template: dict[str, Any] = {"name": ref.name, "language": {"code": ref.language}}
    if ref.params:
        parameters = [{"type": "text", "text": p[:1024] or "-"} for p in ref.params]
        template["components"] = [{"type": "body", "parameters": parameters}]
    return {"type": "template", "template": template}
