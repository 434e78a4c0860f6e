"""Rendering `OutboundMessage`s for Telegram: HTML escaping, splitting long texts, keyboards.

Pure except for the `CallbackStore`, which keeps payloads that do not fit in Telegram's 64-byte
`callback_data` and is injected (in memory here, in the database later).
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import OrderedDict
from typing import Protocol

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from otklik.core.messages import OutboundMessage

TEXT_LIMIT = 4096  # sendMessage text, counted after entity parsing
CAPTION_LIMIT = 1024  # sendPhoto/sendDocument caption
CALLBACK_DATA_LIMIT = 64  # bytes, not characters
CALLBACK_KEY_PREFIX = "~"  # callback_data starting with it is a CallbackStore key, not a payload
_SEPARATORS = ("\n\n", "\n", " ")


class CallbackStore(Protocol):
    """Keeps button payloads longer than Telegram allows in `callback_data` under a short key."""

    async def put(self, payload: str) -> str:
        """Store `payload` and return a key of at most 60 ASCII characters."""
        ...

    async def get(self, key: str) -> str | None:
        """The payload stored under `key`, or None when it is unknown or expired."""
        ...


def callback_key(payload: str) -> str:
    """A stable 22-character key for a payload: the same payload always gets the same key."""
    digest = hashlib.sha256(payload.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


class InMemoryCallbackStore:
    """A bounded in-process CallbackStore (the oldest entries are forgotten first)."""

    def __init__(self, max_items: int = 100_000) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._max_items = max_items

    async def put(self, payload: str) -> str:
        key = callback_key(payload)
        self._items[key] = payload
        self._items.move_to_end(key)
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)
        return key

    async def get(self, key: str) -> str | None:
        return self._items.get(key)


async def encode_callback(payload: str, store: CallbackStore) -> str:
    """The `callback_data` for a payload: the payload itself when it fits, otherwise a store key."""
    size = len(payload.encode())
    if 0 < size <= CALLBACK_DATA_LIMIT and not payload.startswith(CALLBACK_KEY_PREFIX):
        return payload
    return CALLBACK_KEY_PREFIX + await store.put(payload)


def callback_store_key(data: str) -> str | None:
    """The CallbackStore key carried by `callback_data`, or None when the data is the payload itself."""
    return data[len(CALLBACK_KEY_PREFIX) :] if data.startswith(CALLBACK_KEY_PREFIX) else None


def escape(text: str) -> str:
    """Our texts are plain; Telegram's HTML parse mode needs `<`, `>` and `&` as entities."""
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Telegram measures text in UTF-16 code units (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Split plain text into non-empty chunks of at most `limit` UTF-16 units.

    Prefers paragraph, then line, then word boundaries; cuts inside a word only when a single word is
    longer than the limit. Split *before* escaping: the limit applies to the text the buyer sees.
    """
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            chunks.append(rest)
            break
        fit = max(_fitting_prefix(rest, limit), 1)
        cut = _boundary(rest[:fit]) or fit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return chunks


def _fitting_prefix(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def _boundary(window: str) -> int | None:
    """Where to cut `window`: the last paragraph/line/word break, preferring ones in its second half."""
    for min_pos in (len(window) // 2, 1):
        for separator in _SEPARATORS:
            pos = window.rfind(separator)
            if pos >= min_pos and window[:pos].strip():
                return pos
    return None


def inline_keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    """An inline keyboard from rows of (title, callback_data)."""
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=title, callback_data=data) for title, data in row] for row in rows]
    )


async def build_inline_keyboard(message: OutboundMessage, store: CallbackStore) -> InlineKeyboardMarkup:
    """One button per row (titles are often long sentences on a phone screen)."""
    rows = [[(button.title, await encode_callback(button.payload, store))] for button in message.buttons]
    return inline_keyboard(rows)


def build_contact_keyboard(message: OutboundMessage, contact_button_text: str) -> ReplyKeyboardMarkup:
    """A reply keyboard with a "share my phone" button.

    A message has one keyboard, so the message's buttons become plain reply buttons under it: pressing
    one sends its title as text, which the engine matches back to the button (`match_choice`).
    """
    rows = [[KeyboardButton(text=contact_button_text, request_contact=True)]]
    rows += [[KeyboardButton(text=button.title)] for button in message.buttons]
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, one_time_keyboard=True)
