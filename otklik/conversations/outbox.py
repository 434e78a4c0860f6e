"""The transactional outbox and its dispatcher.

A reply is written as a message row plus an outbox row in the same transaction as the state change.
The dispatcher claims rows (pending -> sending, with a lease), sends them through the channel account's
sender obeying its limits, and marks them sent. Per conversation only the oldest unfinished rows are
claimed, and by one worker at a time, so replies leave in order.

Crash safety: a row whose lease ran out while `sending` was maybe sent. If the channel takes an
idempotency key the row is sent again with the same key; otherwise it is marked `uncertain` and never
sent a second time (an operator sees it). Local channels (the web chat) deliver inside the claiming
transaction, so they are exactly-once by construction.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import RawTx, raw_write
from otklik.adapters.db.models import Contact, Conversation, Message, OutboxRow
from otklik.clock import utcnow
from otklik.conversations import events, guard, repo
from otklik.conversations.context import RuntimeContext
from otklik.conversations.ratelimit import RateLimiter
from otklik.conversations.sharedpace import DailyCapReached, make_pace
from otklik.conversations.statuses import MessageStatus, OutboxStatus
from otklik.core.channel import SendError
from otklik.core.messages import OutboundMessage
from otklik.platform.prometheus import OUTBOUND, RATE_LIMITED, SEND_SECONDS, timed

log = logging.getLogger(__name__)


def outbound_row(
    conversation_id: int, message: OutboundMessage, *, author: str, now: datetime, local: bool
) -> dict[str, Any]:
    """The `messages` row of an outbound message (`local`: delivered by the writing transaction itself)."""
    return {
        "conversation_id": conversation_id,
        "direction": "out",
        "author": author,
        "kind": "text",
        "text": message.text,
        "payload": message.to_dict(),
        "external_id": None,
        "status": MessageStatus.SENT if local else MessageStatus.QUEUED,
        "created_at": now,
        "sent_at": now if local else None,
    }


def outbox_row(
    conversation_id: int, message_id: int, account_id: int, recipient: str, *, now: datetime, local: bool
) -> dict[str, Any]:
    """The `outbox` row of an outbound message; a local one is written as sent once (`send_count` 1)."""
    return {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "channel_account_id": account_id,
        "recipient": recipient,
        "status": OutboxStatus.SENT if local else OutboxStatus.PENDING,
        "attempts": 1 if local else 0,
        "send_count": 1 if local else 0,
        "due_at": now,
        "created_at": now,
        "sent_at": now if local else None,
    }


async def enqueue(
    session: AsyncSession,
    conversation_id: int,
    account_id: int,
    recipient: str,
    message: OutboundMessage,
    *,
    author: str,
    now: datetime,
    local: bool = False,
    channel: str = "webchat",
) -> int:
    """Write an outbound message and its outbox row (caller's transaction). Returns the message id.

    `local`: the channel is our own database (the web chat): the message is delivered by this very
    transaction, so it is written as sent (exactly once by construction) and no dispatcher round is needed;
    its `message.sent` event (`channel`: the kind named in it) is emitted here, the others' by the dispatcher.
    """
    row = outbound_row(conversation_id, message, author=author, now=now, local=local)
    message_id = await repo.add_message(session, **row)
    await session.execute(
        insert(OutboxRow).values(**outbox_row(conversation_id, message_id, account_id, recipient, now=now, local=local))
    )
    if local:
        await events.emit_events(
            session, conversation_id, [events.sent(conversation_id, channel, message_id, message.text, now)], now
        )
    return message_id


def _by_conversation(rows: list[Claimed]) -> dict[int, list[Claimed]]:
    groups: dict[int, list[Claimed]] = defaultdict(list)
    for row in rows:
        groups[row.conversation_id].append(row)
    return groups


async def _first(*waits: Any, timeout: float) -> None:
    """Wait until the first of the awaitables is done, or `timeout`; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _marks(values: list[Any]) -> str:
    return ", ".join("?" * len(values))


# The dispatcher's plain SQL, built from the status enums once; a statement ending in "IN (" gets its
# placeholders and ")" per call.
_OUTBOX_SENT = (
    f"UPDATE outbox SET status = '{OutboxStatus.SENT}', sent_at = ?, lease_until = NULL,"
    " send_count = send_count + 1 WHERE id IN ("
)
_MESSAGES_SENT = f"UPDATE messages SET status = '{MessageStatus.SENT}', sent_at = ? WHERE id IN ("
_MESSAGE_SENT_AS = f"UPDATE messages SET status = '{MessageStatus.SENT}', sent_at = ?, external_id = ? WHERE id = ?"
_DUE_CONVERSATIONS = (
    f"SELECT conversation_id, MIN(id) AS first FROM outbox WHERE status = '{OutboxStatus.PENDING}' AND due_at <= ?"
    " GROUP BY conversation_id ORDER BY first LIMIT ?"
)
_SENDING_AMONG = (
    f"SELECT DISTINCT conversation_id FROM outbox WHERE status = '{OutboxStatus.SENDING}' AND conversation_id IN ("
)
_PENDING_ROWS = (
    "SELECT o.id, o.conversation_id, o.message_id, o.channel_account_id, o.recipient, o.attempts,"
    " o.due_at <= ?, m.payload FROM outbox o JOIN messages m ON m.id = o.message_id"
    f" WHERE o.status = '{OutboxStatus.PENDING}' AND o.conversation_id IN ("
)
_TO_SENDING = (
    f"UPDATE outbox SET status = '{OutboxStatus.SENDING}', lease_until = ?, worker = ?, attempts = attempts + 1"
    " WHERE id IN ("
)


async def _mark_sent_raw(tx: RawTx, rows: list[tuple[Claimed, str | None]], now: datetime, ctx: RuntimeContext) -> None:
    """Rows sent (or delivered by the claim itself): the outbox rows and their messages, and their
    `message.sent` events, in a hot-path transaction (`engine.raw_write`)."""
    at = tx.dt(now)
    ids = [row.id for row, _ in rows]
    await tx.execute(f"{_OUTBOX_SENT}{_marks(ids)})", [at, *ids])
    plain = [row.message_id for row, ext in rows if not ext]
    if plain:
        await tx.execute(f"{_MESSAGES_SENT}{_marks(plain)})", [at, *plain])
    for row, external_id in rows:
        if external_id:
            await tx.execute(_MESSAGE_SENT_AS, [at, external_id, row.message_id])
    writer = repo.RawWriter(tx)
    for conversation_id, group in _by_conversation([row for row, _ in rows]).items():
        found = [
            events.sent(
                conversation_id, ctx.kind_of(r.channel_account_id), r.message_id, str(r.payload.get("text") or ""), now
            )
            for r in group
        ]
        await events.emit_events(writer, conversation_id, found, now)


# still ours (sending, this worker, this claim's attempt): mark the provider call as started
_STARTED = (
    f"UPDATE outbox SET started_at = ? WHERE id = ? AND status = '{OutboxStatus.SENDING}' AND worker = ?"
    " AND attempts = ? AND started_at IS NULL RETURNING id"
)


class _LeaseLost(Exception):
    """The row's lease expired while it waited for its pace slot, and the recovery took it back."""


@dataclass(slots=True)
class Claimed:
    id: int
    conversation_id: int
    message_id: int
    channel_account_id: int
    recipient: str
    attempts: int
    payload: dict[str, Any]


class Dispatcher:
    """Sends outbox rows. Several dispatchers (processes) may run against one database."""

    def __init__(self, ctx: RuntimeContext, *, worker_id: str | None = None) -> None:
        self.ctx = ctx
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.settings = ctx.settings
        self.limiter = RateLimiter(
            shared=make_pace(ctx.db, ctx.settings.redis_url), margin=ctx.settings.send_pace_margin
        )
        self._next_recovery = 0.0
        self._recovery_due = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._sending_here: set[int] = set()  # conversations whose rows this process's `run` is sending
        self._skipped: set[int] = set()  # of those, the ones a claim passed over (they have newer rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; wakes on in-process commits and polls otherwise.

        Pipelined: a new claim does not wait for the sends of the previous one. That is safe for the same
        reason several dispatcher processes are: a conversation with a row `sending` is never claimed, so
        one conversation is sent by one task at a time, in order. At most `dispatch_concurrency`
        conversations are in flight."""
        in_flight = self._in_flight  # kept across restarts of this loop by the supervisor
        room = asyncio.Event()
        room.set()
        limit = self.settings.dispatch_concurrency

        def finished(conversation_id: int, task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            self._sending_here.discard(conversation_id)
            room.set()
            if conversation_id in self._skipped:  # a claim passed over its newer rows while it was sending
                self._skipped.discard(conversation_id)
                self.ctx.notifier.outbox.set()
            if not task.cancelled() and task.exception() is not None:
                log.error("outbox send task failed", exc_info=task.exception())

        try:
            while not stop.is_set():
                if len(in_flight) >= limit:
                    room.clear()
                    await _first(room.wait(), stop.wait(), timeout=self.settings.dispatch_poll_seconds)
                    continue
                self.ctx.notifier.outbox.clear()
                self._maybe_recover_due()
                if self._recovery_due:
                    self._recovery_due = False
                    await self.recover_expired()
                claimed = await self.claim(limit=limit - len(in_flight))
                if claimed:
                    for conversation_id, rows in _by_conversation(claimed).items():
                        task = asyncio.get_running_loop().create_task(self._send_group(rows))
                        in_flight.add(task)
                        self._sending_here.add(conversation_id)
                        task.add_done_callback(functools.partial(finished, conversation_id))
                    continue
                await _first(self.ctx.notifier.outbox.wait(), stop.wait(), timeout=self.settings.dispatch_poll_seconds)
        except asyncio.CancelledError:
            for task in list(in_flight):
                task.cancel()
            raise
        # stopping: let the sends in flight finish (they are bounded by `send_timeout_seconds`), so that a
        # clean shutdown leaves no row `sending` (which would become `uncertain`)
        if in_flight:
            try:
                await asyncio.gather(*in_flight, return_exceptions=True)
            except asyncio.CancelledError:
                for task in list(in_flight):
                    task.cancel()
                raise

    def _maybe_recover_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_recovery:
            self._next_recovery = now + min(5.0, self.settings.outbox_lease_seconds / 4)
            self._recovery_due = True

    async def run_once(self) -> int:
        """Recover expired leases (at most every few seconds), claim a batch, send it.
        Returns the number of rows handled."""
        self._maybe_recover_due()
        if self._recovery_due:
            self._recovery_due = False
            await self.recover_expired()
        claimed = await self.claim()
        if not claimed:
            return 0
        groups = _by_conversation(claimed)
        sem = asyncio.Semaphore(self.settings.dispatch_concurrency)

        async def send_group(rows: list[Claimed]) -> None:
            async with sem:
                await self._send_group(rows)

        await asyncio.gather(*(send_group(rows) for rows in groups.values()))
        return len(claimed)

    async def claim(self, limit: int | None = None) -> list[Claimed]:
        """Claim the due rows of up to `dispatch_batch` (and `limit`) conversations; local rows are
        delivered in the claim itself. Returns the rows to send."""
        batch = min(self.settings.dispatch_batch, limit or self.settings.dispatch_batch)
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.outbox_lease_seconds)
        delivered: list[int] = []
        async with raw_write(self.ctx.db) as tx:
            at = tx.dt(now)
            candidates = [int(r[0]) for r in await tx.fetch(_DUE_CONVERSATIONS, (at, batch))]
            if candidates and not tx.is_sqlite:
                # Lock first, then look for rows another worker is sending: checked after the lock, the
                # answer includes everything a worker that held the lock before us has committed.
                locked = await tx.fetch(
                    f"SELECT id FROM conversations WHERE id IN ({_marks(candidates)}) FOR UPDATE SKIP LOCKED",
                    candidates,
                )
                candidates = [int(r[0]) for r in locked]
            if not candidates:
                return []
            busy = await tx.fetch(f"{_SENDING_AMONG}{_marks(candidates)})", candidates)
            sending = {int(r[0]) for r in busy}
            self._skipped |= sending & self._sending_here
            conversations = [c for c in candidates if c not in sending]
            if not conversations:
                return []
            rows = await tx.fetch(
                f"{_PENDING_ROWS}{_marks(conversations)}) ORDER BY o.conversation_id, o.id", [at, *conversations]
            )
            claimed, blocked = [], set()
            for r in rows:
                if r[1] in blocked or not r[6]:
                    blocked.add(r[1])  # keep order: nothing after a row that must wait
                    continue
                claimed.append(Claimed(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4], int(r[5]), tx.loads(r[7])))
            local = [c for c in claimed if self.ctx.is_local(c.channel_account_id)]
            remote = [c for c in claimed if not self.ctx.is_local(c.channel_account_id)]
            if local:
                await _mark_sent_raw(tx, [(c, None) for c in local], now, self.ctx)
                delivered = sorted({c.conversation_id for c in local})
            if remote:
                ids = [c.id for c in remote]
                await tx.execute(f"{_TO_SENDING}{_marks(ids)})", [tx.dt(lease), self.worker_id, *ids])
        for conversation_id in delivered:
            self.ctx.notifier.delivered(conversation_id)
        return remote

    async def _send_group(self, rows: list[Claimed]) -> None:
        """Send one conversation's rows in order; stop at the first that must wait or fails."""
        for index, row in enumerate(rows):
            try:
                ok = await self._send_one(row)
            except _LeaseLost:
                return  # the recovery made this row and the ones after it pending (or uncertain) again
            if not ok:
                await self._release(rows[index + 1 :])
                return

    async def _send_one(self, row: Claimed) -> bool:
        sender = self.ctx.senders.get(row.channel_account_id)
        if sender is None:  # this process has no sender for the account (disabled, or not configured here)
            log.warning("no sender for channel account %s; outbox %s left pending", row.channel_account_id, row.id)
            await self._release([row])
            return False
        message = OutboundMessage.from_dict(row.payload)
        if guard.is_marketplace(self.ctx, row.channel_account_id):
            message = await self._guarded(row, message)
            row.payload = {**row.payload, "text": message.text}  # `message.sent` tells what really left
        channel = self.ctx.kind_of(row.channel_account_id)
        try:
            due = await self.limiter.wait(row.channel_account_id, row.recipient, sender.limits)
        except DailyCapReached as exc:  # not the message's fault: it waits for tomorrow's quota
            await self._failed(row, SendError(str(exc), retry_after=exc.retry_after))
            return False
        if not sender.supports_idempotency:  # from here on, a crash may have sent it: see recover_expired
            async with raw_write(self.ctx.db) as tx:
                mine = await tx.fetch(_STARTED, [tx.dt(utcnow()), row.id, self.worker_id, row.attempts + 1])
            if not mine:  # our lease ran out while we waited and the row was recovered: it is not ours to send
                log.warning("outbox %s: lease lost before sending; left to its new owner", row.id)
                raise _LeaseLost
            try:
                await self.limiter.recheck(row.channel_account_id, sender.limits, due)
            except DailyCapReached as exc:
                await self._failed(row, SendError(str(exc), retry_after=exc.retry_after))
                return False
        try:
            with timed(SEND_SECONDS, channel):
                result = await asyncio.wait_for(
                    sender.send(row.recipient, message, idempotency_key=f"otklik-outbox-{row.id}"),
                    timeout=self.settings.send_timeout_seconds,
                )
        except SendError as exc:
            await self._failed(row, exc)
            return False
        except (TimeoutError, OSError) as exc:
            await self._failed(row, SendError(f"{type(exc).__name__}: {exc}"))
            return False
        async with raw_write(self.ctx.db) as tx:
            await _mark_sent_raw(tx, [(row, result.external_id)], utcnow(), self.ctx)
        OUTBOUND.labels(channel, "sent").inc()
        self.ctx.notifier.delivered(row.conversation_id)
        return True

    async def _guarded(self, row: Claimed, message: OutboundMessage) -> OutboundMessage:
        """The last check before a marketplace chat: a row that reached the outbox by a path that did not
        screen it (a job, an import, a row written before the guard) leaves as the safe fallback, and the
        message row says so (the inbox shows what was really sent)."""
        verdict = guard.check_message(message)
        if verdict is None:
            return message
        safe = guard.fallback_message(message, guard.language_of(self.ctx, row.channel_account_id))
        now = utcnow()
        async with self.ctx.db.write() as session:
            await session.execute(
                update(Message).where(Message.id == row.message_id).values(text=safe.text, payload=safe.to_dict())
            )
            await repo.log_events(
                session,
                [
                    guard.log_row(
                        guard.BLOCKED, row.conversation_id, verdict, guard.visible_text(message),
                        author="outbox", actor="bot", now=now, sent=safe.text,
                    )
                ],
            )  # fmt: skip
        row.payload = safe.to_dict()
        return safe

    async def _failed(self, row: Claimed, exc: SendError) -> None:
        now = utcnow()
        channel = self.ctx.kind_of(row.channel_account_id)
        values: dict[str, Any] = {"lease_until": None, "last_error": str(exc)[:500], "worker": None, "started_at": None}
        if exc.held:
            values |= {"status": OutboxStatus.HELD, "attempts": max(row.attempts - 1, 0)}
        elif exc.retry_after is not None:
            values |= {
                "status": OutboxStatus.PENDING,
                "due_at": now + timedelta(seconds=exc.retry_after),
                "attempts": max(row.attempts - 1, 0),
            }  # a 429 is not the message's fault
        elif exc.permanent or row.attempts >= self.settings.send_max_attempts:
            values |= {"status": OutboxStatus.FAILED}
        else:
            backoff = min(self.settings.send_backoff_base * 2 ** (row.attempts - 1), 300.0)
            values |= {"status": OutboxStatus.PENDING, "due_at": now + timedelta(seconds=backoff)}
        async with self.ctx.db.write() as session:
            await session.execute(update(OutboxRow).where(OutboxRow.id == row.id).values(**values))
            if values["status"] == OutboxStatus.FAILED:
                await session.execute(
                    update(Message)
                    .where(Message.id == row.message_id)
                    .values(status=MessageStatus.FAILED, failed_at=now, error=str(exc)[:500])
                )
                failed = events.status(row.conversation_id, channel, row.message_id, None, "failed", str(exc))
                await events.emit_events(session, row.conversation_id, [failed], now)
            elif values["status"] == OutboxStatus.HELD:
                await session.execute(
                    update(Message)
                    .where(Message.id == row.message_id)
                    .values(status=MessageStatus.HELD, error=str(exc)[:500])
                )
            if exc.unreachable:
                contact_id = select(Conversation.contact_id).where(Conversation.id == row.conversation_id)
                await session.execute(
                    update(Contact).where(Contact.id == contact_id.scalar_subquery()).values(reachable=False)
                )
        if exc.retry_after is not None:
            RATE_LIMITED.labels(channel).inc()
        outcome = "rate_limited" if exc.retry_after is not None else "retry"
        OUTBOUND.labels(channel, "failed" if values["status"] == OutboxStatus.FAILED else outcome).inc()
        log.info("outbox %s: %s (%s)", row.id, values["status"], exc)

    async def _release(self, rows: list[Claimed]) -> None:
        if not rows:
            return
        async with self.ctx.db.write() as session:
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_([r.id for r in rows]), OutboxRow.status == OutboxStatus.SENDING)
                .values(
                    status=OutboxStatus.PENDING,
                    lease_until=None,
                    worker=None,
                    attempts=OutboxRow.attempts - 1,
                    started_at=None,
                )
            )

    async def recover_expired(self) -> int:
        """Rows left `sending` by a dead worker: resend if idempotent, else mark uncertain."""
        now = utcnow()
        async with self.ctx.db.write() as session:
            stale = (
                await session.execute(
                    select(OutboxRow.id, OutboxRow.channel_account_id, OutboxRow.started_at).where(
                        and_(OutboxRow.status == OutboxStatus.SENDING, OutboxRow.lease_until < now)
                    )
                )
            ).all()
            if not stale:
                return 0
            senders = {r.channel_account_id: self.ctx.senders.get(r.channel_account_id) for r in stale}
            # resent: with the same idempotency key, or never handed to the provider (no `started_at`)
            retry = [
                r.id
                for r in stale
                if getattr(senders[r.channel_account_id], "supports_idempotency", False)
                or (r.started_at is None and senders[r.channel_account_id] is not None)
            ]
            unsure = [r.id for r in stale if r.id not in set(retry) and senders[r.channel_account_id] is not None]
            if retry:
                await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(retry))
                    .values(status=OutboxStatus.PENDING, lease_until=None, worker=None, due_at=now)
                )
            if unsure:
                await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(unsure))
                    .values(
                        status=OutboxStatus.UNCERTAIN,
                        lease_until=None,
                        last_error="worker stopped while sending; not resent to avoid a duplicate",
                    )
                )
        log.warning("recovered %d expired outbox leases (%d resent, %d uncertain)", len(stale), len(retry), len(unsure))
        return len(stale)
