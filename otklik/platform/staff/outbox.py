"""Staff notifications: written in the caller's transaction, delivered by the worker's `staff-notify` job.

`notify(session, members, StaffMessage(...))` adds one `staff_notifications` row per member and transport
(e-mail when the member has an address, Telegram when a chat id) in the transaction that creates the order
or booking: either both commit or neither. `dedupe` makes the call idempotent (an action re-run after a
crash writes nothing new).

`StaffNotifier` claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers) with a
lease, sends each through its transport and records the outcome: sent; a 429 → due again after
`retry_after` (the attempt is not counted); a transient error (SMTP down, Telegram 5xx, a timeout) → due
again after `staff_notify_backoff_base · 2^(attempt-1)` s, at most `staff_notify_backoff_max`; a
permanent one, or `staff_notify_max_attempts` reached → `failed` (visible on the staff page, with
"resend"). A row whose lease ran out while `sending` (the worker died mid-send) is sent again when its
transport is idempotent (e-mail: the same Message-ID), otherwise marked `uncertain` and never repeated.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import StaffNotification
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.core.channel import SendError
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.audit import audit
from otklik.platform.staff.members import Member, members_of
from otklik.platform.staff.transports import Delivery, StaffTransport, printable

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, UNCERTAIN = "pending", "sending", "sent", "failed", "uncertain"
MAX_SUBJECT, MAX_TEXT, MAX_LINK = 200, 20_000, 2000


@dataclass(frozen=True, slots=True)
class StaffMessage:
    """What staff are told: a subject, a plain-text summary and a link to the admin page about it (a path
    such as `/admin/sales/orders/12`, made absolute with `OTKLIK_PUBLIC_URL` when sent, or a full URL)."""

    subject: str
    text: str
    link: str = ""
    about: tuple[str, str] | None = None  # ("order", "A-0012"): what it is about, for the admin's list


def check_link(link: str) -> str:
    link = (link or "").strip()
    if not link:
        return ""
    absolute = link.startswith(("https://", "http://"))
    relative = link.startswith("/") and not link.startswith("//")
    if len(link) > MAX_LINK or not (absolute or relative) or any(c.isspace() or ord(c) < 32 for c in link):
        raise InvalidInput("link: a path in the admin (/admin/…) or an http(s) URL, without spaces")
    return link


def absolute_link(link: str, public_url: str | None) -> str:
    if link.startswith("/") and public_url:
        return public_url.rstrip("/") + link
    return link


def _rows(members: Iterable[Member], message: StaffMessage, dedupe: str | None, now: datetime) -> list[dict[str, Any]]:
    subject = " ".join(printable(message.subject or "", keep_newlines=False).split())[:MAX_SUBJECT]
    if not subject:
        raise InvalidInput("subject: required")
    link = check_link(message.link)
    kind, about = message.about or ("", "")
    rows = []
    for member in members:
        for transport, address in (("email", member.email), ("telegram", member.telegram_chat_id)):
            if not address:
                continue
            rows.append({
                "staff_id": member.id, "transport": transport, "address": address, "subject": subject,
                "body": printable(message.text or "")[:MAX_TEXT], "link": link, "subject_type": kind[:32],
                "subject_id": str(about)[:64], "status": PENDING, "attempts": 0, "due_at": now, "created_at": now,
                "dedupe_key": f"{dedupe}|{member.id}|{transport}"[:240] if dedupe else None,
            })  # fmt: skip
    return rows


def notification_rows(
    members: Iterable[Member], message: StaffMessage, *, dedupe: str | None = None, now: datetime
) -> list[dict[str, Any]]:
    """The `staff_notifications` rows `notify` writes, for a caller that writes them itself (a quick flow
    action, on the step's transaction)."""
    return _rows(members, message, dedupe, now)


async def notify(
    session: AsyncSession,
    members: Iterable[Member],
    message: StaffMessage,
    *,
    dedupe: str | None = None,
    now: datetime | None = None,
) -> int:
    """Queue `message` for each member on each of their transports, in the caller's transaction. With
    `dedupe` (e.g. `"order.confirmed:A-0012"`) a second call for the same member and transport writes
    nothing. Returns how many rows were written."""
    rows = _rows(members, message, dedupe, now or utcnow())
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    written = 0
    for row in rows:
        stmt = insert(StaffNotification).values(**row)
        if dedupe:
            stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
        result: Any = await session.execute(stmt)
        written += max(int(result.rowcount or 0), 0)
    return written


async def notify_pack(
    session: AsyncSession, pack: str, message: StaffMessage, *, dedupe: str | None = None, now: datetime | None = None
) -> int:
    """Queue `message` for every active member serving `pack`."""
    return await notify(session, await members_of(session, pack), message, dedupe=dedupe, now=now)


@dataclass(slots=True)
class _Claimed:
    delivery: Delivery
    transport: str
    attempts: int


class StaffNotifier:
    """The delivery worker (the `staff-notify` job of `otklik run --role worker|all`). Several may share
    one PostgreSQL database."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        transports: dict[str, StaffTransport],
        *,
        worker_id: str | None = None,
        batch: int = 50,
        concurrency: int = 8,
    ) -> None:
        self.db, self.settings, self.transports = db, settings, transports
        # one id per notifier (two in one process must not take each other's outcome for their own)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:staff:{secrets.token_hex(4)}"
        self.batch, self.concurrency = batch, concurrency
        self.wakeup = asyncio.Event()

    def wake(self) -> None:
        """Look for new rows now (in this process), not at the next poll."""
        self.wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wakeup.clear()
            if await self.run_once():
                continue
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wakeup.wait())]
            try:
                await asyncio.wait(
                    waits, timeout=self.settings.staff_notify_poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in waits:
                    task.cancel()

    async def run_once(self, now: datetime | None = None) -> int:
        """Recover expired leases, claim due rows, send them. Returns how many were claimed."""
        await self.recover_expired(now)
        claimed = await self.claim(now)
        if claimed:
            gate = asyncio.Semaphore(self.concurrency)

            async def one(row: _Claimed) -> None:
                async with gate:
                    await self._send(row)

            await asyncio.gather(*(one(row) for row in claimed))
        return len(claimed)

    async def claim(self, now: datetime | None = None) -> list[_Claimed]:
        now = now or utcnow()
        lease = now + timedelta(seconds=self.settings.outbox_lease_seconds + self.settings.send_timeout_seconds)
        async with self.db.write() as session:
            rows = (
                (
                    await session.execute(
                        select(StaffNotification)
                        .where(
                            StaffNotification.status == PENDING,
                            StaffNotification.due_at <= now,
                            StaffNotification.transport.in_(sorted(self.transports)),
                        )
                        .order_by(StaffNotification.due_at, StaffNotification.id)
                        .limit(self.batch)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            if not rows:
                return []
            public = self.settings.public_url
            claimed = [
                _Claimed(
                    Delivery(
                        int(r.id), r.address, r.subject, r.body, absolute_link(r.link, public), f"otklik-staff-{r.id}"
                    ),
                    r.transport,
                    int(r.attempts) + 1,
                )
                for r in rows
            ]
            await session.execute(
                update(StaffNotification)
                .where(StaffNotification.id.in_([r.id for r in rows]))
                .values(
                    status=SENDING, lease_until=lease, worker=self.worker_id, attempts=StaffNotification.attempts + 1
                )
                .execution_options(synchronize_session=False)
            )
            return claimed

    async def _send(self, row: _Claimed) -> None:
        transport = self.transports[row.transport]
        try:
            await asyncio.wait_for(transport.send(row.delivery), timeout=self.settings.send_timeout_seconds)
        except SendError as exc:
            await self._failed(row, exc)
            return
        except (TimeoutError, OSError) as exc:
            await self._failed(row, SendError(f"{row.transport}: {type(exc).__name__}: {exc}"))
            return
        except Exception as exc:  # a bug in a transport must not leave the row `sending` forever
            log.exception("staff notification %s: the %s transport failed", row.delivery.id, row.transport)
            await self._failed(row, SendError(f"{row.transport}: {type(exc).__name__}: {exc}"))
            return
        async with self.db.write() as session:
            await session.execute(
                update(StaffNotification)
                .where(*self._still_mine(row))
                .values(status=SENT, sent_at=utcnow(), lease_until=None, worker=None, last_error=None)
            )

    async def _failed(self, row: _Claimed, exc: SendError) -> None:
        now = utcnow()
        s = self.settings
        values: dict[str, Any] = {"lease_until": None, "worker": None, "last_error": str(exc)[:500]}
        if exc.retry_after is not None:
            wait = min(max(exc.retry_after, 0.0), s.staff_notify_backoff_max)
            values |= {"status": PENDING, "due_at": now + timedelta(seconds=wait), "attempts": max(row.attempts - 1, 0)}
        elif exc.permanent or row.attempts >= s.staff_notify_max_attempts:
            values |= {"status": FAILED}
        else:
            wait = min(s.staff_notify_backoff_base * 2 ** (row.attempts - 1), s.staff_notify_backoff_max)
            values |= {"status": PENDING, "due_at": now + timedelta(seconds=wait)}
        async with self.db.write() as session:
            await session.execute(update(StaffNotification).where(*self._still_mine(row)).values(**values))
        log.info("staff notification %s: %s (%s)", row.delivery.id, values["status"], exc)

    def _still_mine(self, row: _Claimed) -> tuple[Any, ...]:
        """The outcome is recorded only while the claim is this notifier's: a row recovered and claimed again by
        another worker meanwhile is not touched."""
        return (
            StaffNotification.id == row.delivery.id,
            StaffNotification.status == SENDING,
            StaffNotification.worker == self.worker_id,
        )

    async def recover_expired(self, now: datetime | None = None) -> int:
        """Rows left `sending` by a dead worker: sent again on an idempotent transport, else `uncertain`."""
        now = now or utcnow()
        async with self.db.write() as session:
            stale = (
                await session.execute(
                    select(StaffNotification.id, StaffNotification.transport)
                    .where(StaffNotification.status == SENDING, StaffNotification.lease_until < now)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            # re-checked in the UPDATEs: a row claimed again since the SELECT is left alone
            expired = (StaffNotification.status == SENDING, StaffNotification.lease_until < now)
            again = [r.id for r in stale if getattr(self.transports.get(r.transport), "idempotent", False)]
            unsure = [r.id for r in stale if r.id not in set(again)]
            if again:
                await session.execute(
                    update(StaffNotification)
                    .where(*expired, StaffNotification.id.in_(again))
                    .values(status=PENDING, due_at=now, lease_until=None, worker=None)
                )
            if unsure:
                await session.execute(
                    update(StaffNotification)
                    .where(*expired, StaffNotification.id.in_(unsure))
                    .values(
                        status=UNCERTAIN,
                        lease_until=None,
                        worker=None,
                        last_error="the worker stopped while sending; not sent again to avoid a duplicate",
                    )
                )
        return len(stale)

    async def aclose(self) -> None:
        for transport in self.transports.values():
            await transport.aclose()


async def resend(db: Database, notification_id: int, *, actor: str) -> None:
    """A failed or uncertain notification goes out again (the staff page's "resend")."""
    now = utcnow()
    async with db.write() as session:
        row = await session.get(StaffNotification, notification_id)
        if row is None:
            raise NotFound("no such notification")
        if row.status not in (FAILED, UNCERTAIN):
            raise InvalidInput(f"the notification is {row.status}; only failed or uncertain ones are resent")
        row.status, row.due_at, row.attempts, row.lease_until, row.worker = PENDING, now, 0, None, None
        audit(session, actor, "staff.notification_resent", "staff_notification", row.id, {"transport": row.transport})


async def recent(db: Database, limit: int = 50) -> list[StaffNotification]:
    async with db.read() as session:
        query = select(StaffNotification).order_by(StaffNotification.id.desc()).limit(limit)
        return list((await session.execute(query)).scalars().all())
