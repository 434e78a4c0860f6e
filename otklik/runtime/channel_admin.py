"""Channel accounts as the admin sees them: list (secrets masked), connect a Telegram bot, enable or
disable, test the connection. Secrets never leave this module unmasked."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from otklik.adapters.channels.telegram import InvalidToken, mask_token, validate_token
from otklik.adapters.channels.webhook import sign
from otklik.adapters.db.models import ChannelAccount
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput, NotFound, Unavailable
from otklik.runtime.audit import audit
from otklik.runtime.channels import mask

log = logging.getLogger(__name__)
MAX_TOKEN = 200
_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,120}$")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the settings page shows of an account: never the secret itself."""

    id: int
    kind: str
    name: str
    pack: str
    enabled: bool
    secret: str  # masked, or '' when there is none
    detail: str  # @username for a bot, the URL host for an API webhook


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    message: str


def _view(account: ChannelAccount, decrypt: Any) -> AccountView:
    secret = ""
    if account.secret:
        try:
            plain = decrypt(account.secret)
            secret = mask_token(plain) if account.kind == "telegram" else mask(plain)
        except Exception:  # a key change makes old secrets unreadable; say so, never crash the page
            secret = "?"  # noqa: S105 - a placeholder shown instead of an unreadable secret
    config = account.config or {}
    if account.kind == "telegram":
        detail = f"@{config.get('username', '')}" if config.get("username") else ""
    elif account.kind == "webhook":
        detail = httpx.URL(str(config.get("url", ""))).host if config.get("url") else ""
    else:
        detail = ""
    return AccountView(account.id, account.kind, account.name, account.pack, account.enabled, secret, detail)


async def list_accounts(otklik: Any) -> list[AccountView]:
    async with otklik.db.read() as session:
        rows = (await session.execute(select(ChannelAccount).order_by(ChannelAccount.id).limit(500))).scalars().all()
    return [_view(a, otklik.vault.decrypt) for a in rows]


def check_token(token: str) -> str:
    token = token.strip()
    if len(token) > MAX_TOKEN:
        raise InvalidInput(f"a Telegram bot token is at most {MAX_TOKEN} characters (it looks like 123456:ABC…)")
    if not _TOKEN.match(token):
        raise InvalidInput("this is not a Telegram bot token; it looks like 123456789:AAE… (ask @BotFather)")
    return token


def check_name(name: str) -> str:
    name = name.strip()
    if name and not _NAME.match(name):
        raise InvalidInput("account name: 1-120 Latin letters, digits, '-', '_' or '.'")
    return name


async def connect_telegram(otklik: Any, token: str, name: str, pack: str, actor: str) -> tuple[int, str, bool]:
    """Validate the token with getMe, store the bot (token encrypted), audit. (id, @username, created)."""
    from otklik.runtime.packs import available_packs
    from otklik.runtime.telegram import connect_bot

    token, name = check_token(token), check_name(name)
    if pack not in available_packs(otklik.settings.packs_dirs):
        raise InvalidInput(f"unknown pack {pack[:64]!r}")
    try:
        account_id, username, created = await connect_bot(otklik, token, name=name or None, pack=pack)
    except InvalidToken as exc:
        raise InvalidInput(str(exc)) from None  # the message holds the masked token only
    except (InvalidInput, NotFound):
        raise
    except Exception as exc:
        log.warning("Telegram getMe failed: %s", type(exc).__name__)
        raise Unavailable("Telegram did not answer; check the network and try again") from None
    if created:
        async with otklik.db.write() as session:
            audit(
                session,
                actor,
                "channel.add",
                "channel_account",
                account_id,
                {"kind": "telegram", "username": username, "pack": pack},
            )
    return account_id, username, created


async def set_enabled(otklik: Any, account_id: int, enabled: bool, actor: str) -> None:
    async with otklik.db.write() as session:
        account = await session.get(ChannelAccount, account_id, with_for_update=True)
        if account is None:
            raise NotFound("no such channel account")
        if account.enabled != enabled:
            account.enabled = enabled
            kind = "channel.enable" if enabled else "channel.disable"
            audit(session, actor, kind, "channel_account", account_id, {"name": account.name, "kind": account.kind})


async def check_connection(otklik: Any, account_id: int) -> Check:
    async with otklik.db.read() as session:
        account = await session.get(ChannelAccount, account_id)
    if account is None:
        raise NotFound("no such channel account")
    if account.kind == "webchat":
        return Check(True, "web chat: served by this server")
    try:
        secret = otklik.vault.decrypt(account.secret) if account.secret else ""
    except Exception:  # the key changed since the secret was stored
        return Check(False, "the stored token cannot be decrypted (was the encryption key changed?)")
    if account.kind == "telegram":
        return await _test_telegram(otklik.settings.telegram_api_url, secret)
    if account.kind == "webhook":
        return await ping_webhook(str((account.config or {}).get("url") or ""), secret)
    return Check(True, f"{account.kind}: no connection test for this kind")


async def _test_telegram(api_url: str, token: str) -> Check:
    if not token:
        return Check(False, "no token stored")
    try:
        info = await validate_token(api_url, token, request_timeout=10.0)
    except InvalidToken:
        return Check(False, f"Telegram rejected the token {mask_token(token)}")
    except Exception as exc:
        return Check(False, f"Telegram did not answer ({type(exc).__name__})")
    return Check(True, f"Telegram: @{info.username} answers")


async def ping_webhook(url: str, secret: str, *, transport: httpx.AsyncBaseTransport | None = None) -> Check:
    """A signed ping (`{"type": "ping"}` with `X-Otklik-Signature`); any 2xx is a pass."""
    if not url.startswith(("http://", "https://")):
        return Check(False, "no URL configured")
    if not secret:
        return Check(False, "no signing secret stored")
    body = json.dumps({"type": "ping", "ts": utcnow().isoformat()}).encode()
    headers = {"Content-Type": "application/json", "X-Otklik-Signature": sign(secret, body)}
    try:
        async with httpx.AsyncClient(timeout=5.0, transport=transport) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Check(False, f"{httpx.URL(url).host} did not answer ({type(exc).__name__})")
    if 200 <= response.status_code < 300:
        return Check(True, f"{httpx.URL(url).host} answered {response.status_code}")
    return Check(False, f"{httpx.URL(url).host} answered {response.status_code}")
