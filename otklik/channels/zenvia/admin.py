"""Connecting a Zenvia WhatsApp sender (admin Settings and `otklik channels add zenvia`): the token is checked
with `GET /v2/subscriptions`, the two subscriptions (MESSAGE IN and MESSAGE_STATUS) are created pointing at our
webhook with a random secret header, the templates are synced; the "Test" button."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.channels.zenvia.api import ZenviaClient, ZenviaError
from otklik.channels.zenvia.parse import SECRET_HEADER, template_info
from otklik.clock import utcnow
from otklik.conversations.window import store_templates
from otklik.core.errors import InvalidInput, NotFound, Unavailable
from otklik.platform.audit import audit
from otklik.platform.channel_admin import Check, audit_added, check_name, check_pack
from otklik.platform.plugins import Connected

log = logging.getLogger(__name__)
KIND = "zenvia"
_TOKEN = re.compile(r"^[A-Za-z0-9_\-.]{16,200}$")
_SENDER = re.compile(r"^[A-Za-z0-9_\-.]{3,64}$")


def mask_token(token: str) -> str:
    return f"{token[:3]}…{token[-3:]}" if len(token) > 12 else "…"


def webhook_path(hook: str) -> str:
    return f"/webhooks/zenvia/{hook}"


@dataclass(frozen=True, slots=True)
class ZenviaConnected:
    id: int
    name: str
    sender: str
    webhook_url: str
    subscriptions: tuple[str, ...]
    templates: int
    created: bool


async def sync_templates(otklik: Any, account_id: int) -> int:
    """The account's approved-or-not WhatsApp templates into `message_templates`; `Unavailable` on failure."""
    from otklik.channels.zenvia.runtime import api_url

    async with otklik.db.read() as session:
        account = await session.get(ChannelAccount, account_id)
        if account is None or account.kind != KIND:
            raise NotFound("no such Zenvia account")
        config, secret = dict(account.config or {}), account.secret
    client = ZenviaClient(
        api_url(config, otklik.settings), otklik.vault.decrypt(secret) if secret else "", timeout=20.0
    )
    try:
        raw = await client.templates()
    except ZenviaError as exc:
        raise Unavailable(f"Zenvia refused the templates list: {exc.message[:200]}") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"Zenvia did not answer ({type(exc).__name__})") from None
    finally:
        await client.aclose()
    templates = [t for t in (template_info(r) for r in raw) if t is not None]
    return await store_templates(otklik.db, account_id, templates, utcnow())


async def connect_zenvia(
    otklik: Any,
    *,
    token: str,
    sender: str,
    name: str = "",
    pack: str = "",
    actor: str,
    api_url: str | None = None,
) -> ZenviaConnected:
    """Check the token, create both subscriptions, store the account (token and webhook secret encrypted),
    sync templates, audit. Connecting the same sender again replaces the token and the subscriptions (the
    old ones are deleted at Zenvia when it lets us) and clears the "broken" mark."""
    from otklik.platform.channel_accounts import add_account

    token, sender = token.strip(), sender.strip()
    if not _TOKEN.match(token):
        raise InvalidInput("this does not look like a Zenvia API token (Zenvia → Developers → Tokens)")
    if not _SENDER.match(sender):
        raise InvalidInput("the sender: the WhatsApp number or sender id registered in Zenvia (3-64 letters, digits, '-', '_', '.')")  # fmt: skip
    name = check_name(name)
    pack = pack or otklik.settings.default_pack
    check_pack(otklik, pack)
    if api_url is not None and not api_url.startswith(("https://", "http://")):
        raise InvalidInput("the API URL must start with https:// (or http:// for a local fake)")
    public = (otklik.settings.public_url or "").rstrip("/")
    if not public.startswith(("https://", "http://")):
        raise InvalidInput("set OTKLIK_PUBLIC_URL (the https address Zenvia can call) before connecting Zenvia")
    async with otklik.db.read() as session:
        accounts = (await session.execute(select(ChannelAccount).where(ChannelAccount.kind == KIND))).scalars()
        existing = next((a for a in accounts if (a.config or {}).get("from") == sender), None)
        old = dict(existing.config or {}) if existing is not None else {}
    hook = str(old.get("hook") or secrets.token_urlsafe(12))
    webhook_secret = secrets.token_urlsafe(32)
    url = f"{public}{webhook_path(hook)}"
    client = ZenviaClient(api_url or otklik.settings.zenvia_api_url, token, timeout=10.0)
    try:
        await client.subscriptions()  # the token check
        for sid in old.get("subscriptions") or []:
            try:
                await client.unsubscribe(str(sid))
            except ZenviaError as exc:
                log.info("zenvia: old subscription %s not deleted: %s", sid, exc)
        headers = {SECRET_HEADER: webhook_secret}
        ids = (
            await client.subscribe("MESSAGE", url, headers, {"channel": "whatsapp", "direction": "IN"}),
            await client.subscribe("MESSAGE_STATUS", url, headers, {"channel": "whatsapp"}),
        )
    except ZenviaError as exc:
        if exc.token_invalid:
            raise InvalidInput(f"Zenvia rejected the API token {mask_token(token)}") from None
        raise InvalidInput(f"Zenvia refused the subscription: {exc.message[:200]}") from None
    except httpx.HTTPError as exc:
        log.warning("Zenvia connect failed: %s", type(exc).__name__)
        raise Unavailable("Zenvia's API did not answer; check the network and try again") from None
    finally:
        await client.aclose()
    vault = otklik.vault
    config: dict[str, Any] = {
        "from": sender,
        "hook": hook,
        "webhook_secret": vault.encrypt(webhook_secret),
        "subscriptions": [i for i in ids if i],
    }
    if api_url:
        config["api_url"] = api_url
    if existing is not None:
        async with otklik.db.write() as session:
            account = await session.get(ChannelAccount, existing.id)
            assert account is not None
            kept = {k: v for k, v in (account.config or {}).items() if k not in ("broken", *config)}
            account.config = {**kept, **config}
            account.secret = vault.encrypt(token)
            audit(session, actor, "channel.update", "channel_account", account.id, {"kind": KIND, "sender": sender})
        account_id, name, created = int(existing.id), existing.name, False
    else:
        name = name or f"zenvia-{sender}"[:120]
        account_id = await add_account(otklik.db, vault, kind=KIND, name=name, pack=pack, secret=token, config=config)
        await audit_added(otklik, actor, account_id, {"kind": KIND, "sender": sender, "pack": pack})
        created = True
    try:
        templates = await sync_templates(otklik, account_id)
    except Unavailable as exc:
        log.warning("Zenvia templates not synced: %s", exc)
        templates = 0
    await otklik.refresh_accounts()
    return ZenviaConnected(account_id, name, sender, url, tuple(i for i in ids if i), templates, created)


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


async def connect_form(otklik: Any, fields: Mapping[str, Any], actor: str, _language: str) -> Connected:
    added = await connect_zenvia(
        otklik,
        token=_text(fields, "token"),
        sender=_text(fields, "sender"),
        name=_text(fields, "name"),
        pack=_text(fields, "pack") or otklik.settings.default_pack,
        actor=actor,
    )
    values = {
        "name": added.name,
        "sender": added.sender,
        "webhook_url": added.webhook_url,
        "templates": added.templates,
    }
    return Connected(
        json={"id": added.id, "name": added.name, "webhook_url": added.webhook_url,
              "subscriptions": list(added.subscriptions), "templates": added.templates, "created": added.created},
        shown="admin/connected_zenvia.html",
        values=values,
    )  # fmt: skip


async def check(otklik: Any, account: Any, secret: str) -> Check:
    from otklik.channels.zenvia.runtime import api_url

    config = dict(account.config or {})
    if not secret:
        return Check(False, "no API token stored")
    client = ZenviaClient(api_url(config, otklik.settings), secret, timeout=10.0)
    try:
        subscriptions = await client.subscriptions()
    except ZenviaError as exc:
        return Check(False, f"Zenvia refused: {exc.message[:200] or exc.status}")
    except httpx.HTTPError as exc:
        return Check(False, f"Zenvia did not answer ({type(exc).__name__})")
    finally:
        await client.aclose()
    ours = set(config.get("subscriptions") or [])
    active = sum(1 for s in subscriptions if s.get("id") in ours and s.get("status", "ACTIVE") == "ACTIVE")
    if active < len(ours):
        return Check(False, f"Zenvia answers, but {len(ours) - active} of our subscriptions is gone: connect again")
    return Check(True, f"Zenvia answers; {active} subscriptions active")
