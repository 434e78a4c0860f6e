"""Connected CRMs: the use cases behind `otklik crm …` and Settings → CRM. Secrets (Bitrix24's webhook URL
with its code, amoCRM's tokens) are stored only encrypted with the Vault and never shown again; every change
is audited. Adding the first connection turns on the internal webhook endpoint `internal:crm` the CRM job
consumes (`lead.*`, `booking.*`); removing or disabling the last one turns it off, so no events pile up."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, insert, select, update

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import WebhookEndpoint
from otklik.capabilities.crm import amocrm, bitrix24
from otklik.capabilities.crm.base import Connector, CrmError, LeakyBucket
from otklik.capabilities.crm.models import connections, links
from otklik.clock import utcnow
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.audit import audit
from otklik.platform.webhooks.events import INTERNAL_PREFIX
from otklik.platform.webhooks.service import ensure_internal_endpoint

CONSUMER = "crm"
EVENTS = "lead.*,booking.*"
KINDS = (bitrix24.KIND, amocrm.KIND)
NAME = re.compile(r"[\w .-]{1,120}")
UF = re.compile(r"UF_CRM_[A-Z0-9_]{1,60}")
CODE = re.compile(r"[A-Z0-9_:]{1,50}")
SOURCE_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAPPED = ("service", "staff", "start", "end", "price", "source_detail", "preferred_time")
STATUS_EVENTS = ("confirmed", "moved", "cancelled", "completed", "no_show")
MAX_TAGS = 10


@dataclass(frozen=True, slots=True)
class ConnectionView:
    id: int
    kind: str
    name: str
    target: str  # the portal host / the account's host, never the secret
    mapping: dict[str, Any]
    active: bool
    last_error: str | None
    created_at: datetime


async def _sync_endpoint(db: Database, vault: Vault) -> None:
    """`internal:crm` active while a connection is; never created in an install without a CRM."""
    async with db.read() as session:
        active = await session.scalar(
            select(func.count()).select_from(connections).where(connections.c.active.is_(True))
        )
        found = await session.scalar(
            select(WebhookEndpoint.id).where(WebhookEndpoint.url == INTERNAL_PREFIX + CONSUMER)
        )
    if active or found is not None:
        await ensure_internal_endpoint(db, vault, CONSUMER, EVENTS, active=bool(active))


def _name(raw: str | None, default: str) -> str:
    name = (raw or "").strip() or default
    if not NAME.fullmatch(name):
        raise InvalidInput("name: 1-120 letters, digits, spaces, . - _")
    return name


async def _add(
    db: Database, vault: Vault, kind: str, name: str, config: dict[str, Any], secret: dict[str, str], actor: str
) -> int:
    now = utcnow()
    async with db.write() as session:
        conn = await session.connection()
        taken = (await conn.execute(select(connections.c.id).where(connections.c.name == name))).first()
        if taken is not None:
            raise InvalidInput(f"name: a CRM connection named {name!r} exists; remove it first or choose another name")
        result = await conn.execute(
            insert(connections).values(
                kind=kind, name=name, config=config, secret=vault.encrypt(json.dumps(secret)), mapping={},
                active=True, created_at=now, updated_at=now,
            ).returning(connections.c.id)
        )  # fmt: skip
        row_id = int(result.scalar_one())
        audit(session, actor, "crm.add", "crm_connection", row_id, {"kind": kind, "name": name, **config}, now=now)
    await _sync_endpoint(db, vault)
    return row_id


async def add_bitrix24(db: Database, vault: Vault, webhook_url: str, *, name: str | None = None, actor: str) -> int:
    url = bitrix24.check_webhook_url(webhook_url)
    host = urlsplit(url).hostname or ""
    return await _add(db, vault, bitrix24.KIND, _name(name, host), {"portal": host}, {"webhook_url": url}, actor)


async def add_amocrm(
    db: Database,
    vault: Vault,
    *,
    subdomain: str,
    token: str,
    refresh_token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    redirect_uri: str | None = None,
    base_url: str | None = None,
    name: str | None = None,
    actor: str,
) -> int:
    base = amocrm.base_url_of(subdomain, base_url)
    token = (token or "").strip()
    if not token or len(token) > 4000 or not token.isprintable() or " " in token:
        raise InvalidInput("token: the long-lived token (or OAuth access token), no spaces")
    secret = {"access_token": token}
    oauth = {"refresh_token": refresh_token, "client_id": client_id, "client_secret": client_secret}
    given = {k: v.strip() for k, v in oauth.items() if v and v.strip()}
    if given and len(given) != 3:
        raise InvalidInput("OAuth: give the refresh token, the client id and the client secret together")
    secret |= given
    if redirect_uri:
        secret["redirect_uri"] = redirect_uri.strip()
    host = urlsplit(base).hostname or ""
    return await _add(db, vault, amocrm.KIND, _name(name, host), {"base_url": base}, secret, actor)


def parse_mapping(kind: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping form's fields (`field_<what>`, `status_<event>`, `source_<source>`, …) → the stored mapping.
    Every bad value is named in one InvalidInput."""
    errors: list[str] = []
    out: dict[str, Any] = {}

    def get(key: str) -> str:
        value = form.get(key)
        return "" if value is None else str(value).strip()

    def number(key: str) -> int | None:
        raw = get(key)
        if not raw:
            return None
        if not raw.isascii() or not raw.isdigit() or len(raw) > 12 or int(raw) == 0:
            errors.append(f"{key}: a positive whole number")
            return None
        return int(raw)

    fields: dict[str, Any] = {}
    statuses: dict[str, Any] = {}
    for what in MAPPED:
        raw = get(f"field_{what}")
        if not raw:
            continue
        if kind == bitrix24.KIND:
            if not UF.fullmatch(raw):
                errors.append(f"field_{what}: a Bitrix24 custom field code like UF_CRM_1712345678")
            else:
                fields[what] = raw
        elif (value := number(f"field_{what}")) is not None:
            fields[what] = value
    for event in STATUS_EVENTS:
        raw = get(f"status_{event}")
        if not raw:
            continue
        if kind == bitrix24.KIND:
            if not CODE.fullmatch(raw):
                errors.append(f"status_{event}: a Bitrix24 status code like JUNK or IN_PROCESS")
            else:
                statuses[event] = raw
        elif (value := number(f"status_{event}")) is not None:
            statuses[event] = value
    if fields:
        out["fields"] = fields
    if statuses:
        out["statuses"] = statuses
    if kind == bitrix24.KIND:
        sources: dict[str, str] = {}
        for key in form:
            if str(key).startswith("source_") and get(str(key)):
                source, code = str(key)[7:], get(str(key))
                if not SOURCE_KEY.fullmatch(source) or not CODE.fullmatch(code):
                    errors.append(f"{str(key)[:60]}: a Bitrix24 source code like WEB or CALL")
                else:
                    sources[source] = code
        if sources:
            out["sources"] = sources
        if default := get("default_source"):
            if CODE.fullmatch(default):
                out["default_source"] = default
            else:
                errors.append("default_source: a Bitrix24 source code like WEB")
        if (responsible := number("responsible_id")) is not None:
            out["responsible_id"] = responsible
    elif kind == amocrm.KIND:
        for key in ("pipeline_id", "status_id", "responsible_user_id"):
            if (value := number(key)) is not None:
                out[key] = value
        tags = [t.strip() for t in get("tags").split(",") if t.strip()]
        if len(tags) > MAX_TAGS or any(len(t) > 50 or not t.isprintable() for t in tags):
            errors.append(f"tags: at most {MAX_TAGS} comma-separated tags of up to 50 characters")
        elif tags:
            out["tags"] = tags
    else:
        errors.append(f"kind: one of {', '.join(KINDS)}")
    if errors:
        raise InvalidInput("; ".join(errors))
    return out


async def set_mapping(db: Database, connection_id: int, form: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    now = utcnow()
    async with db.write() as session:
        conn = await session.connection()
        row = (await conn.execute(select(connections.c.kind).where(connections.c.id == connection_id))).first()
        if row is None:
            raise NotFound(f"no CRM connection {connection_id}")
        mapping = parse_mapping(str(row.kind), form)
        await conn.execute(
            update(connections).where(connections.c.id == connection_id).values(mapping=mapping, updated_at=now)
        )
        audit(session, actor, "crm.mapping", "crm_connection", connection_id, mapping, now=now)
    return mapping


async def set_active(db: Database, vault: Vault, connection_id: int, active: bool, *, actor: str) -> None:
    now = utcnow()
    async with db.write() as session:
        conn = await session.connection()
        result = await conn.execute(
            update(connections).where(connections.c.id == connection_id).values(active=active, updated_at=now)
        )
        if result.rowcount == 0:
            raise NotFound(f"no CRM connection {connection_id}")
        audit(session, actor, "crm.enable" if active else "crm.disable", "crm_connection", connection_id, {}, now=now)
    await _sync_endpoint(db, vault)


async def remove(db: Database, vault: Vault, connection_id: int, *, actor: str) -> None:
    now = utcnow()
    async with db.write() as session:
        conn = await session.connection()
        await conn.execute(links.delete().where(links.c.connection_id == connection_id))
        result = await conn.execute(connections.delete().where(connections.c.id == connection_id))
        if result.rowcount == 0:
            raise NotFound(f"no CRM connection {connection_id}")
        audit(session, actor, "crm.remove", "crm_connection", connection_id, {}, now=now)
    await _sync_endpoint(db, vault)


def _view(row: Any) -> ConnectionView:
    config = dict(row.config or {})
    target = str(config.get("portal") or config.get("base_url") or "")
    return ConnectionView(
        int(row.id), str(row.kind), str(row.name), target, dict(row.mapping or {}), bool(row.active), row.last_error,
        row.created_at,
    )  # fmt: skip


async def list_connections(db: Database, *, active_only: bool = False) -> list[ConnectionView]:
    query = select(connections).order_by(connections.c.id)
    if active_only:
        query = query.where(connections.c.active.is_(True))
    async with db.read() as session:
        rows = (await (await session.connection()).execute(query)).all()
    return [_view(r) for r in rows]


async def connector_for(
    db: Database,
    vault: Vault,
    connection_id: int,
    *,
    admin_base: str = "",
    bucket: LeakyBucket | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Connector:
    """The connector of one stored connection; amoCRM's refreshed tokens are stored back, encrypted."""
    async with db.read() as session:
        row = (
            await (await session.connection()).execute(select(connections).where(connections.c.id == connection_id))
        ).first()
    if row is None:
        raise NotFound(f"no CRM connection {connection_id}")
    try:
        secret = json.loads(vault.decrypt(row.secret))
    except ValueError:
        raise CrmError("cannot decrypt the connection's secret (was the Vault key changed?)", retry=False) from None
    if row.kind == bitrix24.KIND:
        return bitrix24.Bitrix24(
            secret["webhook_url"], row.mapping, admin_base=admin_base, bucket=bucket, transport=transport
        )
    if row.kind == amocrm.KIND:
        return amocrm.AmoCrm(
            str(row.config["base_url"]), secret, row.mapping, admin_base=admin_base, bucket=bucket, transport=transport,
            on_tokens=_token_saver(db, vault, connection_id),
        )  # fmt: skip
    raise CrmError(f"unknown CRM kind {row.kind!r}", retry=False)


def _token_saver(db: Database, vault: Vault, connection_id: int) -> Callable[[dict[str, str]], Awaitable[None]]:
    async def save(tokens: dict[str, str]) -> None:
        now = utcnow()
        async with db.write() as session:
            conn = await session.connection()
            await conn.execute(
                update(connections)
                .where(connections.c.id == connection_id)
                .values(secret=vault.encrypt(json.dumps(tokens)), updated_at=now)
            )
            audit(session, "crm", "crm.token_refresh", "crm_connection", connection_id, {}, now=now)

    return save


async def test_connection(
    db: Database, vault: Vault, connection_id: int, *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[bool, str]:
    """One authenticated call and the mapping checked; (ok, the line to show). Stores the error or clears it."""
    try:
        connector = await connector_for(db, vault, connection_id, transport=transport)
    except CrmError as exc:
        ok, message = False, exc.message
    else:
        try:
            ok, message = True, await connector.check()
        except CrmError as exc:
            ok, message = False, exc.message
        finally:
            await connector.aclose()
    async with db.write() as session:
        await (await session.connection()).execute(
            update(connections)
            .where(connections.c.id == connection_id)
            .values(last_error=None if ok else message[:500])
        )
    return ok, message
