"""`reach(...)`: a durable, route-choosing message to a person outside the chat, and the worker that sends it.

    async with app.db.write() as tx:                      # the transaction that schedules the reminder
        await reach(tx, contact_id, "Напоминаем: завтра в 15:00 стрижка у Айгуль. Салон «Лён», ул. Баумана 5",
                    routes=("sms", "email"), dedup_key=f"booking:{booking_id}:remind:24h")

One `reach_attempts` row per route tried. `reach` writes the first route's row (`queued`) in the caller's
transaction; a second call with the same `dedup_key` writes nothing and returns the first row's id. The
worker's `reach` job (`ReachWorker`) claims due rows with a lease and sends them:

- `channel`: through the hook the container gives (`ChannelRoute`); without one, or when it says the
  contact cannot be reached there, the route fails at once and the next route is queued;
- `sms`: the phone number the contact already has (`contacts.fields["phone"]`, made E.164 with
  `phonenumbers`), through the configured `SmsSender`; a text longer than `sms_max_parts` segments is
  refused for SMS (the next route is tried); SMS.ru's delivery status is polled (`check_at`) until
  delivered (`delivered`) or not (`failed`, then the next route);
- `email`: `contacts.fields["email"]` through the staff e-mail transport (`OTKLIK_SMTP_*`).

Outcomes: 429 → due again after Retry-After (not counted); transient (5xx, timeout, SMTP down) → due again
after `reach_backoff_base · 2^(attempt-1)` s; permanent (bad number, no phone, refused) or
`reach_max_attempts` reached → `failed`, and the next route in `routes` is queued. A worker that died while
sending: e-mail is sent again (same Message-ID), SMS and channel become `uncertain` and are not repeated.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import Contact, ReachAttempt
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.core.channel import SendError
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.reach import config as sms_config
from otklik.platform.reach.senders import DELIVERED, UNDELIVERED, SmsResult, SmsSender
from otklik.platform.reach.text import MAX_TEXT, e164, email_address, mask_email, mask_phone, sms_parts
from otklik.platform.staff.transports import Delivery, SmtpTransport, printable

log = logging.getLogger(__name__)
ROUTES = ("channel", "sms", "email")
QUEUED, SENDING, SENT, DELIVERED_, FAILED, UNCERTAIN = "queued", "sending", "sent", "delivered", "failed", "uncertain"
MAX_KEY = 200
LOST = "the worker stopped while sending; not sent again to avoid a duplicate"


class ChannelRoute(Protocol):
    """Sends `text` to the contact on the channel they came from; returns an id (e.g. the outbox row's) or
    raises `SendError(permanent=True)` when that channel cannot reach them now (a web-chat visitor who left,
    WhatsApp outside the 24-hour window without a template)."""

    async def __call__(self, contact_id: int, text: str, key: str) -> str | None: ...


def _check(text: str, routes: tuple[str, ...], dedup_key: str) -> tuple[str, tuple[str, ...], str]:
    clean = printable(text or "").strip()
    if not clean:
        raise InvalidInput("text: required")
    if len(clean) > MAX_TEXT:
        raise InvalidInput(f"text: at most {MAX_TEXT} characters")
    routes = tuple(routes)
    if not routes or any(r not in ROUTES for r in routes) or len(set(routes)) != len(routes):
        raise InvalidInput(f"routes: one or more of {', '.join(ROUTES)}, each once")
    key = (dedup_key or "").strip()
    if not key or len(key) > MAX_KEY or any(ord(c) < 32 for c in key):
        raise InvalidInput(f"dedup_key: 1 to {MAX_KEY} printable characters")
    return clean, routes, key


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def reach(
    tx: AsyncSession,
    contact_id: int,
    text: str,
    *,
    routes: tuple[str, ...] = ROUTES,
    dedup_key: str,
    now: datetime | None = None,
) -> int:
    """Queue `text` for the contact on the first of `routes` (then the next ones, as each fails), in the
    caller's transaction. Returns the id of the first attempt; with a `dedup_key` already used, writes nothing
    and returns the id of that key's first attempt."""
    clean, routes, key = _check(text, routes, dedup_key)
    existing = await tx.scalar(
        select(ReachAttempt.id).where(ReachAttempt.dedup_key == key).order_by(ReachAttempt.id).limit(1)
    )
    if existing is not None:
        return int(existing)
    if await tx.get(Contact, contact_id) is None:
        raise NotFound("no such contact")
    now = now or utcnow()
    row = _row(contact_id, key, routes[0], routes[1:], clean, now)
    await tx.execute(
        _insert(tx)(ReachAttempt).values(**row).on_conflict_do_nothing(index_elements=["dedup_key", "route"])
    )
    first = await tx.scalar(
        select(ReachAttempt.id).where(ReachAttempt.dedup_key == key).order_by(ReachAttempt.id).limit(1)
    )
    assert first is not None
    return int(first)


def _row(contact_id: int, key: str, route: str, rest: tuple[str, ...], text: str, now: datetime) -> dict[str, Any]:
    return {
        "contact_id": contact_id, "dedup_key": key, "route": route, "next_routes": ",".join(rest), "text": text,
        "address": "", "status": QUEUED, "provider": "", "parts": 0, "attempts": 0, "due_at": now, "created_at": now,
    }  # fmt: skip


async def next_route(
    session: AsyncSession, contact_id: int, key: str, next_routes: str, text: str, now: datetime
) -> None:
    """Queue the route after a failed one (nothing when it was the last; never twice: the unique key)."""
    rest = tuple(r for r in next_routes.split(",") if r)
    if not rest:
        return
    row = _row(contact_id, key, rest[0], rest[1:], text, now)
    stmt = _insert(session)(ReachAttempt).values(**row).on_conflict_do_nothing(index_elements=["dedup_key", "route"])
    await session.execute(stmt)


async def record_statuses(db: Database, provider: str, states: dict[str, str], now: datetime) -> int:
    """A provider's final word on sent messages (`provider_id` → delivered | failed), from the status poll or
    a status callback: delivered rows are marked, undelivered ones failed and the next route queued. Rows not
    `sent` (already final, or unknown ids) are left alone. Returns how many changed."""
    if not states:
        return 0
    changed = 0
    async with db.write() as session:
        rows = (
            (
                await session.execute(
                    select(ReachAttempt).where(
                        ReachAttempt.provider == provider,
                        ReachAttempt.provider_id.in_(list(states)[:500]),
                        ReachAttempt.status == SENT,
                    )
                )
            )
            .scalars()
            .all()
        )
        for r in rows:
            state = states.get(str(r.provider_id))
            where = (ReachAttempt.id == r.id, ReachAttempt.status == SENT)
            if state == DELIVERED:
                values: dict[str, Any] = {"status": DELIVERED_, "delivered_at": now, "check_at": None}
            elif state == UNDELIVERED:
                values = {"status": FAILED, "check_at": None, "error": f"{r.provider}: not delivered"}
            else:
                continue
            result: Any = await session.execute(update(ReachAttempt).where(*where).values(**values))
            if result.rowcount:
                changed += 1
                if state == UNDELIVERED:
                    await next_route(session, r.contact_id, r.dedup_key, r.next_routes, r.text, now)
    return changed


async def attempts_of(db: Database, dedup_key: str) -> list[ReachAttempt]:
    """Every route tried for one message, in order: which route it took and whether it was delivered."""
    async with db.read() as session:
        query = select(ReachAttempt).where(ReachAttempt.dedup_key == dedup_key).order_by(ReachAttempt.id)
        return list((await session.execute(query)).scalars().all())


async def recent(db: Database, limit: int = 50) -> list[ReachAttempt]:
    async with db.read() as session:
        query = select(ReachAttempt).order_by(ReachAttempt.id.desc()).limit(limit)
        return list((await session.execute(query)).scalars().all())


async def send_test_sms(db: Database, vault: Vault, settings: Settings, to: str, text: str) -> SmsResult:
    """The admin's "send test SMS" and `otklik sms test`: one SMS now, through the configured provider."""
    phone = e164(to, settings.sms_region)
    clean = printable(text or "").strip()
    if not clean or sms_parts(clean) > settings.sms_max_parts:
        raise InvalidInput(f"text: 1 to {settings.sms_max_parts} SMS segments")
    sender = sms_config.build_sender(await sms_config.load(db), vault, settings)
    if sender is None:
        raise InvalidInput("no SMS provider is configured (Settings → SMS)")
    try:
        return await sender.send(phone, clean)
    finally:
        await sender.aclose()


@dataclass(slots=True)
class _Claimed:
    id: int
    contact_id: int
    route: str
    next_routes: str
    text: str
    attempts: int
    dedup_key: str


class ReachWorker:
    """The `reach` job of `otklik run --role worker|all`. Several may share one PostgreSQL database."""

    def __init__(
        self,
        db: Database,
        vault: Vault,
        settings: Settings,
        *,
        channel: ChannelRoute | None = None,
        sms: SmsSender | None = None,
        worker_id: str | None = None,
        batch: int = 50,
        concurrency: int = 8,
    ) -> None:
        self.db, self.vault, self.settings, self.channel = db, vault, settings, channel
        self._fixed_sms = sms  # a test's or an embedder's sender; otherwise built from the stored settings
        self.email = SmtpTransport(settings)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:reach:{secrets.token_hex(4)}"
        self.batch, self.concurrency = batch, concurrency
        self._round_sms: SmsSender | None = None
        self.wakeup = asyncio.Event()
        self._sms: SmsSender | None = None
        self._sms_config: sms_config.SmsConfig | None = None

    def wake(self) -> None:
        self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wakeup.clear()
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("reach: a round failed")
                busy = 0
            if busy:
                continue
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wakeup.wait())]
            try:
                await asyncio.wait(waits, timeout=self.settings.reach_poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in waits:
                    task.cancel()

    async def sms_sender(self) -> SmsSender | None:
        if self._fixed_sms is not None:
            return self._fixed_sms
        current = await sms_config.load(self.db)
        if current != self._sms_config:
            if self._sms is not None:
                await self._sms.aclose()
            self._sms, self._sms_config = sms_config.build_sender(current, self.vault, self.settings), current
        return self._sms

    async def run_once(self, now: datetime | None = None) -> int:
        """Recover expired leases, send due attempts, poll delivery statuses. Returns how many were sent."""
        now = now or utcnow()
        await self.recover_expired(now)
        claimed = await self.claim(now)
        if claimed:
            self._round_sms = await self.sms_sender()  # the stored settings read once per round
            gate = asyncio.Semaphore(self.concurrency)

            async def one(row: _Claimed) -> None:
                async with gate:
                    await self._send(row, now)

            await asyncio.gather(*(one(row) for row in claimed))
        await self.poll_status(now)
        return len(claimed)

    async def claim(self, now: datetime) -> list[_Claimed]:
        lease = now + timedelta(seconds=self.settings.outbox_lease_seconds + self.settings.send_timeout_seconds)
        async with self.db.write() as session:
            rows = (
                (
                    await session.execute(
                        select(ReachAttempt)
                        .where(ReachAttempt.status == QUEUED, ReachAttempt.due_at <= now)
                        .order_by(ReachAttempt.due_at, ReachAttempt.id)
                        .limit(self.batch)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return []
            claimed = [
                _Claimed(int(r.id), int(r.contact_id), r.route, r.next_routes, r.text, int(r.attempts) + 1, r.dedup_key)
                for r in rows
            ]
            await session.execute(
                update(ReachAttempt)
                .where(ReachAttempt.id.in_([r.id for r in rows]), ReachAttempt.status == QUEUED)
                .values(status=SENDING, lease_until=lease, worker=self.worker_id, attempts=ReachAttempt.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            return claimed

    async def _contact_field(self, contact_id: int, name: str) -> str:
        async with self.db.read() as session:
            contact = await session.get(Contact, contact_id)
        value = (contact.fields or {}).get(name) if contact is not None else None
        return str(value) if value else ""

    async def _deliver(self, row: _Claimed) -> dict[str, Any]:
        """Send one attempt; the values to record on success. Raises SendError."""
        if row.route == "channel":
            if self.channel is None:
                raise SendError("channel: no channel route in this process", permanent=True)
            provider_id = await self.channel(row.contact_id, row.text, row.dedup_key)
            return {"provider": "channel", "provider_id": provider_id}
        if row.route == "sms":
            try:
                phone = e164(await self._contact_field(row.contact_id, "phone"), self.settings.sms_region)
            except InvalidInput:
                raise SendError("sms: the contact has no valid phone number", permanent=True) from None
            parts = sms_parts(row.text)
            if parts > self.settings.sms_max_parts:
                raise SendError(
                    f"sms: the text takes {parts} SMS, more than {self.settings.sms_max_parts}", permanent=True
                )
            sender = self._round_sms
            if sender is None:
                raise SendError("sms: no SMS provider is configured (Settings → SMS)", permanent=True)
            result = await sender.send(phone, row.text)
            return {
                "provider": sender.name, "provider_id": result.provider_id, "parts": result.parts or parts,
                "address": mask_phone(phone), "polls": sender.can_poll and bool(result.provider_id),
            }  # fmt: skip
        try:
            address = email_address(await self._contact_field(row.contact_id, "email"))
        except InvalidInput:
            raise SendError("email: the contact has no valid e-mail address", permanent=True) from None
        subject = row.text.split("\n", 1)[0][:78]
        await self.email.send(Delivery(row.id, address, subject, row.text, "", f"otklik-reach-{row.id}"))
        return {"provider": "smtp", "provider_id": None, "address": mask_email(address)}

    async def _send(self, row: _Claimed, now: datetime) -> None:
        try:
            values = await asyncio.wait_for(self._deliver(row), timeout=self.settings.send_timeout_seconds)
        except SendError as exc:
            await self._failed(row, exc, now)
            return
        except (TimeoutError, OSError) as exc:
            await self._failed(row, SendError(f"{row.route}: {type(exc).__name__}: {exc}"), now)
            return
        except Exception as exc:
            log.exception("reach attempt %s: the %s route failed", row.id, row.route)
            await self._failed(row, SendError(f"{row.route}: {type(exc).__name__}: {exc}"), now)
            return
        polls = bool(values.pop("polls", False))
        values |= {"status": SENT, "sent_at": now, "lease_until": None, "worker": None, "error": None}
        if polls:
            values["check_at"] = now + timedelta(seconds=self.settings.reach_status_every)
        async with self.db.write() as session:
            await session.execute(update(ReachAttempt).where(*self._still_mine(row)).values(**values))

    async def _failed(self, row: _Claimed, exc: SendError, now: datetime) -> None:
        s = self.settings
        values: dict[str, Any] = {"lease_until": None, "worker": None, "error": str(exc)[:500]}
        give_up = False
        if exc.retry_after is not None:
            wait = min(max(exc.retry_after, 0.0), s.reach_backoff_max)
            values |= {"status": QUEUED, "due_at": now + timedelta(seconds=wait), "attempts": max(row.attempts - 1, 0)}
        elif exc.permanent or row.attempts >= s.reach_max_attempts:
            values["status"], give_up = FAILED, True
        else:
            wait = min(s.reach_backoff_base * 2 ** (row.attempts - 1), s.reach_backoff_max)
            values |= {"status": QUEUED, "due_at": now + timedelta(seconds=wait)}
        async with self.db.write() as session:
            result: Any = await session.execute(update(ReachAttempt).where(*self._still_mine(row)).values(**values))
            if give_up and result.rowcount:
                await next_route(session, row.contact_id, row.dedup_key, row.next_routes, row.text, now)
        log.info("reach attempt %s (%s): %s (%s)", row.id, row.route, values["status"], exc)

    async def _next_route(
        self, session: AsyncSession, contact_id: int, key: str, next_routes: str, text: str, now: datetime
    ) -> None:
        rest = tuple(r for r in next_routes.split(",") if r)
        if not rest:
            return
        row = _row(contact_id, key, rest[0], rest[1:], text, now)
        stmt = (
            _insert(session)(ReachAttempt).values(**row).on_conflict_do_nothing(index_elements=["dedup_key", "route"])
        )
        await session.execute(stmt)

    def _still_mine(self, row: _Claimed) -> tuple[Any, ...]:
        return (ReachAttempt.id == row.id, ReachAttempt.status == SENDING, ReachAttempt.worker == self.worker_id)

    async def recover_expired(self, now: datetime) -> int:
        """Attempts left `sending` by a dead worker: e-mail again (same Message-ID), SMS and channel `uncertain`."""
        async with self.db.write() as session:
            stale = (
                await session.execute(
                    select(ReachAttempt.id, ReachAttempt.route)
                    .where(ReachAttempt.status == SENDING, ReachAttempt.lease_until < now)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            expired = (ReachAttempt.status == SENDING, ReachAttempt.lease_until < now)
            again = [r.id for r in stale if r.route == "email"]
            unsure = [r.id for r in stale if r.route != "email"]
            if again:
                await session.execute(
                    update(ReachAttempt)
                    .where(*expired, ReachAttempt.id.in_(again))
                    .values(status=QUEUED, due_at=now, lease_until=None, worker=None)
                )
            if unsure:
                await session.execute(
                    update(ReachAttempt)
                    .where(*expired, ReachAttempt.id.in_(unsure))
                    .values(status=UNCERTAIN, lease_until=None, worker=None, error=LOST)
                )
        return len(stale)

    async def poll_status(self, now: datetime) -> int:
        """Ask the SMS provider about sent messages whose check is due: delivered, failed (next route), or later."""
        async with self.db.read() as session:
            rows = (
                (
                    await session.execute(
                        select(ReachAttempt)
                        .where(ReachAttempt.status == SENT, ReachAttempt.check_at <= now)
                        .order_by(ReachAttempt.check_at)
                        .limit(self.batch)
                    )
                )
                .scalars()
                .all()
            )
        if not rows:
            return 0
        sender = await self.sms_sender()
        if sender is None or not sender.can_poll:
            return 0
        wanted = [r for r in rows if r.provider == sender.name and r.provider_id]
        try:
            states = await sender.status([str(r.provider_id) for r in wanted])
        except SendError as exc:
            log.info("reach: delivery status not available now (%s)", exc)
            return 0
        final = {k: v for k, v in states.items() if v in (DELIVERED, UNDELIVERED)}
        await record_statuses(self.db, sender.name, final, now)
        give_up = now - timedelta(hours=self.settings.reach_status_hours)
        later = now + timedelta(seconds=self.settings.reach_status_every)
        async with self.db.write() as session:
            for r in rows:  # still on their way: ask again later; another provider's (settings changed): stop
                if str(r.provider_id) in final:
                    continue
                stop = r not in wanted or r.created_at < give_up
                await session.execute(
                    update(ReachAttempt)
                    .where(ReachAttempt.id == r.id, ReachAttempt.status == SENT)
                    .values(check_at=None if stop else later)
                )
        return len(wanted)

    async def aclose(self) -> None:
        if self._sms is not None:
            await self._sms.aclose()
            self._sms = None
        if self._fixed_sms is not None:
            await self._fixed_sms.aclose()
