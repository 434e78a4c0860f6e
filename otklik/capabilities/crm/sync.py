"""The CRM job: the consumer of the internal webhook endpoint `internal:crm` (docs/crm.md).

The bookings capability emits `lead.*` / `booking.*` with `platform.webhooks.emit` in its transactions; the
endpoint `internal:crm` (on while a CRM is connected) gets one delivery per event, and this job claims them
through `WebhookDispatcher(consumer="crm")` — the webhook outbox's ordering per subject, leases, back-off,
give-up, failure view and resend — and hands each to every active connection. The CRM's ids are stored per
connection and lead / booking (`crm_links`) as soon as they exist, so a retry never creates a second lead.
A failure the CRM may get over (down, 503, 429, timeouts) is retried with back-off for `webhook_retry_hours`;
one it cannot (a revoked webhook, a mapped field that no longer exists) fails at once with its text, to be
retried from Settings → CRM once fixed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import insert, select, update

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.capabilities.crm.base import Connector, CrmError, LeakyBucket, Link, Save
from otklik.capabilities.crm.models import connections, links
from otklik.capabilities.crm.service import CONSUMER, _sync_endpoint, connector_for, list_connections
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.platform.webhooks.worker import Claimed, Outcome, WebhookDispatcher

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

log = logging.getLogger(__name__)
BOOKING_EVENTS = ("created", "moved", "confirmed", "cancelled", "completed", "no_show")


async def get_link(db: Database, connection_id: int, obj: str, local_id: int) -> Link | None:
    async with db.read() as session:
        row = (
            await (await session.connection()).execute(
                select(links.c.contact_ext, links.c.record_ext, links.c.activity_ext).where(
                    links.c.connection_id == connection_id, links.c.object == obj, links.c.local_id == local_id
                )
            )
        ).first()
    return None if row is None else Link(row.contact_ext, row.record_ext, row.activity_ext)


async def put_link(
    db: Database, connection_id: int, obj: str, local_id: int, link: Link, *, keep: bool = False
) -> None:
    """Store the CRM's ids of a lead / booking (`keep`: only if none are stored yet)."""
    now = utcnow()
    key = (links.c.connection_id == connection_id, links.c.object == obj, links.c.local_id == local_id)
    values = {"contact_ext": link.contact, "record_ext": link.record, "activity_ext": link.activity, "updated_at": now}
    async with db.write() as session:
        conn = await session.connection()
        found = (await conn.execute(select(links.c.id).where(*key).with_for_update())).first()
        if found is None:
            await conn.execute(
                insert(links).values(
                    connection_id=connection_id, object=obj, local_id=local_id, created_at=now, **values
                )
            )
        elif not keep:
            await conn.execute(update(links).where(links.c.id == found.id).values(**values))


def _int(data: Mapping[str, Any], key: str, *, required: bool) -> int | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise CrmError(f"malformed {key!r} in the event: {str(value)[:40]!r} is not an id", retry=False)
    return value


class CrmSync:
    """Claims the CRM's deliveries and hands them over. Any number may run (rows are claimed, not shared)."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db, self.vault, self.settings = db, vault, settings
        self.dispatcher = WebhookDispatcher(db, vault, settings, consumer=CONSUMER)
        self.transport = transport
        self.sleep = sleep
        self.buckets: dict[int, LeakyBucket] = {}  # the CRMs' limits outlive a batch

    def bucket(self, connection_id: int, kind: str) -> LeakyBucket:
        if connection_id not in self.buckets:
            from otklik.capabilities.crm import amocrm, bitrix24

            rate, burst = (bitrix24.RATE, bitrix24.BURST) if kind == bitrix24.KIND else (amocrm.RATE, amocrm.BURST)
            self.buckets[connection_id] = LeakyBucket(rate, burst, sleep=self.sleep)
        return self.buckets[connection_id]

    async def run(self, stop: asyncio.Event) -> None:
        await _sync_endpoint(self.db, self.vault)
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("the CRM job failed; trying again")
                handled = 0
            if handled:
                continue
            try:
                await asyncio.wait_for(stop.wait(), self.settings.webhook_poll_seconds)
            except TimeoutError:
                pass

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim due deliveries of `internal:crm` and hand them over, one after the other (the CRMs' limits);
        returns how many were handled."""
        claimed = await self.dispatcher.claim(now)
        if not claimed:
            return 0
        connectors: dict[int, Connector | CrmError] = {}
        try:
            for row in claimed:
                outcome = await self.handle(row, connectors)
                await self.dispatcher.record(row, outcome, now)
        finally:
            for connector in connectors.values():
                if not isinstance(connector, CrmError):
                    await connector.aclose()
        return len(claimed)

    async def _connector(self, view_id: int, kind: str, cache: dict[int, Connector | CrmError]) -> Connector:
        if view_id not in cache:
            try:
                cache[view_id] = await connector_for(
                    self.db, self.vault, view_id, admin_base=self.settings.public_url or "",
                    bucket=self.bucket(view_id, kind), transport=self.transport,
                )  # fmt: skip
            except CrmError as exc:
                cache[view_id] = exc
        found = cache[view_id]
        if isinstance(found, CrmError):
            raise found
        return found

    async def handle(self, row: Claimed, cache: dict[int, Connector | CrmError]) -> Outcome:
        event = row.event_type
        data = row.payload.get("data") if isinstance(row.payload, dict) else None
        wanted = event == "lead.created" or (event.startswith("booking.") and event.split(".", 1)[1] in BOOKING_EVENTS)
        if not wanted:
            return Outcome(200, None)  # another lead.* / booking.* type: nothing to hand over
        if not isinstance(data, dict):
            return Outcome(None, "malformed event: no data object", final=True)
        errors: list[str] = []
        final = True
        for view in await list_connections(self.db, active_only=True):
            try:
                connector = await self._connector(view.id, view.kind, cache)
                # Always look for a record an earlier attempt may have made before creating one (one cheap call):
                # a resend from the admin starts the attempts again, so their count cannot tell.
                await self.apply(view.id, connector, event, data, retrying=True)
            except CrmError as exc:
                errors.append(f"{view.name}: {exc.message}")
                final = final and not exc.retry
            except Exception as exc:  # a bug must not stop the job; the delivery is retried
                log.exception("CRM delivery %s to %s failed unexpectedly", row.id, view.name)
                errors.append(f"{view.name}: {type(exc).__name__}: {exc}")
                final = False
            await self._note(view.id, errors[-1] if errors and errors[-1].startswith(f"{view.name}: ") else None)
        if not errors:
            return Outcome(200, None)
        return Outcome(None, "; ".join(errors)[:500], final=final)

    async def _note(self, connection_id: int, error: str | None) -> None:
        async with self.db.write() as session:
            await (await session.connection()).execute(
                update(connections)
                .where(connections.c.id == connection_id)
                .values(last_error=error[:500] if error else None)
            )

    async def apply(
        self, connection_id: int, connector: Connector, event: str, data: Mapping[str, Any], *, retrying: bool
    ) -> Link:
        if event == "lead.created":
            lead_id = _int(data, "lead_id", required=True)
            assert lead_id is not None
            link = await get_link(self.db, connection_id, "lead", lead_id)
            return await connector.lead(data, link, self._saver(connection_id, "lead", lead_id), retrying=retrying)
        booking_id = _int(data, "booking_id", required=True)
        lead_id = _int(data, "lead_id", required=False)
        assert booking_id is not None
        lead = await get_link(self.db, connection_id, "lead", lead_id) if lead_id else None
        link = await get_link(self.db, connection_id, "booking", booking_id)
        save = self._saver(connection_id, "booking", booking_id)

        async def save_both(found: Link) -> None:
            await save(found)
            if lead_id and found.record:  # a lead.created handled later must find this lead, not make another
                await put_link(
                    self.db, connection_id, "lead", lead_id, Link(found.contact, found.record, "note"), keep=True
                )

        return await connector.booking(event, data, lead, link, save_both, retrying=retrying)

    def _saver(self, connection_id: int, obj: str, local_id: int) -> Save:
        async def save(link: Link) -> None:
            await put_link(self.db, connection_id, obj, local_id, link)

        return save


def crm_job(app: Otklik) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The capability's job (`JobSpec("crm", …)`)."""
    return CrmSync(app.db, app.vault, app.settings).run
