"""Connecting an Instagram professional account through its Facebook page (admin Settings and `otklik channels
add instagram`): the page token is checked with a Graph call, secrets are stored encrypted; the "Test" button."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.channels.instagram.graph import GraphClient, GraphError
from otklik.channels.instagram.parse import PAGE_ID
from otklik.core.errors import InvalidInput, Unavailable
from otklik.platform.audit import audit
from otklik.platform.channel_admin import Check, audit_added, check_name, check_pack
from otklik.platform.plugins import Connected

log = logging.getLogger(__name__)
KIND = "instagram"
_TOKEN = re.compile(r"^[A-Za-z0-9_\-.|]{20,1000}$")
_SECRET = re.compile(r"^[A-Za-z0-9]{16,128}$")
_VERIFY = re.compile(r"^[A-Za-z0-9_\-.~]{8,128}$")


def mask_token(token: str) -> str:
    return f"{token[:4]}…{token[-4:]}" if len(token) > 16 else "…"


def webhook_path(page_id: str) -> str:
    return f"/webhooks/instagram/{page_id}"


@dataclass(frozen=True, slots=True)
class InstagramConnected:
    id: int
    name: str
    page_id: str
    page_name: str
    instagram_id: str
    webhook_path: str
    verify_token: str  # shown once
    created: bool


async def _page(api_url: str, token: str, page_id: str) -> dict[str, Any]:
    graph = GraphClient(api_url, token, timeout=10.0)
    try:
        return await graph.page(page_id)
    finally:
        await graph.aclose()


async def connect_instagram(
    otklik: Any,
    *,
    page_id: str,
    token: str,
    app_secret: str,
    verify_token: str = "",
    human_agent: bool = False,
    name: str = "",
    pack: str = "",
    actor: str,
    api_url: str | None = None,
) -> InstagramConnected:
    """Check the page token (`GET /{page_id}?fields=name,instagram_business_account`), store the account (token,
    app secret and verify token encrypted), audit. Connecting the page again replaces its secrets."""
    from otklik.platform.channel_accounts import add_account, new_secret

    page_id, token, app_secret, verify_token = page_id.strip(), token.strip(), app_secret.strip(), verify_token.strip()
    if not PAGE_ID.match(page_id):
        raise InvalidInput("the page ID is digits only (the Facebook page linked to the Instagram account)")
    if len(token) > 1000 or not _TOKEN.match(token):
        raise InvalidInput("this does not look like a page access token (a long string starting with EAA…)")
    if not _SECRET.match(app_secret):
        raise InvalidInput("the app secret is 16-128 letters and digits (Meta app → App settings → Basic)")
    if verify_token and not _VERIFY.match(verify_token):
        raise InvalidInput("the verify token: 8-128 letters, digits, '-', '_', '.' or '~'")
    name = check_name(name)
    pack = pack or otklik.settings.default_pack
    check_pack(otklik, pack)
    if api_url is not None and not api_url.startswith(("https://", "http://")):
        raise InvalidInput("the API URL must start with https:// (or http:// for a local fake)")
    try:
        info = await _page(api_url or otklik.settings.instagram_api_url, token, page_id)
    except GraphError as exc:
        if exc.token_invalid:
            raise InvalidInput(f"Meta rejected the page access token {mask_token(token)}") from None
        raise InvalidInput(f"Meta refused the page ID: {exc.message[:200]}") from None
    except httpx.HTTPError as exc:
        log.warning("Instagram token check failed: %s", type(exc).__name__)
        raise Unavailable("Meta's Graph API did not answer; check the network and try again") from None
    business = info.get("instagram_business_account")
    instagram_id = str(business.get("id") or "")[:40] if isinstance(business, dict) else ""
    if not instagram_id:
        raise InvalidInput("this page has no Instagram professional account linked (Meta Business Suite → Settings)")
    page_name = str(info.get("name") or "")[:200]
    verify_token = verify_token or new_secret()[:40]
    vault = otklik.vault
    config: dict[str, Any] = {
        "page_id": page_id,
        "instagram_id": instagram_id,
        "page_name": page_name,
        "app_secret": vault.encrypt(app_secret),
        "verify_token": vault.encrypt(verify_token),
        "human_agent": bool(human_agent),
    }
    if api_url:
        config["api_url"] = api_url
    async with otklik.db.read() as session:
        accounts = (await session.execute(select(ChannelAccount).where(ChannelAccount.kind == KIND))).scalars()
        existing = next((a for a in accounts if (a.config or {}).get("page_id") == page_id), None)
    if existing is not None:
        async with otklik.db.write() as session:
            account = await session.get(ChannelAccount, existing.id)
            assert account is not None
            kept = {k: v for k, v in (account.config or {}).items() if k not in ("broken", *config)}
            account.config = {**kept, **config}
            account.secret = vault.encrypt(token)
            audit(session, actor, "channel.update", "channel_account", account.id, {"kind": KIND, "page": page_id})
        account_id, name, created = int(existing.id), existing.name, False
    else:
        name = name or f"instagram-{page_id}"[:120]
        account_id = await add_account(otklik.db, vault, kind=KIND, name=name, pack=pack, secret=token, config=config)
        await audit_added(otklik, actor, account_id, {"kind": KIND, "page": page_id, "pack": pack})
        created = True
    return InstagramConnected(
        account_id, name, page_id, page_name, instagram_id, webhook_path(page_id), verify_token, created
    )


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


async def connect_form(otklik: Any, fields: Mapping[str, Any], actor: str, _language: str) -> Connected:
    added = await connect_instagram(
        otklik,
        page_id=_text(fields, "page_id"),
        token=_text(fields, "token"),
        app_secret=_text(fields, "app_secret"),
        verify_token=_text(fields, "verify_token"),
        human_agent=fields.get("human_agent") in ("on", "true", "1", True),
        name=_text(fields, "name"),
        pack=_text(fields, "pack") or otklik.settings.default_pack,
        actor=actor,
    )
    public = (otklik.settings.public_url or "").rstrip("/")
    values = {"name": added.name, "page": added.page_name or added.page_id,
              "webhook_url": f"{public}{added.webhook_path}", "verify_token": added.verify_token}  # fmt: skip
    return Connected(
        json={"id": added.id, "name": added.name, "webhook_path": added.webhook_path,
              "verify_token": added.verify_token, "created": added.created},
        shown="admin/connected_instagram.html",
        values=values,
    )  # fmt: skip


async def check(otklik: Any, account: Any, secret: str) -> Check:
    from otklik.channels.instagram.runtime import api_url

    config = dict(account.config or {})
    if not secret:
        return Check(False, "no page access token stored")
    try:
        info = await _page(api_url(config, otklik.settings), secret, str(config.get("page_id") or ""))
    except GraphError as exc:
        return Check(False, f"Meta refused: {exc.message[:200]}")
    except httpx.HTTPError as exc:
        return Check(False, f"Meta did not answer ({type(exc).__name__})")
    return Check(True, f"Instagram via page {info.get('name', '')} answers")
