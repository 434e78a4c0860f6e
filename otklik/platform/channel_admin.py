"""Channel accounts as the admin sees them: list (secrets masked), connect a Telegram bot, a Wildberries
API key or the API webhook channel, enable or disable, test the connection. Secrets never leave this
module unmasked (except the webhook signing secret, generated here and shown once).

`connect_wildberries` and `connect_webhook` are the one use case behind both the admin Settings page and
`otklik channels add wildberries|webhook`."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.adapters.wildberries.token import Lang, TokenProblem
from otklik.channels.api.adapter import sign
from otklik.channels.telegram.adapter import InvalidToken, mask_token, validate_token
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput, NotFound, Unavailable
from otklik.platform.audit import audit
from otklik.platform.channel_accounts import mask

log = logging.getLogger(__name__)
MAX_TOKEN = 200
MAX_WB_TOKEN = 4096  # WB tokens are ~400-700 characters; anything far longer is not one
MAX_URL = 2000
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
    elif account.kind == "wildberries":
        detail = "demo" if config.get("demo") else _wb_detail(account.secret, decrypt)
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
    from otklik.channels.telegram.runtime import connect_bot
    from otklik.conversations.packs import available_packs

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
        await _audit_added(otklik, actor, account_id, {"kind": "telegram", "username": username, "pack": pack})
    return account_id, username, created


def _wb_detail(secret: str | None, decrypt: Any) -> str:
    """ "expires 2026-05-01" from the token's own payload (never the token)."""
    from otklik.adapters.wildberries import inspect_token

    if not secret:
        return ""
    try:
        info = inspect_token(decrypt(secret))
    except Exception:
        return ""
    return f"expires {info.expires_at.date().isoformat()}" if info.expires_at else ""


def _lang(language: str) -> Lang:
    return "ru" if language == "ru" else "en"


def _scrub(text: str, token: str) -> str:
    """An error text to show: capped, and never the token itself."""
    return text.replace(token, mask(token))[:300] if token else text[:300]


def check_wb_token(token: str, lang: str = "en") -> tuple[str, list[TokenProblem]]:
    """The pasted WB token, cleaned, and its non-blocking problems; InvalidInput (clear text) otherwise."""
    from otklik.adapters.wildberries.accounts import check_token as wb_check_token

    token = (token or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        raise InvalidInput("paste the Wildberries API token (seller portal → Settings → API access)")
    if len(token) > MAX_WB_TOKEN:
        raise InvalidInput(f"this is not a Wildberries API token: it is longer than {MAX_WB_TOKEN} characters")
    try:
        return token, wb_check_token(token)
    except InvalidInput as exc:
        blocking = exc.details if isinstance(exc.details, list) else []
        if blocking:  # expired, read-only, a missing category: said in the admin's language
            texts = [p.text(_lang(lang)) for p in blocking]
            raise InvalidInput(" ".join(texts), details=texts) from None
        raise InvalidInput(_scrub(exc.user_message, token)) from None


async def _ping_wb(otklik: Any, account_id: int, name: str, token: str, lang: str) -> None:
    """`GET /ping` on the content API with this token: WB checks the signature, the expiry and the scope."""
    from otklik.adapters.wildberries import WBAuthError, WBError
    from otklik.adapters.wildberries.accounts import INTERACTIVE_RETRY, WBAccount, client_for

    try:
        async with client_for(
            WBAccount(account_id, name, token), otklik.settings, retry=INTERACTIVE_RETRY, timeout=15.0
        ) as wb:
            await wb.ping("content")
    except WBAuthError as exc:  # 401/403: refused, expired, revoked or out of scope
        raise InvalidInput(f"{exc.user_message(_lang(lang))} ({_scrub(str(exc), token)})") from None
    except WBError as exc:
        log.warning("WB ping failed: %s", type(exc).__name__)
        raise Unavailable(f"{exc.user_message(_lang(lang))} ({_scrub(str(exc), token)})") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"Wildberries did not answer ({type(exc).__name__})") from None


@dataclass(frozen=True, slots=True)
class WBConnected:
    id: int
    name: str
    masked: str  # the token as shown from now on
    warnings: list[str]  # non-blocking problems, e.g. "expires in 5 days"


async def connect_wildberries(
    otklik: Any,
    token: str,
    *,
    name: str = "",
    pack: str = "",
    actor: str,
    lang: str = "en",
    check: bool = True,
) -> WBConnected:
    """Connect a WB API key (admin Settings and `otklik channels add wildberries`): the JWT is read
    (not a token / expired / read-only / missing Feedbacks or Content -> InvalidInput, nothing stored),
    WB is pinged with it unless `check` is off, then it is stored encrypted and the addition audited."""
    from otklik.adapters.wildberries.accounts import KIND, add_wb_account
    from otklik.conversations.packs import available_packs

    token, _problems = check_wb_token(token, lang)
    name = check_name(name) or KIND
    pack = pack or otklik.settings.default_pack
    if pack not in available_packs(otklik.settings.packs_dirs):
        raise InvalidInput(f"unknown pack {pack[:64]!r}")
    if check:
        await _ping_wb(otklik, 0, name, token, lang)
    account_id, problems = await add_wb_account(otklik.db, otklik.vault, token, name=name, pack=pack)
    await _audit_added(otklik, actor, account_id, {"kind": KIND, "name": name, "pack": pack, "checked": check})
    return WBConnected(account_id, name, mask(token), [p.text(_lang(lang)) for p in problems])


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host; anything else (javascript:, file:, no host, spaces) is refused."""
    url = (url or "").strip()
    if not url:
        raise InvalidInput("the URL is required: where otklik POSTs outbound messages (https://…)")
    if len(url) > MAX_URL:
        raise InvalidInput(f"the URL is at most {MAX_URL} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidInput("the URL must not contain spaces or control characters")
    try:
        parsed = httpx.URL(url)
    except Exception:
        raise InvalidInput("this is not a URL; it looks like https://example.com/otklik") from None
    if parsed.scheme not in ("https", "http") or not url.lower().startswith(("https://", "http://")):
        raise InvalidInput("the URL must start with https:// (or http:// for a local system)")
    if not parsed.host:
        raise InvalidInput("the URL has no host; it looks like https://example.com/otklik")
    return url


@dataclass(frozen=True, slots=True)
class WebhookConnected:
    id: int
    name: str
    secret: str  # the signing secret: shown once, stored encrypted


async def connect_webhook(
    otklik: Any, url: str, *, name: str = "", pack: str = "", actor: str, per_second: float | None = None
) -> WebhookConnected:
    """The API channel (admin Settings and `otklik channels add webhook`): URL and name checked, a fresh
    signing secret generated and stored encrypted, the addition audited. The caller shows the secret once."""
    from otklik.conversations.packs import available_packs
    from otklik.platform.channel_accounts import add_account, new_secret

    url = check_webhook_url(url)
    name = check_name(name) or "api"
    pack = pack or otklik.settings.default_pack
    if pack not in available_packs(otklik.settings.packs_dirs):
        raise InvalidInput(f"unknown pack {pack[:64]!r}")
    if per_second is not None and not 0.1 <= per_second <= 1000:
        raise InvalidInput("per_second: from 0.1 to 1000")
    secret = new_secret()
    config: dict[str, object] = {"url": url}
    if per_second:
        config["per_second"] = per_second
    account_id = await add_account(
        otklik.db, otklik.vault, kind="webhook", name=name, pack=pack, secret=secret, config=config
    )
    await _audit_added(
        otklik, actor, account_id, {"kind": "webhook", "name": name, "pack": pack, "host": httpx.URL(url).host}
    )
    return WebhookConnected(account_id, name, secret)


async def _audit_added(otklik: Any, actor: str, account_id: int, data: dict[str, Any]) -> None:
    async with otklik.db.write() as session:
        audit(session, actor, "channel.add", "channel_account", account_id, data)


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
    if account.kind == "wildberries":
        return await _test_wildberries(otklik, account.id, account.name, secret)
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


async def _test_wildberries(otklik: Any, account_id: int, name: str, token: str) -> Check:
    """The token's own payload (expired? scopes?) and then `GET /ping` on WB's content API with it."""
    if not token:
        return Check(False, "no token stored (a demo account, or add the key again)")
    try:
        token, problems = check_wb_token(token)
        await _ping_wb(otklik, account_id, name, token, "en")
    except (InvalidInput, Unavailable) as exc:
        return Check(False, f"Wildberries: {exc.user_message}")
    warnings = "; ".join(p.text("en") for p in problems)
    return Check(True, f"Wildberries: the token works{' (' + warnings + ')' if warnings else ''}")


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
