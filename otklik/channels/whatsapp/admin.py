"""Connecting a WhatsApp Cloud API number (admin Settings and `otklik channels add whatsapp`), testing it,
syncing its templates, and the admin's templates page (`/admin/whatsapp/{account id}/templates`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.channels.whatsapp.graph import GraphClient, GraphError
from otklik.channels.whatsapp.parse import PHONE_NUMBER_ID, template_info
from otklik.clock import utcnow
from otklik.conversations.window import TemplateInfo, store_templates, templates_of
from otklik.core.errors import InvalidInput, NotFound, Unavailable
from otklik.platform.audit import audit
from otklik.platform.channel_admin import Check, audit_added, check_name, check_pack
from otklik.platform.plugins import Connected
from otklik.platform.users import Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

log = logging.getLogger(__name__)
KIND = "whatsapp"
MAX_TOKEN = 1000
_TOKEN = re.compile(r"^[A-Za-z0-9_\-.|]{20,1000}$")
_SECRET = re.compile(r"^[A-Za-z0-9]{16,128}$")
_VERIFY = re.compile(r"^[A-Za-z0-9_\-.~]{8,128}$")
router = APIRouter()


def mask_token(token: str) -> str:
    return f"{token[:4]}…{token[-4:]}" if len(token) > 16 else "…"


def webhook_path(phone_number_id: str) -> str:
    return f"/webhooks/whatsapp/{phone_number_id}"


def _check_inputs(phone_number_id: str, waba_id: str, token: str, app_secret: str, verify_token: str) -> None:
    if not PHONE_NUMBER_ID.match(phone_number_id):
        raise InvalidInput("the phone number ID is digits only (Meta app → WhatsApp → API Setup), not the phone number")
    if not PHONE_NUMBER_ID.match(waba_id):
        raise InvalidInput("the WhatsApp Business Account ID is digits only (Meta app → WhatsApp → API Setup)")
    if len(token) > MAX_TOKEN or not _TOKEN.match(token):
        raise InvalidInput("this does not look like a Meta access token (a long string starting with EAA…)")
    if not _SECRET.match(app_secret):
        raise InvalidInput("the app secret is 16-128 letters and digits (Meta app → App settings → Basic)")
    if verify_token and not _VERIFY.match(verify_token):
        raise InvalidInput("the verify token: 8-128 letters, digits, '-', '_', '.' or '~'")


@dataclass(frozen=True, slots=True)
class WhatsAppConnected:
    id: int
    name: str
    phone_number_id: str
    display_phone_number: str
    webhook_path: str
    verify_token: str  # shown once (the Meta app's webhook form asks for it)
    templates: int
    created: bool


async def _phone(api_url: str, token: str, phone_number_id: str) -> dict[str, Any]:
    graph = GraphClient(api_url, token, timeout=10.0)
    try:
        return await graph.get(phone_number_id, {"fields": "display_phone_number,verified_name,quality_rating"})
    finally:
        await graph.aclose()


async def sync_templates(otklik: Any, account_id: int) -> int:
    """Templates of the account's WABA into `message_templates`. `Unavailable` when Meta does not answer."""
    from otklik.channels.whatsapp.runtime import api_url

    async with otklik.db.read() as session:
        account = await session.get(ChannelAccount, account_id)
        if account is None or account.kind != KIND:
            raise NotFound("no such WhatsApp account")
        config, secret = dict(account.config or {}), account.secret
    graph = GraphClient(api_url(config, otklik.settings), otklik.vault.decrypt(secret) if secret else "", timeout=20.0)
    try:
        raw = await graph.templates(str(config.get("waba_id") or ""))
    except GraphError as exc:
        raise Unavailable(f"Meta refused the templates list: {exc.message[:200]}") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"Meta did not answer ({type(exc).__name__})") from None
    finally:
        await graph.aclose()
    templates = [t for t in (template_info(r) for r in raw) if t is not None]
    return await store_templates(otklik.db, account_id, templates, utcnow())


async def connect_whatsapp(
    otklik: Any,
    *,
    phone_number_id: str,
    waba_id: str,
    token: str,
    app_secret: str,
    verify_token: str = "",
    name: str = "",
    pack: str = "",
    actor: str,
    api_url: str | None = None,
) -> WhatsAppConnected:
    """Check the token with a Graph call (`GET /{phone_number_id}`), store the number (token, app secret and
    verify token encrypted), sync its templates, audit. Connecting a number again replaces its secrets (a new
    token after the old one was refused) and clears the "broken" mark."""
    from otklik.platform.channel_accounts import add_account, new_secret

    phone_number_id, waba_id, token = phone_number_id.strip(), waba_id.strip(), token.strip()
    app_secret, verify_token = app_secret.strip(), verify_token.strip()
    _check_inputs(phone_number_id, waba_id, token, app_secret, verify_token)
    name = check_name(name)
    pack = pack or otklik.settings.default_pack
    check_pack(otklik, pack)
    base = api_url or otklik.settings.whatsapp_api_url
    if api_url is not None and not api_url.startswith(("https://", "http://")):
        raise InvalidInput("the API URL must start with https:// (or http:// for a local fake)")
    try:
        info = await _phone(base, token, phone_number_id)
    except GraphError as exc:
        if exc.token_invalid:
            raise InvalidInput(f"Meta rejected the access token {mask_token(token)}") from None
        raise InvalidInput(f"Meta refused the phone number ID: {exc.message[:200]}") from None
    except httpx.HTTPError as exc:
        log.warning("WhatsApp token check failed: %s", type(exc).__name__)
        raise Unavailable("Meta's Graph API did not answer; check the network and try again") from None
    display = str(info.get("display_phone_number") or "")[:32]
    verify_token = verify_token or new_secret()[:40]
    vault = otklik.vault
    config: dict[str, Any] = {
        "phone_number_id": phone_number_id,
        "waba_id": waba_id,
        "display_phone_number": display,
        "app_secret": vault.encrypt(app_secret),
        "verify_token": vault.encrypt(verify_token),
    }
    if api_url:
        config["api_url"] = api_url
    async with otklik.db.read() as session:
        accounts = (await session.execute(select(ChannelAccount).where(ChannelAccount.kind == KIND))).scalars()
        existing = next((a for a in accounts if (a.config or {}).get("phone_number_id") == phone_number_id), None)
    if existing is not None:
        async with otklik.db.write() as session:
            account = await session.get(ChannelAccount, existing.id)
            assert account is not None
            kept = {k: v for k, v in (account.config or {}).items() if k not in ("broken", *config)}
            account.config = {**kept, **config}
            account.secret = vault.encrypt(token)
            audit(session, actor, "channel.update", "channel_account", account.id, {"kind": KIND, "number": display})
        account_id, name, created = int(existing.id), existing.name, False
    else:
        name = name or f"whatsapp-{display or phone_number_id}"
        account_id = await add_account(otklik.db, vault, kind=KIND, name=name, pack=pack, secret=token, config=config)
        await audit_added(otklik, actor, account_id, {"kind": KIND, "number": display, "pack": pack})
        created = True
    try:
        templates = await sync_templates(otklik, account_id)
    except Unavailable as exc:
        log.warning("WhatsApp templates not synced: %s", exc)
        templates = 0
    return WhatsAppConnected(
        account_id, name, phone_number_id, display, webhook_path(phone_number_id), verify_token, templates, created
    )


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""


async def connect_form(otklik: Any, fields: Mapping[str, Any], actor: str, _language: str) -> Connected:
    """The Settings page's form: the webhook URL and the verify token are shown on this one response."""
    added = await connect_whatsapp(
        otklik,
        phone_number_id=_text(fields, "phone_number_id"),
        waba_id=_text(fields, "waba_id"),
        token=_text(fields, "token"),
        app_secret=_text(fields, "app_secret"),
        verify_token=_text(fields, "verify_token"),
        name=_text(fields, "name"),
        pack=_text(fields, "pack") or otklik.settings.default_pack,
        actor=actor,
    )
    public = (otklik.settings.public_url or "").rstrip("/")
    values = {
        "name": added.name,
        "number": added.display_phone_number,
        "webhook_url": f"{public}{added.webhook_path}",
        "verify_token": added.verify_token,
        "templates": added.templates,
        "account_id": added.id,
    }
    return Connected(
        json={"id": added.id, "name": added.name, "webhook_path": added.webhook_path,
              "verify_token": added.verify_token, "templates": added.templates, "created": added.created},
        shown="admin/connected_whatsapp.html",
        values=values,
    )  # fmt: skip


async def check(otklik: Any, account: Any, secret: str) -> Check:
    from otklik.channels.whatsapp.runtime import api_url

    config = dict(account.config or {})
    if not secret:
        return Check(False, "no access token stored")
    try:
        info = await _phone(api_url(config, otklik.settings), secret, str(config.get("phone_number_id") or ""))
    except GraphError as exc:
        return Check(False, f"Meta refused: {exc.message[:200]}")
    except httpx.HTTPError as exc:
        return Check(False, f"Meta did not answer ({type(exc).__name__})")
    return Check(True, f"WhatsApp {info.get('display_phone_number', '')} answers ({info.get('quality_rating', '?')})")


# --- the templates page ----------------------------------------------------------------------------------


async def _account(request: Request, account_id: int) -> ChannelAccount:
    async with otklik_of(request).db.read() as session:
        account = await session.get(ChannelAccount, account_id)
    if account is None or account.kind != KIND:
        raise NotFound("no such WhatsApp account")
    return account


@router.get("/whatsapp/{account_id}/templates", response_class=HTMLResponse, include_in_schema=False)
async def templates_page(
    request: Request, account_id: PathId, notice: str = "", _p: Principal = Depends(need("settings"))
) -> HTMLResponse:
    account = await _account(request, account_id)
    templates: list[TemplateInfo] = await templates_of(otklik_of(request).db, account_id)
    config = dict(account.config or {})
    public = (otklik_of(request).settings.public_url or "").rstrip("/")
    return render(
        request,
        "admin/whatsapp_templates.html",
        account=account,
        number=config.get("display_phone_number", ""),
        webhook_url=f"{public}{webhook_path(str(config.get('phone_number_id', '')))}",
        broken=config.get("broken"),
        paused=config.get("marketing_paused_until"),
        templates=templates,
        notice=notice if notice in ("synced", "sync_failed") else "",
    )


@router.post("/whatsapp/{account_id}/templates/sync", include_in_schema=False)
async def templates_sync(
    request: Request, account_id: PathId, principal: Principal = Depends(need("settings"))
) -> Response:
    await _account(request, account_id)
    otklik = otklik_of(request)
    try:
        count = await sync_templates(otklik, account_id)
    except Unavailable:
        return RedirectResponse(f"/admin/whatsapp/{account_id}/templates?notice=sync_failed", status_code=303)
    async with otklik.db.write() as session:
        audit(session, principal.actor, "whatsapp.templates_sync", "channel_account", account_id, {"count": count})
    return RedirectResponse(f"/admin/whatsapp/{account_id}/templates?notice=synced", status_code=303)
