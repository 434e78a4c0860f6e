"""The SMS settings an owner sets in the admin (Settings → SMS) or the CLI: which provider, its secret
(sealed with the Vault, never shown again), the sender name, and for the generic connector its HTTP call.
Kept in the `settings` key-value table under `reach.sms`; every change audited."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import Setting
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.core.errors import InvalidInput
from otklik.platform.audit import audit
from otklik.platform.reach.senders import HttpConfig, HttpSmsSender, SmsRuSender, SmsSender

KEY = "reach.sms"
PROVIDERS = ("none", "smsru", "http")
MAX_SECRET, MAX_URL, MAX_BODY = 500, 2000, 4000
_SENDER = re.compile(r"^[A-Za-z0-9 ._-]{0,11}$|^\+?[0-9]{1,15}$")  # alphanumeric ≤ 11 or a number
_HEADER = re.compile(r"^[A-Za-z0-9-]{0,64}$")


@dataclass(frozen=True, slots=True)
class SmsConfig:
    provider: str = "none"
    sender: str = ""
    sealed_secret: str = ""
    http: dict[str, Any] | None = None
    sealed_callback: str = ""

    @property
    def has_secret(self) -> bool:
        return bool(self.sealed_secret)


async def load(db: Database) -> SmsConfig:
    async with db.read() as session:
        row = await session.scalar(select(Setting).where(Setting.key == KEY))
    value = row.value if row is not None and isinstance(row.value, dict) else {}
    return SmsConfig(
        provider=str(value.get("provider") or "none"), sender=str(value.get("sender") or ""),
        sealed_secret=str(value.get("secret") or ""), http=value.get("http") or None,
        sealed_callback=str(value.get("callback") or ""),
    )  # fmt: skip


def check_http(raw: str) -> dict[str, Any]:
    """The generic connector's settings from the admin's JSON text, validated (clear messages)."""
    if len(raw) > MAX_BODY:
        raise InvalidInput(f"http: at most {MAX_BODY} characters")
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"http: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InvalidInput("http: a JSON object with url, method, format, body, auth_header, success, id_path")
    unknown = sorted(set(data) - {"url", "method", "format", "body", "auth_header", "success", "id_path"})
    if unknown:
        raise InvalidInput(f"http: unknown field {unknown[0]!r}")
    url = str(data.get("url") or "")
    parts = urlsplit(url)
    if (
        len(url) > MAX_URL
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or any(c.isspace() for c in url)
    ):
        raise InvalidInput("http.url: an http(s) URL of the gateway")
    if str(data.get("method") or "POST").upper() not in ("POST", "GET", "PUT"):
        raise InvalidInput("http.method: POST, GET or PUT")
    if str(data.get("format") or "json") not in ("json", "form"):
        raise InvalidInput("http.format: json or form")
    body = data.get("body") or {}
    if not isinstance(body, dict) or not body:
        raise InvalidInput("http.body: an object whose values use {phone} and {text}")
    if "{text}" not in json.dumps(body) or "{phone" not in json.dumps(body):
        raise InvalidInput("http.body: must contain {phone} (or {phone_digits}) and {text}")
    if not _HEADER.match(str(data.get("auth_header") or "")):
        raise InvalidInput("http.auth_header: a header name such as Authorization")
    success = str(data.get("success") or "")
    if success and ("=" not in success or len(success) > 200):
        raise InvalidInput("http.success: field=value, e.g. status=ok")
    return {k: data[k] for k in data}


async def save(
    db: Database,
    vault: Vault,
    *,
    provider: str,
    sender: str = "",
    secret: str = "",
    http: str = "",
    actor: str,
) -> SmsConfig:
    """Validate and store. An empty `secret` keeps the stored one (the form never shows it)."""
    provider = (provider or "").strip()
    if provider not in PROVIDERS:
        raise InvalidInput(f"provider: one of {', '.join(PROVIDERS)}")
    sender = (sender or "").strip()
    if not _SENDER.match(sender):
        raise InvalidInput("sender: up to 11 Latin letters, digits, spaces, . _ - (or a phone number)")
    secret = (secret or "").strip()
    if len(secret) > MAX_SECRET or any(ord(c) < 32 for c in secret):
        raise InvalidInput(f"secret: at most {MAX_SECRET} printable characters")
    http_config = check_http(http) if provider == "http" else None
    old = await load(db)
    sealed = vault.encrypt(secret) if secret else old.sealed_secret
    if provider == "smsru" and not sealed:
        raise InvalidInput("secret: SMS.ru's api_id is required")
    callback = old.sealed_callback or vault.encrypt(secrets.token_urlsafe(24))  # SMS.ru's status callback URL
    value: dict[str, Any] = {
        "provider": provider, "sender": sender, "secret": sealed, "http": http_config, "callback": callback,
    }  # fmt: skip
    now = utcnow()
    async with db.write() as session:
        row = await session.get(Setting, KEY)
        if row is None:
            session.add(Setting(key=KEY, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now
        audit(
            session, actor, "reach.sms_settings", "setting", KEY, {"provider": provider, "secret_changed": bool(secret)}
        )
    return SmsConfig(provider, sender, sealed, http_config, callback)


def callback_token(config: SmsConfig, vault: Vault) -> str:
    """The secret path segment of SMS.ru's status callback (`/webhooks/sms/smsru/<token>`); "" before a save."""
    return vault.decrypt(config.sealed_callback) if config.sealed_callback else ""


def build_sender(config: SmsConfig, vault: Vault, settings: Settings) -> SmsSender | None:
    """The configured connector, or None ("none", or nothing stored)."""
    secret = vault.decrypt(config.sealed_secret) if config.sealed_secret else ""
    timeout = settings.send_timeout_seconds
    if config.provider == "smsru" and secret:
        return SmsRuSender(secret, sender=config.sender, base_url=settings.sms_ru_url, timeout=timeout)
    if config.provider == "http" and config.http:
        return HttpSmsSender(HttpConfig.from_dict(config.http), secret=secret, sender=config.sender, timeout=timeout)
    return None
