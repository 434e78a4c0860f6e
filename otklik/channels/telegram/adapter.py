"""Telegram channel: a `ChannelSender` and an inbound handler wrapped around aiogram's `Bot`.

- `TelegramSender` renders an `OutboundMessage` (HTML-escaped text split to 4096, inline or contact
  keyboard, photos/documents) and maps aiogram errors to `SendError`.
- `TelegramInbound` turns updates (webhook or polling) into `InboundEvent`s: it answers button presses,
  downloads photos/documents into the `MediaStore` and hands each event to `on_event` (the runtime's
  `ingest`).

Parsing, webhook checks and deep links live in `telegram_parse`, rendering in `telegram_render`,
long polling in `telegram_polling`; the public names are re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup
from aiogram.utils.token import TokenValidationError

from otklik.adapters.media import MediaStore, MediaTooLarge
from otklik.core.channel import ChannelLimits, SendError, SendResult
from otklik.core.messages import Attachment, EventKind, InboundEvent, OutboundMessage

from .parse import (
    SECRET_HEADER,
    TG_FILE_PREFIX,
    deep_link,
    generate_secret_token,
    parse_update,
    parse_webhook_body,
    validate_start_payload,
    verify_secret,
)
from .polling import MemoryOffsetStore, OffsetStore, run_polling
from .render import (
    CAPTION_LIMIT,
    CallbackStore,
    InMemoryCallbackStore,
    build_contact_keyboard,
    build_inline_keyboard,
    escape,
    split_text,
    utf16_len,
)

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_LIMITS",
    "SECRET_HEADER",
    "BotInfo",
    "CallbackStore",
    "InMemoryCallbackStore",
    "InvalidToken",
    "MemoryOffsetStore",
    "OffsetStore",
    "TelegramInbound",
    "TelegramSender",
    "TelegramTokenRevoked",
    "deep_link",
    "generate_secret_token",
    "make_bot",
    "map_error",
    "mask_token",
    "parse_update",
    "parse_webhook_body",
    "run_polling",
    "validate_start_payload",
    "validate_token",
    "verify_secret",
]

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.telegram.org"
DEFAULT_LIMITS = ChannelLimits(per_second=30, per_chat_interval=1.0)
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # bots cannot download larger files through the public Bot API
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024  # larger pictures go out as documents
DEFAULT_CONTACT_BUTTON = "📱 Поделиться номером телефона"

OnEvent = Callable[[InboundEvent], Awaitable[object]]
Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup


class InvalidToken(ValueError):
    """The bot token is malformed or Telegram rejected it (401)."""


class TelegramTokenRevoked(SendError):
    """Telegram answered 401: the token was revoked; every send on this account will fail."""


@dataclass(frozen=True, slots=True)
class BotInfo:
    id: int
    username: str
    first_name: str


def make_bot(token: str, api_url: str = DEFAULT_API_URL, *, timeout: float = 30.0) -> Bot:
    """An aiogram `Bot` talking to `api_url` (Telegram, a local Bot API server or the test fake)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url.rstrip("/")), timeout=timeout)
    try:
        return Bot(token, session=session)
    except TokenValidationError as error:
        raise InvalidToken(f"malformed bot token {mask_token(token)}: expected <digits>:<secret>") from error


async def validate_token(api_url: str, token: str, *, request_timeout: float = 10.0) -> BotInfo:
    """Ask Telegram who the token belongs to (getMe). `InvalidToken` when it is malformed or refused."""
    bot = make_bot(token, api_url, timeout=request_timeout)
    try:
        me = await bot.get_me()
    except TelegramUnauthorizedError as error:
        raise InvalidToken(f"Telegram rejected the token {mask_token(token)}") from error
    finally:
        await bot.session.close()
    return BotInfo(id=me.id, username=me.username or "", first_name=me.first_name)


def mask_token(token: str) -> str:
    """`123456:ABCDEF…yz` → `123456:AB…yz`: enough to recognise a token, useless to steal it."""
    bot_id, separator, secret = token.partition(":")
    if not separator or not bot_id.isdigit():
        return "…"  # not a token at all: show nothing of it
    if len(secret) < 8:
        return f"{bot_id}:…"
    return f"{bot_id}:{secret[:2]}…{secret[-2:]}"


def map_error(error: BaseException) -> SendError | None:
    """Classify an aiogram error for the dispatcher; None when it is not a Telegram/transport error."""
    text = f"telegram: {getattr(error, 'message', None) or error}"
    if isinstance(error, TelegramRetryAfter):
        return SendError(text, retry_after=float(error.retry_after))
    if isinstance(error, TelegramForbiddenError):  # blocked, deactivated, never started the bot
        return SendError(text, unreachable=True)
    if isinstance(error, TelegramUnauthorizedError):
        return TelegramTokenRevoked(text, permanent=True)
    if isinstance(error, TelegramEntityTooLarge | TelegramBadRequest | TelegramNotFound | TelegramMigrateToChat):
        return SendError(text, permanent=True)
    if isinstance(error, TelegramServerError | TelegramNetworkError | TelegramConflictError):
        return SendError(text)
    if isinstance(error, ClientDecodeError | TimeoutError | aiohttp.ClientError):
        return SendError(text)  # e.g. an HTML 502 page from a proxy in front of the API
    return None


@dataclass(slots=True)
class _Step:
    """One Bot API call of a rendered message."""

    call: Callable[..., Awaitable[Message]]
    kwargs: dict[str, Any] = field(default_factory=dict)


class TelegramSender:
    """`ChannelSender` for one bot. `recipient` is the chat id (as text)."""

    kind = "telegram"
    supports_idempotency = False

    def __init__(
        self,
        bot: Bot,
        *,
        callbacks: CallbackStore | None = None,
        media: MediaStore | None = None,
        limits: ChannelLimits = DEFAULT_LIMITS,
        contact_button_text: str = DEFAULT_CONTACT_BUTTON,
        continuation_retries: int = 3,
        max_inline_wait: float = 5.0,
        retry_base_delay: float = 1.0,
        close_bot: bool = True,
    ) -> None:
        """`continuation_retries`: a long message goes out in several calls; once the first is sent,
        a failing later part is retried here (up to `max_inline_wait` s per wait), because a retry of
        the whole outbox row would send the first parts twice."""
        self.bot = bot
        self.callbacks: CallbackStore = callbacks if callbacks is not None else InMemoryCallbackStore()
        self.media = media
        self.limits = limits
        self.contact_button_text = contact_button_text
        self.continuation_retries = continuation_retries
        self.max_inline_wait = max_inline_wait
        self.retry_base_delay = retry_base_delay
        self._close_bot = close_bot

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        """Send; returns the id of the last Telegram message (the one carrying the keyboard)."""
        steps = await self._plan(_chat_id(recipient), message)
        if not steps:
            raise SendError("nothing to send: no text and no attachments", permanent=True)
        sent: Message | None = None
        for index, step in enumerate(steps):
            sent = await self._run(step, index, len(steps))
        assert sent is not None
        return SendResult(external_id=str(sent.message_id))

    async def aclose(self) -> None:
        if self._close_bot:
            await self.bot.session.close()

    async def _plan(self, chat_id: int | str, message: OutboundMessage) -> list[_Step]:
        text = message.text.strip()
        steps: list[_Step] = []
        attachments = message.attachments
        if len(attachments) == 1 and text and utf16_len(text) <= CAPTION_LIMIT:
            steps.append(await self._attachment_step(chat_id, attachments[0], text))
        else:
            for chunk in split_text(text):
                steps.append(_text_step(self.bot, chat_id, chunk))
            for attachment in attachments:
                caption = attachment.caption
                fits = caption is None or utf16_len(caption) <= CAPTION_LIMIT
                steps.append(await self._attachment_step(chat_id, attachment, caption if fits else None))
                if not fits and caption:
                    steps += [_text_step(self.bot, chat_id, chunk) for chunk in split_text(caption)]
        markup = await self._markup(message)
        if markup is not None and steps:
            steps[-1].kwargs["reply_markup"] = markup
        return steps

    async def _markup(self, message: OutboundMessage) -> Markup | None:
        if message.request_contact:
            return build_contact_keyboard(message, self.contact_button_text)
        if message.buttons:
            return await build_inline_keyboard(message, self.callbacks)
        return None

    async def _attachment_step(self, chat_id: int | str, attachment: Attachment, caption: str | None) -> _Step:
        source = await self._file_source(attachment)
        too_big_for_photo = isinstance(source, BufferedInputFile) and len(source.data) > PHOTO_UPLOAD_LIMIT
        kwargs: dict[str, Any] = {"chat_id": chat_id}
        if caption:
            kwargs.update(caption=escape(caption), parse_mode="HTML")
        if attachment.kind == "photo" and not too_big_for_photo:
            return _Step(self.bot.send_photo, {**kwargs, "photo": source})
        return _Step(self.bot.send_document, {**kwargs, "document": source})

    async def _file_source(self, attachment: Attachment) -> str | BufferedInputFile:
        """Bytes from the media store, a Telegram file_id, or an HTTP(S) URL Telegram fetches itself."""
        if attachment.media_id:
            if self.media is None:
                raise SendError("an attachment refers to the media store, but none is configured", permanent=True)
            try:
                data = await self.media.read(attachment.media_id)
            except KeyError as error:
                raise SendError(f"media {attachment.media_id} not found", permanent=True) from error
            return BufferedInputFile(data, filename=_filename(attachment))
        url = attachment.url or ""
        if url.startswith(TG_FILE_PREFIX):
            return url.removeprefix(TG_FILE_PREFIX)
        if url.startswith(("https://", "http://")):
            return url
        raise SendError(f"attachment has neither media_id nor a usable url: {url!r}", permanent=True)

    async def _run(self, step: _Step, index: int, total: int) -> Message:
        attempts = 1 if index == 0 else 1 + self.continuation_retries
        for attempt in range(attempts):
            try:
                return await step.call(**step.kwargs)
            except Exception as error:
                mapped = map_error(error)
                if mapped is None:
                    raise
                wait = mapped.retry_after or self.retry_base_delay * 2**attempt
                if mapped.permanent or wait > self.max_inline_wait or attempt == attempts - 1:
                    if index:
                        mapped.args = (f"{mapped} (after {index} of {total} parts were sent)",)
                    raise mapped from error
                log.warning("telegram: part %d/%d failed (%s), retrying in %.1fs", index + 1, total, mapped, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")


def _text_step(bot: Bot, chat_id: int | str, chunk: str) -> _Step:
    return _Step(bot.send_message, {"chat_id": chat_id, "text": escape(chunk), "parse_mode": "HTML"})


def _chat_id(recipient: str) -> int | str:
    try:
        return int(recipient)
    except ValueError:
        return recipient  # "@channelusername"


def _filename(attachment: Attachment) -> str:
    if attachment.filename:
        return attachment.filename
    extension = mimetypes.guess_extension(attachment.content_type or "") or ""
    if attachment.kind == "photo":
        return "photo" + (extension or ".jpg")
    return "file" + extension


class _TooLarge(Exception):
    pass


class TelegramInbound:
    """Completes parsed updates (button answers, file downloads) and passes each event to `on_event`."""

    def __init__(
        self,
        *,
        channel_account_id: int,
        bot: Bot,
        on_event: OnEvent,
        media: MediaStore,
        max_file_bytes: int = DOWNLOAD_LIMIT,
        callbacks: CallbackStore | None = None,
        clear_keyboard_on_press: bool = False,
        download_timeout: int = 60,
    ) -> None:
        self.channel_account_id = channel_account_id
        self.bot = bot
        self.on_event = on_event
        self.media = media
        self.max_file_bytes = max_file_bytes
        self.callbacks: CallbackStore = callbacks if callbacks is not None else InMemoryCallbackStore()
        self.clear_keyboard_on_press = clear_keyboard_on_press
        self.download_timeout = download_timeout

    async def handle_update(self, raw: dict[str, Any]) -> None:
        """Parse one update and deliver its events. Exceptions from `on_event` propagate (the caller
        retries: a webhook answers 5xx and Telegram redelivers; polling does not confirm the update)."""
        for event in parse_update(raw, self.channel_account_id):
            await self.on_event(await self._complete(event))

    async def _complete(self, event: InboundEvent) -> InboundEvent:
        if event.kind is EventKind.BUTTON:
            event = await self._on_button(event)
        if any((a.url or "").startswith(TG_FILE_PREFIX) for a in event.attachments):
            event = await self._download_all(event)
        return event

    async def _on_button(self, event: InboundEvent) -> InboundEvent:
        query_id = event.data.get("callback_query_id")
        if query_id:
            await self._quietly("answerCallbackQuery", self.bot.answer_callback_query(query_id))
        message_id = event.data.get("message_id")
        if self.clear_keyboard_on_press and message_id:
            edit = self.bot.edit_message_reply_markup(chat_id=int(event.sender_id), message_id=message_id)
            await self._quietly("editMessageReplyMarkup", edit)
        key = event.data.get("callback_key")
        if key is None:
            return event
        payload = await self.callbacks.get(key)
        if payload is None:
            return replace(event, data={**event.data, "callback_unresolved": True})
        return replace(event, payload=payload)

    @staticmethod
    async def _quietly(what: str, call: Awaitable[object]) -> None:
        """Answering a press or hiding a keyboard is cosmetic: a stale query must not lose the event."""
        try:
            await call
        except (TelegramAPIError, ClientDecodeError) as error:
            log.warning("telegram: %s failed: %s", what, error)

    async def _download_all(self, event: InboundEvent) -> InboundEvent:
        kept: list[Attachment] = []
        errors: list[str] = []
        for attachment in event.attachments:
            result = await self._download(attachment)
            if isinstance(result, Attachment):
                kept.append(result)
            else:
                errors.append(result)
        data = dict(event.data)
        if errors:
            data["upload_error"] = errors[0]
            data["max_file_bytes"] = self.max_file_bytes
        return replace(event, attachments=tuple(kept), data=data)

    async def _download(self, attachment: Attachment) -> Attachment | str:
        """The attachment stored in the media store, or an error code: "too_large" | "download_failed"."""
        if attachment.size is not None and attachment.size > self.max_file_bytes:
            return "too_large"
        file_id = (attachment.url or "").removeprefix(TG_FILE_PREFIX)
        try:
            file = await self.bot.get_file(file_id)
            if file.file_size is not None and file.file_size > self.max_file_bytes:
                return "too_large"
            if not file.file_path:
                return "download_failed"
            data = await self._fetch(file.file_path)
            content_type = attachment.content_type or _guess_type(file.file_path)
            stored = await self.media.save(data, content_type, attachment.filename)
        except (_TooLarge, MediaTooLarge):
            return "too_large"
        except TelegramBadRequest as error:
            return "too_large" if "too big" in error.message.lower() else "download_failed"
        except (TimeoutError, TelegramAPIError, ClientDecodeError, aiohttp.ClientError) as error:
            log.warning("telegram: downloading %s failed: %s", file_id, error)
            return "download_failed"
        return replace(attachment, media_id=stored.media_id, url=None, size=stored.size, content_type=content_type)

    async def _fetch(self, file_path: str) -> bytes:
        """Download with a size cap that holds even when Telegram did not tell the size beforehand."""
        api = self.bot.session.api
        if api.is_local:  # a self-hosted Bot API server hands out local paths
            buffer = await self.bot.download_file(file_path, timeout=self.download_timeout)
            data = buffer.read() if buffer is not None else b""
            if len(data) > self.max_file_bytes:
                raise _TooLarge
            return data
        url = api.file_url(self.bot.token, file_path)
        received = bytearray()
        chunks = self.bot.session.stream_content(url, timeout=self.download_timeout)
        async with aclosing(chunks):
            async for chunk in chunks:
                received += chunk
                if len(received) > self.max_file_bytes:
                    raise _TooLarge
        return bytes(received)


def _guess_type(file_path: str) -> str:
    return mimetypes.guess_type(file_path)[0] or "application/octet-stream"
