"""The webhook worker: claims due deliveries, POSTs them signed, records the outcome.

- **Claim.** In one write transaction: up to `webhook_batch` deliveries that are `pending` and due, or
  `sending` with an expired claim (a worker died mid-send), of active endpoints, and not behind an earlier
  unfinished delivery of the same endpoint and subject. On PostgreSQL the rows are locked with
  `FOR UPDATE SKIP LOCKED` (two workers never claim one row); on SQLite writers are serialised
  (`BEGIN IMMEDIATE`). A claimed row becomes `sending` with a random `claim` token and
  `next_attempt_at = now + webhook_lease_seconds`; only the holder of the token may record the outcome.
- **Send.** `POST url` with the stored envelope's exact bytes and the signed headers
  (`signing.signed_headers`), through one `httpx.AsyncClient` (no redirects followed, a
  `webhook_timeout_seconds` timeout, at most 1 KiB of the answer read).
- **Outcome.** 2xx: `delivered`. 410 Gone: `failed`, and the endpoint is disabled (the receiver said it is
  gone for good). Anything else — 3xx, 4xx (a 404 of an n8n workflow that is not active yet, a 401 while
  a secret is being changed), 408, 429, 5xx, timeouts, refused connections — is retried with exponential
  back-off and jitter (`backoff`), honouring a longer `Retry-After`, until `give_up_at` (the creation or
  the last resend + `webhook_retry_hours`); the last attempt is made at that moment, then `gave_up`.

Internal endpoints (url `internal:<consumer>`, `events.ensure_internal_endpoint`) are skipped here: their
deliveries are claimed and recorded by the consumer's own dispatcher (`WebhookDispatcher(consumer=…)`), with
the same ordering per subject, leases, back-off, give-up and the admin's failure view and resend.

At least once: a worker that dies after the receiver accepted but before `delivered` was committed leaves
the row to be sent again when its claim expires. Receivers dedupe on the event id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import aliased

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.platform.audit import audit
from otklik.platform.prometheus import WEBHOOK_DELIVERIES
from otklik.platform.webhooks.events import INTERNAL_PREFIX, body_of
from otklik.platform.webhooks.signing import signed_headers

log = logging.getLogger(__name__)
UNFINISHED = ("pending", "sending")
ANSWER_BYTES = 1024
PURGE_EVERY = 3600.0


def backoff(attempt: int, settings: Settings, rand: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base · 2^(attempt-1), capped at
    `webhook_backoff_max_seconds`, times a random factor in [0.8, 1.2] (jitter: receivers that come back
    are not hit by every sender at the same second)."""
    base = settings.webhook_backoff_base_seconds * 2 ** min(max(attempt - 1, 0), 40)
    capped = min(base, settings.webhook_backoff_max_seconds)
    return float(capped * (rand or random).uniform(0.8, 1.2))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 10**7 else None


@dataclass(slots=True)
class Claimed:
    id: int
    claim: str
    attempt: int
    event_id: str
    event_type: str
    payload: dict[str, Any]
    url: str
    secret: str  # encrypted
    give_up_at: datetime


@dataclass(slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    retry_after: float | None = None
    final: bool = False  # not worth retrying (an internal consumer's clear failure): `failed` at once

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDispatcher:
    """Delivers webhook rows. Any number may run against one database (processes, or tasks in tests)."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        settings: Settings,
        *,
        worker_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        consumer: str | None = None,
    ) -> None:
        """`consumer`: this dispatcher claims only the deliveries of the internal endpoint `internal:<consumer>`
        (a capability's own consumer, e.g. the CRM hand-over: it claims and records, it never POSTs); without
        it, the HTTP deliveries of every other endpoint."""
        self.consumer = consumer
        self.db = db
        self.vault = vault
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._next_purge = 0.0

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.settings.webhook_timeout_seconds,
                follow_redirects=False,
                transport=self._transport,
                trust_env=False,
            )
        return self._client

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; polls every `webhook_poll_seconds` when there is nothing due."""
        while not stop.is_set():
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_EVERY
                try:
                    await self.purge()
                except Exception:
                    log.exception("purging old webhook deliveries failed")
            handled = await self.run_once()
            if handled:
                continue
            try:
                await asyncio.wait_for(stop.wait(), self.settings.webhook_poll_seconds)
            except TimeoutError:
                pass

    async def run_once(self) -> int:
        """Claim one batch and deliver it; the number of deliveries attempted."""
        claimed = await self.claim()
        if claimed:
            await asyncio.gather(*(self.deliver(c) for c in claimed))
        return len(claimed)

    async def claim(self, now: datetime | None = None) -> list[Claimed]:
        now = now or utcnow()
        lease = now + timedelta(seconds=self.settings.webhook_lease_seconds)
        default_deadline = timedelta(hours=self.settings.webhook_retry_hours)
        token = secrets.token_hex(16)
        earlier = aliased(WebhookDelivery)
        ahead = exists().where(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.subject == WebhookDelivery.subject,
            earlier.id < WebhookDelivery.id,
            earlier.status.in_(UNFINISHED),
        )
        due = (
            select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status.in_(UNFINISHED),
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.active.is_(True),
                (
                    WebhookEndpoint.url == INTERNAL_PREFIX + self.consumer
                    if self.consumer is not None
                    else WebhookEndpoint.url.not_like(INTERNAL_PREFIX + "%")
                ),
                or_(WebhookDelivery.subject.is_(None), ~ahead),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(self.settings.webhook_batch)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
        async with self.db.write() as session:
            ids = [int(i) for i in (await session.execute(due)).scalars().all()]
            if not ids:
                return []
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(
                    status="sending", claim=token, next_attempt_at=lease, attempts=WebhookDelivery.attempts + 1,
                    last_attempt_at=now, updated_at=now,
                )
            )  # fmt: skip
            rows = (
                await session.execute(
                    select(
                        WebhookDelivery.id,
                        WebhookDelivery.attempts,
                        WebhookDelivery.give_up_at,
                        WebhookDelivery.created_at,
                        WebhookEvent.event_id,
                        WebhookEvent.type,
                        WebhookEvent.payload,
                        WebhookEndpoint.url,
                        WebhookEndpoint.secret,
                    )
                    .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.id.in_(ids))
                    .order_by(WebhookDelivery.id)
                )
            ).all()
        return [
            Claimed(
                r.id,
                token,
                int(r.attempts),
                r.event_id,
                r.type,
                r.payload,
                r.url,
                r.secret,
                r.give_up_at or r.created_at + default_deadline,
            )
            for r in rows
        ]

    async def attempt(self, row: Claimed) -> Outcome:
        """One POST; never raises for the receiver's or the network's failures."""
        try:
            secret = self.vault.decrypt(row.secret)
        except ValueError as exc:
            return Outcome(None, f"cannot decrypt the endpoint's secret: {exc}")
        body = body_of(row.payload)
        headers = signed_headers(
            secret, body, event_id=row.event_id, event_type=row.event_type, timestamp=int(time.time()),
            delivery_id=row.id, attempt=row.attempt,
        )  # fmt: skip
        try:
            # httpx's timeout bounds each read, not the attempt: a receiver that trickles a byte at a time could
            # hold the delivery past its lease (and another worker would send it again). This bounds the whole.
            async with (
                asyncio.timeout(self.settings.webhook_timeout_seconds),
                self.client.stream("POST", row.url, content=body, headers=headers) as response,
            ):
                answer = b""
                async for chunk in response.aiter_bytes():
                    answer += chunk
                    if len(answer) >= ANSWER_BYTES:
                        break
                code = response.status_code
                if 200 <= code < 300:
                    return Outcome(code, None)
                text = answer[:ANSWER_BYTES].decode("utf-8", "replace").strip()
                return Outcome(code, f"HTTP {code}: {text}"[:500], _retry_after(response.headers.get("retry-after")))
        except (httpx.TimeoutException, TimeoutError) as exc:
            return Outcome(None, f"timeout after {self.settings.webhook_timeout_seconds:g} s ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
        except Exception as exc:  # a broken URL that slipped past validation must not stop the worker
            log.exception("webhook delivery %s failed unexpectedly", row.id)
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])

    async def deliver(self, row: Claimed) -> str:
        """Attempt a claimed delivery and record the outcome; returns the new status (or "lost" when the
        claim expired and another worker took the row meanwhile)."""
        outcome = await self.attempt(row)
        return await self.record(row, outcome)

    async def record(self, row: Claimed, outcome: Outcome, now: datetime | None = None) -> str:
        now = now or utcnow()
        values: dict[str, Any] = {
            "claim": None,
            "updated_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
        }
        gone = outcome.status_code == 410
        if outcome.ok:
            values |= {"status": "delivered", "delivered_at": now, "last_error": None}
        elif gone or outcome.final:
            values |= {"status": "failed"}
        elif now >= row.give_up_at:
            values |= {"status": "gave_up"}
        else:
            wait = backoff(row.attempt, self.settings)
            if outcome.retry_after is not None:
                wait = max(wait, min(outcome.retry_after, self.settings.webhook_backoff_max_seconds))
            values |= {"status": "pending", "next_attempt_at": min(now + timedelta(seconds=wait), row.give_up_at)}
        async with self.db.write() as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == row.id, WebhookDelivery.claim == row.claim)
                .values(**values)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                log.warning("webhook delivery %s: claim expired before the outcome was recorded", row.id)
                return "lost"
            if gone:
                endpoint = await session.scalar(
                    select(WebhookEndpoint)
                    .join(WebhookDelivery, WebhookDelivery.endpoint_id == WebhookEndpoint.id)
                    .where(WebhookDelivery.id == row.id)
                )
                if endpoint is not None and endpoint.active:
                    endpoint.active = False
                    endpoint.disabled_reason = "the receiver answered 410 Gone"
                    endpoint.updated_at = now
                    audit(
                        session, "webhooks", "webhook.disable", "webhook", endpoint.id, {"reason": "410 Gone"}, now=now
                    )
        WEBHOOK_DELIVERIES.labels("retry" if values["status"] == "pending" else str(values["status"])).inc()
        level = logging.INFO if outcome.ok else logging.WARNING
        log.log(level, "webhook delivery %s (%s) attempt %s: %s", row.id, row.event_type, row.attempt, values["status"])
        return str(values["status"])

    async def purge(self, now: datetime | None = None) -> int:
        """Finished deliveries older than `webhook_keep_days`, and events no delivery refers to any more."""
        cutoff = (now or utcnow()) - timedelta(days=self.settings.webhook_keep_days)
        async with self.db.write() as session:
            done = await session.execute(
                delete(WebhookDelivery).where(
                    WebhookDelivery.status.in_(("delivered", "failed", "gave_up")), WebhookDelivery.updated_at < cutoff
                )
            )
            referenced = exists().where(WebhookDelivery.event_id == WebhookEvent.id)
            await session.execute(delete(WebhookEvent).where(and_(WebhookEvent.created_at < cutoff, ~referenced)))
        return int(done.rowcount)  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
