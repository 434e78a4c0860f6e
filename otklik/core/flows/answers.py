"""Validation of answers to questions. Each parser returns the value to save or None when invalid."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import phonenumbers

from otklik.core.flows.model import QuestionNode
from otklik.core.messages import Button, EventKind, InboundEvent, match_choice
from otklik.core.templates import pick_language

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_RELATIVE_DAYS = {
    "сегодня": 0,
    "завтра": 1,
    "послезавтра": 2,
    "hoy": 0,
    "mañana": 1,
    "manana": 1,
    "pasado mañana": 2,
    "today": 0,
    "tomorrow": 1,
}


def option_buttons(node: QuestionNode, language: str, fallback: str) -> tuple[Button, ...]:
    return tuple(Button(pick_language(o.title, language, fallback), o.value) for o in node.options)


def parse_answer(
    node: QuestionNode,
    event: InboundEvent,
    *,
    language: str,
    fallback: str,
    region: str,
    today: date,
) -> tuple[object, str | None] | None:
    """(value, next node override) for a valid answer, or None."""
    text = (event.text or "").strip()
    kind = node.kind
    if kind == "choice":
        return _choice(node, event, text, language, fallback)
    if kind in ("photo", "file"):
        media = [a.media_id for a in event.attachments if a.media_id and (kind == "file" or a.kind == "photo")]
        if event.data.get("upload_error") or not media:
            return None
        return (media[0] if len(media) == 1 else media), None
    value: object
    if kind == "phone":
        raw = event.phone if event.kind == EventKind.CONTACT and event.phone else text
        value = parse_phone(raw, region)
    elif kind == "number":
        value = parse_number(text, node.min, node.max)
    elif kind == "date":
        value = parse_date(text, today)
    elif kind == "email":
        value = text.lower() if _EMAIL.match(text) else None
    else:
        value = text if text and len(text) <= node.max_length else None
    return (value, None) if value is not None else None


def _choice(
    node: QuestionNode, event: InboundEvent, text: str, language: str, fallback: str
) -> tuple[object, str | None] | None:
    buttons = option_buttons(node, language, fallback)
    chosen: Button | None = None
    if event.kind == EventKind.BUTTON and event.payload:
        chosen = next((b for b in buttons if b.payload == event.payload), None)
    elif text:
        chosen = match_choice(text, buttons)
    if chosen is None:
        return None
    option = next(o for o in node.options if o.value == chosen.payload)
    return option.value, option.next


def parse_phone(raw: str | None, region: str) -> str | None:
    """Any common written form -> E.164, or None when it is not a valid number."""
    if not raw or len(raw) > 40:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_number(text: str, low: float | None, high: float | None) -> float | int | None:
    compact = text.replace(" ", "").replace("\u00a0", "")
    if not _NUMBER.match(compact):
        return None
    value = float(compact.replace(",", "."))
    if (low is not None and value < low) or (high is not None and value > high):
        return None
    return int(value) if value.is_integer() else value


def parse_date(text: str, today: date) -> str | None:
    """dd.mm.yyyy, dd.mm, dd/mm/yyyy, yyyy-mm-dd and today/tomorrow words -> ISO date."""
    lowered = text.strip().lower()
    if lowered in _RELATIVE_DAYS:
        return (today + timedelta(days=_RELATIVE_DAYS[lowered])).isoformat()
    for fmt in ("%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%d", "%d.%m.%y"):
        try:
            return datetime.strptime(lowered, fmt).date().isoformat()
        except ValueError:
            continue
    match = re.fullmatch(r"(\d{1,2})[./](\d{1,2})", lowered)
    if match:
        try:
            return date(today.year, int(match.group(2)), int(match.group(1))).isoformat()
        except ValueError:
            return None
    return None
