"""Emitting an event: the event row and one delivery per matching active endpoint, written in the CALLER's
transaction (a transactional outbox): if the caller rolls back, nothing was emitted and nothing is sent;
once it commits, the webhook worker delivers at least once.

    from otklik.platform.webhooks import emit

    async with app.db.write() as session:
        order = ...                                     # the capability's own writes
        await emit(session, "order.confirmed", {"number": order.number, "total": order.total},
                   now=now, subject=f"order:{order.number}")

`tx` is the ORM session of `Database.write()` or a quick action's / reaction's `ctx.tx` (Core statements).
`subject` groups events about one thing ("order:A-17", "conversation:42"): an endpoint receives the events of
one subject in the order they were emitted (the next waits until the previous one is delivered or given
up). Without a subject, deliveries are independent. `data` may hold str, int, float, bool, None, lists and
dicts, and Decimal (sent as a string: "58900.00"), datetime/date (ISO 8601), UUID and enums (their value).
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Executable, Insert, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

EVENT_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
MAX_TYPE = 80
MAX_SUBJECT = 120
MAX_PAYLOAD_BYTES = 256 * 1024
#: An endpoint whose url is `internal:<consumer>` is consumed inside the install (the CRM hand-over's
#: `internal:crm`): `emit` records its deliveries like any other, the HTTP worker skips them, and the
#: consumer's `WebhookDispatcher(consumer=…)` claims them (`service.ensure_internal_endpoint`).
INTERNAL_PREFIX = "internal:"


class CoreTx(Protocol):
    """A transaction that runs SQLAlchemy Core statements (`conversations.timers.QuickTx`)."""

    async def fetch(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Any]: ...

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> int: ...

    async def insert_id(self, stmt: Insert, params: Mapping[str, Any] | None = None) -> int: ...


class _SessionTx:
    """An ORM session's transaction as a `CoreTx`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def fetch(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        conn = await self.session.connection()
        return list((await conn.execute(stmt, dict(params) if params else None)).all())

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> int:
        conn = await self.session.connection()
        return int((await conn.execute(stmt, dict(params) if params else None)).rowcount)

    async def insert_id(self, stmt: Insert, params: Mapping[str, Any] | None = None) -> int:
        rows = await self.fetch(stmt.returning(stmt.table.c.id), params)
        return int(rows[0][0])


def pattern_matches(pattern: str, event_type: str) -> bool:
    """`*` matches every type, `order.*` every type under `order.`, anything else itself only."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def subscribed(patterns: str, event_type: str) -> bool:
    return any(pattern_matches(p.strip(), event_type) for p in patterns.split(",") if p.strip())


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} in a webhook payload")


def iso(moment: datetime) -> str:
    """UTC, millisecond precision, with a Z: 2026-12-05T17:20:00.123Z."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; use otklik.clock.utcnow()")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def body_of(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed): compact UTF-8 JSON of the stored envelope, the same every time."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def envelope(event_id: str, event_type: str, data: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """`{"id", "type", "created_at", "data"}` with `data` turned into plain JSON values."""
    if not isinstance(data, Mapping):
        raise TypeError("webhook data must be a mapping (a JSON object)")
    plain = json.loads(json.dumps(dict(data), default=_plain, allow_nan=False))
    return {"id": event_id, "type": event_type, "created_at": iso(now), "data": plain}


def _checked(
    event_id: str, event_type: str, data: Mapping[str, Any], now: datetime, subject: str | None
) -> dict[str, Any]:
    """The envelope of a well-formed event; ValueError / TypeError for what cannot be sent."""
    if len(event_type) > MAX_TYPE or not EVENT_TYPE.fullmatch(event_type):
        raise ValueError(f"event type {event_type!r}: lower-case dotted words like order.confirmed")
    if subject is not None and (not subject or len(subject) > MAX_SUBJECT or not subject.isprintable()):
        raise ValueError(f"subject: 1-{MAX_SUBJECT} printable characters")
    payload = envelope(event_id, event_type, data, now)
    if len(body_of(payload)) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"webhook payload over {MAX_PAYLOAD_BYTES // 1024} KiB")
    return payload


_ACTIVE = select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.active.is_(True))
_ONE_ACTIVE = _ACTIVE.where(WebhookEndpoint.id == bindparam("endpoint_id"))
_ADD_EVENT = insert(WebhookEvent)
_ADD_DELIVERY = insert(WebhookDelivery)


async def emit(
    tx: AsyncSession | CoreTx,
    event_type: str,
    data: Mapping[str, Any],
    *,
    now: datetime,
    subject: str | None = None,
    endpoint_id: int | None = None,
) -> str:
    """Record the event for every active endpoint subscribed to `event_type`, in the caller's transaction.
    Returns the event id (a UUID string; also the receivers' idempotency key).

    No row is written when no active endpoint is subscribed (the id is still returned). `endpoint_id`: to
    that endpoint only, whatever it subscribes to (the "send a test event" button).
    Raises ValueError for a malformed type or subject, TypeError for data that is not JSON, ValueError for a
    payload over 256 KiB."""
    event_id = str(uuid.uuid4())
    payload = _checked(event_id, event_type, data, now, subject)
    core: CoreTx = _SessionTx(tx) if isinstance(tx, AsyncSession) else tx
    if endpoint_id is not None:
        rows = await core.fetch(_ONE_ACTIVE, {"endpoint_id": endpoint_id})
        targets = [int(r[0]) for r in rows]
    else:
        rows = await core.fetch(_ACTIVE)
        targets = [int(r[0]) for r in rows if subscribed(str(r[1]), event_type)]
    return await _record(core, event_id, event_type, payload, subject, targets, now)


async def _record(
    core: CoreTx,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    subject: str | None,
    targets: list[int],
    now: datetime,
) -> str:
    """The event row and one delivery per target endpoint (none: nothing is written)."""
    if not targets:
        return event_id
    row_id = await core.insert_id(
        _ADD_EVENT,
        {"event_id": event_id, "type": event_type, "subject": subject, "payload": payload, "created_at": now},
    )
    for target in sorted(targets):
        await core.execute(
            _ADD_DELIVERY,
            {
                "event_id": row_id,
                "endpoint_id": target,
                "subject": subject,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "give_up_at": None,
                "created_at": now,
                "updated_at": now,
            },
        )
    return event_id


async def emit_many(
    tx: AsyncSession | CoreTx,
    events: list[tuple[str, Mapping[str, Any]]],
    *,
    now: datetime,
    subject: str | None = None,
) -> list[str]:
    """`emit` for several events of one subject, in order, reading the endpoints once (the kernel's hot
    path: a buyer's message is `message.received`, maybe `conversation.started` and `message.sent`).
    Returns the event ids."""
    if not events:
        return []
    core: CoreTx = _SessionTx(tx) if isinstance(tx, AsyncSession) else tx
    endpoints = [(int(r[0]), str(r[1])) for r in await core.fetch(_ACTIVE)]
    ids: list[str] = []
    for event_type, data in events:
        targets = [endpoint for endpoint, patterns in endpoints if subscribed(patterns, event_type)]
        if not targets:
            ids.append(str(uuid.uuid4()))
            continue
        event_id = str(uuid.uuid4())
        payload = _checked(event_id, event_type, data, now, subject)
        ids.append(await _record(core, event_id, event_type, payload, subject, targets, now))
    return ids
