"""Webhook endpoints and deliveries: the use cases behind `otklik webhooks …` and Settings → Webhooks.

Every change is audited in its transaction (`webhook.add`, `webhook.enable`, `webhook.disable`,
`webhook.remove`, `webhook.resend`, `webhook.test`); the secret is never logged, stored only encrypted,
and shown once: when it is created.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, text, update

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from otklik.clock import utcnow
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.platform.audit import audit
from otklik.platform.webhooks.events import EVENT_TYPE, INTERNAL_PREFIX, emit

MAX_URL = 2000
MAX_PATTERNS = 50
MAX_DESCRIPTION = 200
MIN_SECRET, MAX_SECRET = 16, 200
PATTERN = re.compile(r"\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
SECRET = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces
STATUSES = ("pending", "sending", "delivered", "failed", "gave_up")
TEST_EVENT = "webhook.test"


@dataclass(frozen=True, slots=True)
class Added:
    id: int
    url: str
    events: list[str]
    secret: str  # shown once
    generated: bool


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """A delivery as the admin and the CLI show it."""

    id: int
    event_id: str
    type: str
    subject: str | None
    endpoint_id: int
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]


def check_url(raw: str) -> str:
    """An absolute http(s) URL with a host, no credentials, no fragment, at most 2000 characters."""
    url = (raw or "").strip()
    if not url:
        raise InvalidInput("url: required, e.g. https://erp.example.com/hooks/otklik")
    if len(url) > MAX_URL:
        raise InvalidInput(f"url: at most {MAX_URL} characters")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise InvalidInput("url: no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("url: not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput("url: must start with http:// or https://")
    if not parts.hostname:
        raise InvalidInput("url: a host is required")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url: no user or password in the URL (the requests are signed instead)")
    if parts.fragment:
        raise InvalidInput("url: no #fragment")
    if port == 0:
        raise InvalidInput("url: port 0 is not a port")
    return url


def parse_events(raw: str | Iterable[str]) -> list[str]:
    """Comma-separated patterns: `order.confirmed`, `order.*` or `*`; lower-cased, duplicates dropped."""
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    patterns: list[str] = []
    for part in parts:
        item = str(part).strip().lower()
        if item and item not in patterns:
            patterns.append(item)
    if not patterns:
        raise InvalidInput("events: one or more event types, e.g. order.confirmed,order.paid (or order.*, or *)")
    bad = [p for p in patterns if len(p) > 80 or not PATTERN.fullmatch(p)]
    if bad:
        shown = ", ".join(repr(b[:40]) for b in bad[:5])
        raise InvalidInput(f"events: {shown} is not an event type like order.confirmed, a prefix like order.*, or *")
    if len(patterns) > MAX_PATTERNS or len(",".join(patterns)) > 1000:
        raise InvalidInput(f"events: at most {MAX_PATTERNS} patterns")
    return patterns


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_secret(raw: str) -> str:
    if not (MIN_SECRET <= len(raw) <= MAX_SECRET) or not SECRET.fullmatch(raw):
        raise InvalidInput(f"secret: {MIN_SECRET}-{MAX_SECRET} printable ASCII characters without spaces")
    return raw


async def add_endpoint(
    db: Database,
    vault: Vault,
    url: str,
    events: str | Iterable[str],
    *,
    secret: str | None = None,
    description: str = "",
    actor: str,
) -> Added:
    """Store an endpoint (active); the secret (given or generated) is encrypted with the Vault."""
    clean_url = check_url(url)
    patterns = parse_events(events)
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION or not description.isprintable():
        raise InvalidInput(f"description: at most {MAX_DESCRIPTION} printable characters")
    generated = not secret
    plain = new_secret() if not secret else check_secret(secret)
    now = utcnow()
    async with db.write() as session:
        row = WebhookEndpoint(
            url=clean_url, events=",".join(patterns), description=description, secret=vault.encrypt(plain),
            active=True, created_by=actor[:120], created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(row)
        await session.flush()
        audit(
            session, actor, "webhook.add", "webhook", row.id,
            {"url": clean_url, "events": patterns, "secret": "generated" if generated else "given"}, now=now,
        )  # fmt: skip
        endpoint_id = int(row.id)
    return Added(endpoint_id, clean_url, patterns, plain, generated)


async def ensure_internal_endpoint(
    db: Database, vault: Vault, consumer: str, events: str | Iterable[str], *, active: bool = True
) -> int:
    """The endpoint `internal:<consumer>` subscribed to `events`, created or brought up to date (its
    patterns, its active flag); returns its id. Its deliveries are claimed by the consumer itself
    (`WebhookDispatcher(consumer=…)`), never POSTed. Idempotent: called at every start of the consumer."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,40}", consumer):
        raise InvalidInput("consumer: lower-case letters, digits, - and _")
    url = INTERNAL_PREFIX + consumer
    patterns = ",".join(parse_events(events))
    now = utcnow()
    async with db.write() as session:
        if (await session.connection()).dialect.name == "postgresql":  # two processes at once: one creates it
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:url))"), {"url": url})
        row = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.url == url).with_for_update())
        if row is None:
            row = WebhookEndpoint(
                url=url, events=patterns, description=f"internal consumer: {consumer}",
                secret=vault.encrypt(new_secret()), active=active, created_by="system", created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            audit(session, "system", "webhook.add", "webhook", row.id, {"url": url, "events": patterns}, now=now)
        elif row.events != patterns or row.active != active:
            row.events, row.active, row.updated_at = patterns, active, now
            row.disabled_reason = None if active else f"internal consumer {consumer} is off"
        return int(row.id)


async def list_endpoints(db: Database) -> list[WebhookEndpoint]:
    async with db.read() as session:
        return list((await session.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.id))).scalars().all())


#: An internal consumer's endpoint (`internal:crm`) follows its capability's connections: not switched,
#: removed or tested by hand (removing it would lose the events handed over until the next restart).
_INTERNAL_MANAGED = "this endpoint belongs to an internal consumer (the CRM hand-over); manage it there"


async def set_active(db: Database, endpoint_id: int, active: bool, *, actor: str, reason: str | None = None) -> None:
    now = utcnow()
    async with db.write() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
        if row is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        if row.url.startswith(INTERNAL_PREFIX):
            raise Conflict(_INTERNAL_MANAGED)
        if row.active == active:
            return
        row.active = active
        row.disabled_reason = None if active else (reason or f"disabled by {actor}")[:200]
        row.updated_at = now
        audit(
            session,
            actor,
            "webhook.enable" if active else "webhook.disable",
            "webhook",
            row.id,
            {"url": row.url},
            now=now,
        )


async def remove_endpoint(db: Database, endpoint_id: int, *, actor: str) -> None:
    """Delete the endpoint and its deliveries (pending ones are not sent); events stay for other endpoints."""
    now = utcnow()
    async with db.write() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
        if row is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        if row.url.startswith(INTERNAL_PREFIX):
            raise Conflict(_INTERNAL_MANAGED)
        url = row.url
        await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
        await session.delete(row)
        audit(session, actor, "webhook.remove", "webhook", endpoint_id, {"url": url}, now=now)


def _ref(raw: str) -> tuple[str, int | str]:
    text = (raw or "").strip()
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return "delivery", int(text)
    try:
        return "event", str(uuid.UUID(text))
    except ValueError:
        raise InvalidInput("give a delivery id (a number) or an event id (a UUID)") from None


async def resend(db: Database, ref: str, *, actor: str, retry_hours: float) -> int:
    """Queue a delivery (by id) or every delivery of an event (by its UUID) again, at once, with a fresh
    retry schedule and the same event id. Delivered ones are sent again too (receivers dedupe by the id).
    Returns how many were queued."""
    kind, value = _ref(ref)
    now = utcnow()
    async with db.write() as session:
        query = select(WebhookDelivery.id, WebhookDelivery.status)
        if kind == "delivery":
            query = query.where(WebhookDelivery.id == value)
        else:
            event = select(WebhookEvent.id).where(WebhookEvent.event_id == value).scalar_subquery()
            query = query.where(WebhookDelivery.event_id == event)
        rows = (await session.execute(query.with_for_update())).all()
        if not rows:
            raise NotFound(f"no webhook {kind} {value}")
        if any(r.status == "sending" for r in rows):
            raise Conflict("it is being sent right now; try again in a minute")
        ids = [int(r.id) for r in rows]
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(
                status="pending", attempts=0, next_attempt_at=now, give_up_at=now + timedelta(hours=retry_hours),
                claim=None, delivered_at=None, updated_at=now,
            )
        )  # fmt: skip
        audit(
            session,
            actor,
            "webhook.resend",
            "webhook_delivery",
            ",".join(map(str, ids))[:64],
            {"ref": str(value)},
            now=now,
        )
    return len(ids)


async def send_test(db: Database, endpoint_id: int, *, actor: str) -> str:
    """A `webhook.test` event to one active endpoint, whatever it subscribes to; returns its event id."""
    now = utcnow()
    async with db.write() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
        if row is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        if row.url.startswith(INTERNAL_PREFIX):
            raise Conflict(_INTERNAL_MANAGED)
        if not row.active:
            raise Conflict("the endpoint is disabled; enable it first")
        event_id = await emit(
            session, TEST_EVENT, {"endpoint_id": endpoint_id, "by": actor}, now=now, endpoint_id=endpoint_id
        )
        audit(session, actor, "webhook.test", "webhook", endpoint_id, {"event_id": event_id}, now=now)
    return event_id


async def list_deliveries(
    db: Database,
    *,
    status: str | None = None,
    problems: bool = False,
    endpoint_id: int | None = None,
    subject: str | None = None,
    event_type: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[DeliveryView]:
    """Newest first. `problems`: failed, given up, or pending after a failed attempt. `subject`: the deliveries
    of one thing ("order:A-17") — an order page's "webhook deliveries"."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status: one of {', '.join(STATUSES)}")
    if event_type is not None and not EVENT_TYPE.fullmatch(event_type):
        raise InvalidInput("type: an event type like order.confirmed")
    query = (
        select(WebhookDelivery, WebhookEvent.event_id, WebhookEvent.type, WebhookEvent.payload, WebhookEndpoint.url)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if problems:
        query = query.where(
            WebhookDelivery.status.in_(("failed", "gave_up"))
            | ((WebhookDelivery.status == "pending") & (WebhookDelivery.attempts > 0))
        )
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if subject is not None:
        query = query.where(WebhookDelivery.subject == subject)
    if event_type is not None:
        query = query.where(WebhookEvent.type == event_type)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    return [
        DeliveryView(
            id=d.id,
            event_id=event_id,
            type=type_,
            subject=d.subject,
            endpoint_id=d.endpoint_id,
            url=url,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            last_attempt_at=d.last_attempt_at,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
            payload=payload,
        )
        for d, event_id, type_, payload, url in rows
    ]


async def counts(db: Database) -> dict[str, int]:
    """Deliveries by status (the admin's summary)."""
    async with db.read() as session:
        rows = (
            await session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))
        ).all()
    return {str(status): int(n) for status, n in rows}
