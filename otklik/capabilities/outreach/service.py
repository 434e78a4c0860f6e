"""Broadcasts: create, start / pause / resume / cancel, the runner's steps, progress.

Exactly once: the runner writes one delivery row per (broadcast, contact) in batches (the batch and the
broadcast's `cursor` commit together, and a unique constraint backs it), then turns pending deliveries into
kernel messages: the delivery becomes `queued` with its message id in the same transaction that writes the
message and its outbox row. A crash (SIGKILL) between two transactions repeats nothing and loses nothing;
the outbox dispatcher sends at the account's limit, shared by every worker (`conversations/sharedpace.py`).
Only a window of a few seconds of sends is in the outbox at a time, so pause and cancel take effect at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import Contact, ContactIdentity, Conversation, Message, OutboxRow
from otklik.capabilities.outreach import segments as seg
from otklik.capabilities.outreach.models import broadcasts, deliveries, segments
from otklik.clock import utcnow
from otklik.conversations import outbox
from otklik.conversations.context import RuntimeContext
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.core.messages import Button, OutboundMessage, TemplateRef
from otklik.platform.audit import audit
from otklik.platform.webhooks import emit

BATCH = 1000  # delivery rows written per transaction
ENQUEUE_BATCH = 200  # deliveries turned into outbox rows per transaction
MAX_TEXT = 4096
MAX_BUTTONS = 10
NAME = re.compile(r"^[\w .:/'()-]{1,120}$")
PARAM = re.compile(r"^\{([a-z_][a-z0-9_]{0,63})\}$")
REVOKED = re.compile(r"401|unauthori[sz]ed|token (was )?revoked|invalid token|OAuthException", re.I)

DRAFT, SCHEDULED, RUNNING, PAUSED, CANCELLED, DONE = "draft", "scheduled", "running", "paused", "cancelled", "done"
PENDING, QUEUED, SKIPPED = "pending", "queued", "skipped"


# --- input -------------------------------------------------------------------------------------------------


def parse_message(raw: Any) -> dict[str, Any]:
    """`{"text", "buttons": [{"title", "payload"}], "template": {"name", "language", "params"}}`: text or a
    template (or both: the template goes where the channel's 24-hour window is closed). A template parameter
    `{field}` is the contact's field of that name (`{display_name}` its name); a contact without it is skipped."""
    if not isinstance(raw, dict) or set(raw) - {"text", "buttons", "template"}:
        raise InvalidInput("message: an object with text, buttons and/or template")
    text = raw.get("text") or ""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise InvalidInput(f"message text: up to {MAX_TEXT} characters")
    buttons = raw.get("buttons") or []
    if not isinstance(buttons, list) or len(buttons) > MAX_BUTTONS:
        raise InvalidInput(f"buttons: up to {MAX_BUTTONS}")
    clean_buttons = []
    for i, b in enumerate(buttons):
        if not isinstance(b, dict) or not isinstance(b.get("title"), str) or not 0 < len(b["title"].strip()) <= 64:
            raise InvalidInput(f"button {i + 1}: a title of 1-64 characters")
        payload = b.get("payload") or b["title"]
        if not isinstance(payload, str) or len(payload) > 64:
            raise InvalidInput(f"button {i + 1}: a payload of up to 64 characters")
        clean_buttons.append({"title": b["title"].strip(), "payload": payload})
    out: dict[str, Any] = {"text": text.strip()}
    if clean_buttons:
        out["buttons"] = clean_buttons
    template = raw.get("template")
    if template is not None:
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            raise InvalidInput("template: {name, language, params}")
        name, language = template["name"].strip(), str(template.get("language") or "").strip()
        params = template.get("params") or []
        if not name or len(name) > 512 or len(language) > 15 or not isinstance(params, list) or len(params) > 20:
            raise InvalidInput("template: a name (1-512), a language (up to 15) and at most 20 params")
        if not all(isinstance(p, str) and len(p) <= 1000 for p in params):
            raise InvalidInput("template params: texts of up to 1000 characters")
        out["template"] = {"name": name, "language": language, "params": params}
    if not out["text"] and "template" not in out:
        raise InvalidInput("a broadcast needs a text or a template")
    return out


def render(message: dict[str, Any], contact: Any) -> OutboundMessage:
    """The message for one contact; `InvalidInput` names a template parameter the contact lacks."""
    template = None
    if "template" in message:
        values = []
        for param in message["template"]["params"]:
            found = PARAM.match(param)
            if found is None:
                values.append(param)
                continue
            key = found.group(1)
            value = contact.display_name if key == "display_name" else (contact.fields or {}).get(key)
            if value in (None, ""):
                raise InvalidInput(f"missing template parameter {key}")
            values.append(str(value)[:1000])
        template = TemplateRef(message["template"]["name"], message["template"]["language"], tuple(values))
    buttons = tuple(Button(b["title"], b["payload"]) for b in message.get("buttons") or ())
    return OutboundMessage(text=message.get("text") or "", buttons=buttons, template=template)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name[:64]!r}") from None


def parse_at(value: str, tz: str, now: datetime) -> datetime:
    """An ISO time (`2026-12-24T10:00`, in the seller's zone unless it names an offset), in the future."""
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"send at: {value[:40]!r} is not an ISO time like 2026-12-24T10:00") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone(tz))
    if at <= now:
        raise InvalidInput("the schedule is in the past: pick a later time")
    return at


def quiet_until(now: datetime, tz: str, start: int | None, end: int | None) -> datetime | None:
    """When quiet hours hold at `now` (local time in `tz`), the end of them (UTC); else None."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone(tz))
    hour = local.hour
    inside = start <= hour < end if start < end else (hour >= start or hour < end)
    if not inside:
        return None
    day = local.date() if hour < end else local.date() + timedelta(days=1)
    return datetime.combine(day, time(end), tzinfo=local.tzinfo).astimezone(now.tzinfo)


# --- segments ----------------------------------------------------------------------------------------------


async def save_segment(session: AsyncSession, name: str, conditions: Any, *, actor: str) -> int:
    name = (name or "").strip()
    if not NAME.match(name) or len(name) > 80:
        raise InvalidInput("segment name: 1-80 letters, digits, spaces or . : / ' ( ) -")
    clean = seg.parse(conditions)
    now = utcnow()
    found = await session.scalar(select(segments.c.id).where(segments.c.name == name))
    if found is not None:
        await session.execute(update(segments).where(segments.c.id == found).values(conditions=clean, updated_at=now))
        segment_id = int(found)
    else:
        segment_id = int(
            (await session.execute(insert(segments).values(
                name=name, conditions=clean, actor=actor[:120], created_at=now, updated_at=now
            ).returning(segments.c.id))).scalar_one()
        )  # fmt: skip
    audit(session, actor, "outreach.segment_saved", "segment", segment_id, {"name": name}, now=now)
    return segment_id


async def segment_by_name(session: AsyncSession, name: str) -> Any:
    row = (await session.execute(select(segments).where(segments.c.name == name.strip()))).first()
    if row is None:
        raise NotFound(f"no segment named {name[:80]!r}")
    return row


async def preview(
    session: AsyncSession, conditions: dict[str, Any] | None, *, account_id: int | None = None, sample: int = 10
) -> tuple[int, list[dict[str, Any]]]:
    """The live count and a sample (id, name, language) of an audience."""
    query = seg.audience_query(conditions, utcnow(), account_id).subquery()
    count = int(await session.scalar(select(func.count()).select_from(query)) or 0)
    rows = (
        await session.execute(
            select(Contact.id, Contact.display_name, Contact.language)
            .join(query, query.c.contact_id == Contact.id)
            .order_by(Contact.id.desc())
            .limit(sample)
        )
    ).all()
    return count, [{"id": r.id, "name": r.display_name, "language": r.language} for r in rows]


# --- broadcasts --------------------------------------------------------------------------------------------


async def create(
    session: AsyncSession,
    *,
    name: str,
    message: Any,
    segment: str | None = None,
    account_id: int | None = None,
    at: str | None = None,
    timezone: str = "UTC",
    quiet: tuple[int, int] | None = None,
    actor: str,
) -> int:
    name = (name or "").strip()
    if not NAME.match(name):
        raise InvalidInput("broadcast name: 1-120 letters, digits, spaces or . : / ' ( ) -")
    body = parse_message(message)
    zone(timezone)
    now = utcnow()
    scheduled = parse_at(at, timezone, now) if at else None
    if quiet is not None and not all(isinstance(h, int) and 0 <= h <= 23 for h in quiet):
        raise InvalidInput("quiet hours: two hours 0-23 (from, until)")
    segment_id = None
    if segment is not None:
        segment_id = int((await segment_by_name(session, segment)).id)
    values = {
        "name": name, "segment_id": segment_id, "channel_account_id": account_id, "message": body,
        "status": DRAFT, "reason": "", "scheduled_at": scheduled, "timezone": timezone,
        "quiet_start": quiet[0] if quiet else None, "quiet_end": quiet[1] if quiet else None,
        "cursor": 0, "materialized": 0, "total": 0, "actor": actor[:120], "created_at": now,
    }  # fmt: skip
    broadcast_id = int(
        (await session.execute(insert(broadcasts).values(**values).returning(broadcasts.c.id))).scalar_one()
    )
    audit(session, actor, "outreach.broadcast_created", "broadcast", broadcast_id, {"name": name}, now=now)
    return broadcast_id


async def get(session: AsyncSession, broadcast_id: int) -> Any:
    row = (await session.execute(select(broadcasts).where(broadcasts.c.id == broadcast_id))).first()
    if row is None:
        raise NotFound(f"no broadcast {broadcast_id}")
    return row


_MOVES = {
    "start": ({DRAFT}, None),
    "pause": ({RUNNING, SCHEDULED}, PAUSED),
    "resume": ({PAUSED}, RUNNING),
    "cancel": ({DRAFT, SCHEDULED, RUNNING, PAUSED}, CANCELLED),
}
ACTIONS = tuple(_MOVES)


def moves(status: str) -> list[str]:
    """The moves that apply to a broadcast in `status` (the admin shows only their buttons)."""
    return [action for action, (allowed, _target) in _MOVES.items() if status in allowed]


async def control(session: AsyncSession, broadcast_id: int, action: str, *, actor: str) -> str:
    """start | pause | resume | cancel; returns the new status. A move that does not apply (pausing twice,
    resuming a finished one) is a `Conflict` with the current status, and changes nothing."""
    row = await get(session, broadcast_id)
    allowed, target = _MOVES[action]
    if row.status not in allowed:
        raise Conflict(f"broadcast {broadcast_id} is {row.status}: cannot {action} it")
    now = utcnow()
    if action == "start":
        target = SCHEDULED if row.scheduled_at is not None and row.scheduled_at > now else RUNNING
    values: dict[str, Any] = {"status": target}
    if action == "resume":
        values["reason"] = ""
    if target == RUNNING and row.started_at is None:
        values["started_at"] = now
    if target == CANCELLED:
        values["finished_at"] = now
        await session.execute(
            update(deliveries)
            .where(deliveries.c.broadcast_id == broadcast_id, deliveries.c.status == PENDING)
            .values(status="cancelled")
        )
    # the status check in the WHERE makes a concurrent move lose cleanly
    done = await session.execute(
        update(broadcasts).where(broadcasts.c.id == broadcast_id, broadcasts.c.status == row.status).values(**values)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"broadcast {broadcast_id} changed meanwhile; try again")
    audit(session, actor, f"outreach.broadcast_{action}", "broadcast", broadcast_id, {"status": target}, now=now)
    return str(target)


# --- the runner's steps (each its own transaction) -----------------------------------------------------------


async def materialize(ctx: RuntimeContext, broadcast_id: int) -> int:
    """Write the next batch of delivery rows (contacts after the cursor); returns how many. The broadcast is
    `materialized` once a batch comes back short."""
    async with ctx.db.write() as session:
        row = await get(session, broadcast_id)
        if row.materialized or row.status != RUNNING:
            return 0
        conditions = None
        if row.segment_id is not None:
            conditions = await session.scalar(select(segments.c.conditions).where(segments.c.id == row.segment_id))
            if conditions is None:
                await _pause(session, broadcast_id, "its segment was deleted")
                return 0
        now = utcnow()
        query = (
            seg.audience_query(conditions, now, row.channel_account_id)
            .where(Conversation.contact_id > row.cursor)
            .limit(BATCH)
        )
        found = (await session.execute(query)).all()
        if found:
            await session.execute(
                insert(deliveries),
                [
                    {"broadcast_id": broadcast_id, "contact_id": r.contact_id, "conversation_id": r.conversation_id,
                     "status": PENDING, "created_at": now}
                    for r in found
                ],
            )  # fmt: skip
        values: dict[str, Any] = {"total": row.total + len(found)}
        if found:
            values["cursor"] = int(found[-1].contact_id)
        if len(found) < BATCH:
            values["materialized"] = 1
        await session.execute(update(broadcasts).where(broadcasts.c.id == broadcast_id).values(**values))
        return len(found)


async def _pause(session: AsyncSession, broadcast_id: int, reason: str) -> None:
    await session.execute(
        update(broadcasts)
        .where(broadcasts.c.id == broadcast_id, broadcasts.c.status == RUNNING)
        .values(status=PAUSED, reason=reason[:300])
    )
    audit(session, "system", "outreach.broadcast_paused", "broadcast", broadcast_id, {"reason": reason[:300]})


async def outstanding(session: AsyncSession, broadcast_id: int) -> int:
    """Queued deliveries whose outbox row is not finished yet (the window in flight)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(deliveries)
            .join(OutboxRow, OutboxRow.message_id == deliveries.c.message_id)
            .where(
                deliveries.c.broadcast_id == broadcast_id,
                deliveries.c.status == QUEUED,
                OutboxRow.status.in_(("pending", "sending")),
            )
        )
        or 0
    )


async def enqueue(ctx: RuntimeContext, broadcast_id: int, room: int) -> int:
    """Turn up to `room` pending deliveries into kernel messages (message + outbox row), each marked queued in
    the same transaction; a contact a template parameter is missing for is skipped with the reason."""
    if room <= 0:
        return 0
    async with ctx.db.write() as session:
        row = await get(session, broadcast_id)
        if row.status != RUNNING:
            return 0
        query = (
            select(deliveries.c.id, deliveries.c.conversation_id, Conversation.channel_account_id,
                   ContactIdentity.external_id, Contact)
            .join(Conversation, Conversation.id == deliveries.c.conversation_id)
            .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
            .join(Contact, Contact.id == deliveries.c.contact_id)
            .where(deliveries.c.broadcast_id == broadcast_id, deliveries.c.status == PENDING)
            .order_by(deliveries.c.id)
            .limit(min(room, ENQUEUE_BATCH))
        )  # fmt: skip
        if not ctx.db.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=deliveries)
        found = (await session.execute(query)).all()
        now = utcnow()
        for d in found:
            contact = d.Contact
            if not contact.subscribed or not contact.reachable:  # opted out since the rows were written
                await _mark(session, d.id, SKIPPED, reason="opted out" if not contact.subscribed else "unreachable")
                continue
            try:
                message = render(row.message, contact)
            except InvalidInput as exc:
                await _mark(session, d.id, SKIPPED, reason=exc.user_message)
                continue
            local = ctx.is_local(d.channel_account_id)
            message_id = await outbox.enqueue(
                session, d.conversation_id, d.channel_account_id, d.external_id, message,
                author="broadcast", now=now, local=local, channel=ctx.kind_of(d.channel_account_id),
            )  # fmt: skip
            await _mark(session, d.id, QUEUED, message_id=message_id, queued_at=now)
    if found:
        ctx.notifier.outbox.set()
    return len(found)


async def _mark(session: AsyncSession, delivery_id: int, status: str, **values: Any) -> None:
    await session.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(status=status, **values))


async def check_revoked(ctx: RuntimeContext, broadcast_id: int) -> str | None:
    """Pause the run when the channel refused the account's token (401): every further send would fail."""
    async with ctx.db.read() as session:
        error = await session.scalar(
            select(Message.error)
            .join(deliveries, deliveries.c.message_id == Message.id)
            .where(deliveries.c.broadcast_id == broadcast_id, Message.status == "failed")
            .order_by(Message.id.desc())
            .limit(20)
        )
    if not error or not REVOKED.search(error):
        return None
    reason = f"the channel refused the account's token ({error[:120]}): reconnect it in Settings, then resume"
    async with ctx.db.write() as session:
        await _pause(session, broadcast_id, reason)
    return reason


async def finish_if_done(ctx: RuntimeContext, broadcast_id: int) -> bool:
    async with ctx.db.write() as session:
        row = await get(session, broadcast_id)
        if row.status != RUNNING or not row.materialized:
            return False
        pending = await session.scalar(
            select(func.count())
            .select_from(deliveries)
            .where(deliveries.c.broadcast_id == broadcast_id, deliveries.c.status == PENDING)
        )
        if pending or await outstanding(session, broadcast_id):
            return False
        now = utcnow()
        marked = await session.execute(
            update(broadcasts)
            .where(broadcasts.c.id == broadcast_id, broadcasts.c.status == RUNNING)
            .values(status=DONE, finished_at=now)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            return False
        # in the transaction that marks it done: the event is recorded exactly when the broadcast finished
        counted = await progress(session, broadcast_id)
        data = {"broadcast_id": broadcast_id, "name": counted.name, "total": counted.total, "counts": counted.counts,
                "failed_by_reason": counted.failed_by_reason, "skipped_by_reason": counted.skipped_by_reason,
                "started_at": row.started_at, "finished_at": now}  # fmt: skip
        await emit(session, "broadcast.finished", data, now=now, subject=f"broadcast:{broadcast_id}")
    return True


async def activate_due(ctx: RuntimeContext) -> list[int]:
    """Scheduled broadcasts whose time came: running."""
    now = utcnow()
    async with ctx.db.write() as session:
        due = (
            await session.scalars(
                select(broadcasts.c.id).where(broadcasts.c.status == SCHEDULED, broadcasts.c.scheduled_at <= now)
            )
        ).all()
        if due:
            await session.execute(
                update(broadcasts)
                .where(broadcasts.c.id.in_(due), broadcasts.c.status == SCHEDULED)
                .values(status=RUNNING, started_at=now)
            )
    return [int(i) for i in due]


def window_for(ctx: RuntimeContext, account_id: int | None) -> int:
    """How many sends may wait in the outbox at once: ~3 seconds of the account's pace (at least 30)."""
    rates = [float(s.limits.per_second or 0) for a, s in ctx.senders.items() if account_id is None or a == account_id]
    rate = max(rates, default=0.0)
    return max(30, int(rate * 3))


async def step(ctx: RuntimeContext, broadcast_id: int) -> None:
    """One round of the runner for a running broadcast."""
    async with ctx.db.read() as session:
        row = await get(session, broadcast_id)
    if row.status != RUNNING:
        return
    wait = quiet_until(utcnow(), row.timezone, row.quiet_start, row.quiet_end)
    if not row.materialized:
        await materialize(ctx, broadcast_id)
    if await check_revoked(ctx, broadcast_id):
        return
    if wait is not None:
        return
    async with ctx.db.read() as session:
        busy = await outstanding(session, broadcast_id)
    await enqueue(ctx, broadcast_id, window_for(ctx, row.channel_account_id) - busy)
    await finish_if_done(ctx, broadcast_id)


async def running(ctx: RuntimeContext) -> list[int]:
    async with ctx.db.read() as session:
        return [
            int(i) for i in (await session.scalars(select(broadcasts.c.id).where(broadcasts.c.status == RUNNING))).all()
        ]


# --- progress ----------------------------------------------------------------------------------------------


@dataclass
class Progress:
    id: int
    name: str
    status: str
    reason: str
    total: int
    materialized: bool
    counts: dict[str, int] = field(default_factory=dict)
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    eta_seconds: float | None = None

    @property
    def done(self) -> int:
        c = self.counts
        return c.get("sent", 0) + c.get("delivered", 0) + c.get("read", 0) + c.get("failed", 0) + c.get("skipped", 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "status": self.status, "reason": self.reason, "total": self.total,
            "materialized": self.materialized, "counts": self.counts, "failed_by_reason": self.failed_by_reason,
            "skipped_by_reason": self.skipped_by_reason, "eta_seconds": self.eta_seconds, "done": self.done,
        }  # fmt: skip


async def progress(session: AsyncSession, broadcast_id: int) -> Progress:
    """Counts by state: pending (no message yet), queued / sent / delivered / read / failed / held (the
    kernel message's status), skipped, cancelled, replied (the contact wrote after it), opted_out (since)."""
    row = await get(session, broadcast_id)
    out = Progress(row.id, row.name, row.status, row.reason, row.total, bool(row.materialized))
    d = deliveries.c
    for status, n in (await session.execute(
        select(d.status, func.count()).where(d.broadcast_id == broadcast_id).group_by(d.status)
    )).all():  # fmt: skip
        if status != QUEUED:
            out.counts[status] = int(n)
    for status, n in (await session.execute(
        select(Message.status, func.count()).join(deliveries, d.message_id == Message.id)
        .where(d.broadcast_id == broadcast_id).group_by(Message.status)
    )).all():  # fmt: skip
        out.counts[status] = out.counts.get(status, 0) + int(n)
    for error, n in (await session.execute(
        select(Message.error, func.count()).join(deliveries, d.message_id == Message.id)
        .where(d.broadcast_id == broadcast_id, Message.status == "failed").group_by(Message.error)
    )).all():  # fmt: skip
        out.failed_by_reason[str(error or "unknown")[:200]] = int(n)
    for reason, n in (await session.execute(
        select(d.reason, func.count()).where(d.broadcast_id == broadcast_id, d.status == SKIPPED).group_by(d.reason)
    )).all():  # fmt: skip
        out.skipped_by_reason[str(reason or "")] = int(n)
    reply = Message.__table__.alias("reply")
    out.counts["replied"] = int(
        await session.scalar(
            select(func.count()).select_from(deliveries).where(
                d.broadcast_id == broadcast_id, d.message_id.is_not(None),
                select(reply.c.id).where(
                    reply.c.conversation_id == d.conversation_id, reply.c.direction == "in", reply.c.id > d.message_id
                ).exists(),
            )
        ) or 0
    )  # fmt: skip
    out.counts["opted_out"] = int(
        await session.scalar(
            select(func.count()).select_from(deliveries).join(Contact, Contact.id == d.contact_id)
            .where(d.broadcast_id == broadcast_id, Contact.subscribed.is_(False))
        ) or 0
    )  # fmt: skip
    sent = out.counts.get("sent", 0) + out.counts.get("delivered", 0) + out.counts.get("read", 0)
    remaining = out.total - out.done - out.counts.get("cancelled", 0)
    if row.status == RUNNING and row.started_at is not None and sent and remaining > 0:
        rate = sent / max((utcnow() - row.started_at).total_seconds(), 1.0)
        out.eta_seconds = round(remaining / rate, 1)
    return out


async def list_broadcasts(session: AsyncSession, limit: int = 100) -> list[Any]:
    return list((await session.execute(select(broadcasts).order_by(broadcasts.c.id.desc()).limit(limit))).all())
