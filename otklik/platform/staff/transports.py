"""How a staff notification leaves: a small registry of transports, each one `StaffTransport`.

Built in: `telegram` (the bot of a Telegram channel account, through aiogram's `Bot` against
`OTKLIK_TELEGRAM_API_URL`) and `email` (SMTP through aiosmtplib). A transport raises `SendError` (the
dispatcher's classification: `retry_after`, `permanent`, otherwise transient) and the worker retries. A new
one (WhatsApp) is a class with `name`, `idempotent`, `send`, `aclose`, added to the dict `build_transports`
returns (or to `StaffNotifier.transports` by whatever builds it).
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

import aiohttp
import aiosmtplib
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import LinkPreviewOptions
from aiogram.utils.token import TokenValidationError
from sqlalchemy import select

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount
from otklik.config import Settings
from otklik.core.channel import SendError

log = logging.getLogger(__name__)
TELEGRAM_TEXT = 4000  # Telegram's limit is 4096 UTF-16 units; the text is cut well before it


#: Headers are not folded below RFC 5322's hard limit: folding a subject of several encoded words (Cyrillic)
#: at 78 characters drops the space between two of them ("Салон«Лён»"), a known fault of the stdlib folder.
MAIL_POLICY = policy.default.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification row as a transport sees it. `key` is stable across retries of the row."""

    id: int
    address: str
    subject: str
    body: str
    link: str
    key: str


class StaffTransport(Protocol):
    name: str
    idempotent: bool  # a send interrupted by a crash may be repeated (the receiver can tell the copies apart)

    async def send(self, delivery: Delivery) -> None: ...

    async def aclose(self) -> None: ...


def printable(text: str, *, keep_newlines: bool = True) -> str:
    """Control and format characters (except newlines and tabs) removed; what reaches a person's screen."""
    out = []
    for char in text:
        if char in "\n\t" and keep_newlines:
            out.append(char)
        elif char in "\r\n\t\v\f\x85\u2028\u2029":
            out.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cs", "Co", "Cn"):
            out.append(char)
    return "".join(out)


def plain_text(delivery: Delivery) -> str:
    parts = [printable(delivery.subject, keep_newlines=False), printable(delivery.body)]
    if delivery.link:
        parts.append(delivery.link)
    return "\n\n".join(p for p in parts if p.strip())


# --- Telegram -------------------------------------------------------------------------------------------


def cut_utf16(text: str, limit: int) -> str:
    """At most `limit` UTF-16 units (Telegram's measure: an emoji outside the BMP counts twice), with "…" when
    cut; never splits a surrogate pair."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    units, kept = 0, []
    for char in text:
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


class TelegramTransport:
    """Sends through the bot of an enabled Telegram channel account (`OTKLIK_STAFF_TELEGRAM_ACCOUNT` names
    it; default: the first one). The staff member (or the staff group) must have started the bot / added it."""

    name = "telegram"
    idempotent = False  # Telegram takes no idempotency key: an interrupted send becomes `uncertain`

    def __init__(self, db: Database, vault: Vault, settings: Settings) -> None:
        self.db, self.vault, self.settings = db, vault, settings
        self._bots: dict[str, Bot] = {}
        self._lock = asyncio.Lock()

    async def _bot(self) -> Bot:
        wanted = self.settings.staff_telegram_account
        query = select(ChannelAccount).where(ChannelAccount.kind == "telegram", ChannelAccount.enabled.is_(True))
        if wanted:
            query = query.where(ChannelAccount.name == wanted)
        async with self.db.read() as session:
            account = await session.scalar(query.order_by(ChannelAccount.id).limit(1))
        if account is None or not account.secret:
            which = f"named {wanted!r}" if wanted else "at all"
            raise SendError(f"telegram: no enabled Telegram bot account {which} to send from")
        token = self.vault.decrypt(account.secret)
        async with self._lock:
            bot = self._bots.get(token)
            if bot is None:
                api = TelegramAPIServer.from_base(self.settings.telegram_api_url.rstrip("/"))
                try:
                    bot = Bot(token, session=AiohttpSession(api=api, timeout=self.settings.send_timeout_seconds))
                except TokenValidationError:
                    raise SendError("telegram: the bot account's token is malformed", permanent=True) from None
                self._bots[token] = bot
        return bot

    async def send(self, delivery: Delivery) -> None:
        bot = await self._bot()
        chat: int | str = int(delivery.address) if delivery.address.lstrip("-").isdigit() else delivery.address
        text = plain_text(delivery)
        text = cut_utf16(text, TELEGRAM_TEXT)
        try:
            await bot.send_message(chat_id=chat, text=text, link_preview_options=LinkPreviewOptions(is_disabled=True))
        except Exception as error:
            mapped = telegram_error(error)
            if mapped is None:
                raise
            raise mapped from error

    async def aclose(self) -> None:
        for bot in self._bots.values():
            await bot.session.close()
        self._bots.clear()


def telegram_error(error: BaseException) -> SendError | None:
    text = f"telegram: {getattr(error, 'message', None) or error}"
    if isinstance(error, TelegramRetryAfter):
        return SendError(text, retry_after=float(error.retry_after))
    if isinstance(error, TelegramForbiddenError | TelegramBadRequest | TelegramNotFound):
        return SendError(text, permanent=True)  # blocked, never started the bot, chat not found
    if isinstance(error, TelegramUnauthorizedError):
        return SendError(text)  # a revoked token: the owner may put a new one; retried until the attempts run out
    if isinstance(error, TelegramServerError | TelegramNetworkError | aiohttp.ClientError | TimeoutError):
        return SendError(text)
    if type(error).__module__.startswith("aiogram"):
        return SendError(text)  # e.g. an HTML error page from a proxy (ClientDecodeError)
    return None


# --- e-mail ---------------------------------------------------------------------------------------------


class SmtpTransport:
    """Plain-text e-mail over SMTP (`OTKLIK_SMTP_*`). Every message carries a Message-ID made from the row,
    so a copy re-sent after a crash is recognisable as the same message (`idempotent`)."""

    name = "email"
    idempotent = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def message(self, delivery: Delivery) -> EmailMessage:
        sender = self.settings.smtp_from
        domain = sender.rpartition("@")[2] or "localhost"
        message = EmailMessage(policy=MAIL_POLICY)
        message["From"] = sender
        message["To"] = delivery.address
        message["Subject"] = " ".join(printable(delivery.subject, keep_newlines=False).split())[:200]
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = f"<{delivery.key}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"
        body = printable(delivery.body)
        if delivery.link:
            body = f"{body}\n\n{delivery.link}"
        message.set_content(body + "\n", charset="utf-8")
        return message

    async def send(self, delivery: Delivery) -> None:
        s = self.settings
        if not s.smtp_host:
            raise SendError("email: no SMTP server is configured (OTKLIK_SMTP_HOST)")
        kwargs: dict[str, Any] = {
            "hostname": s.smtp_host, "port": s.smtp_port, "timeout": s.smtp_timeout,
            "use_tls": s.smtp_security == "ssl", "start_tls": s.smtp_security == "starttls",
        }  # fmt: skip
        if s.smtp_user:
            kwargs |= {"username": s.smtp_user, "password": s.smtp_password.get_secret_value()}
        try:
            await aiosmtplib.send(self.message(delivery), **kwargs)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            raise SendError(f"email: recipient refused {codes}", permanent=all(c >= 500 for c in codes)) from error
        except aiosmtplib.SMTPDataError as error:
            raise SendError(
                f"email: message refused: {error.code} {error.message}", permanent=error.code >= 500
            ) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise SendError(f"email: {type(error).__name__}: {error}") from error  # down, auth, TLS: retried

    async def aclose(self) -> None:
        return None


def build_transports(db: Database, vault: Vault, settings: Settings) -> dict[str, StaffTransport]:
    """The built-in transports by name (what `staff_notifications.transport` holds)."""
    transports: list[StaffTransport] = [TelegramTransport(db, vault, settings), SmtpTransport(settings)]
    return {t.name: t for t in transports}
