"""Connecting the API channel (admin Settings and `otklik channels add webhook`) and testing it with a
signed ping."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from otklik.channels.api.adapter import sign
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput
from otklik.platform.channel_admin import Check, audit_added, check_name, check_pack
from otklik.platform.plugins import Connected

MAX_URL = 2000


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
    from otklik.platform.channel_accounts import add_account, new_secret

    url = check_webhook_url(url)
    name = check_name(name) or "api"
    pack = pack or otklik.settings.default_pack
    check_pack(otklik, pack)
    if per_second is not None and not 0.1 <= per_second <= 1000:
        raise InvalidInput("per_second: from 0.1 to 1000")
    secret = new_secret()
    config: dict[str, object] = {"url": url}
    if per_second:
        config["per_second"] = per_second
    account_id = await add_account(
        otklik.db, otklik.vault, kind="webhook", name=name, pack=pack, secret=secret, config=config
    )
    await audit_added(
        otklik, actor, account_id, {"kind": "webhook", "name": name, "pack": pack, "host": httpx.URL(url).host}
    )
    return WebhookConnected(account_id, name, secret)


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


async def connect_form(otklik: Any, fields: Mapping[str, Any], actor: str, _language: str) -> Connected:
    """The Settings page's form (`ChannelKind.form`): the signing secret is shown on this one response only
    (never in a URL, never again; the page is `no-store`)."""
    added = await connect_webhook(
        otklik,
        _text(fields, "url"),
        name=_text(fields, "name"),
        pack=_text(fields, "pack") or otklik.settings.default_pack,
        actor=actor,
    )
    return Connected(
        json={"id": added.id, "name": added.name, "secret": added.secret},
        shown="admin/connected_webhook.html",
        values={"name": added.name, "secret": added.secret},
    )


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


async def check(_otklik: Any, account: Any, secret: str) -> Check:
    return await ping_webhook(str((account.config or {}).get("url") or ""), secret)
