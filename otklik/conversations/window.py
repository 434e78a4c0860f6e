"""The customer-service window and message templates of channels that have them (WhatsApp Cloud API; Zenvia
and Instagram Direct reuse it): channel-neutral, so a second provider kind plugs into the same rules.

- **The window.** A business may send free-form messages (text, media, buttons) to a customer for 24 hours
  after the customer's last message to that account; outside it only an approved template goes. Ingest records
  the customer's last message time per (channel account, recipient) in `customer_windows`
  (`note_inbound`, in the step's transaction, with the provider's own timestamp: a message Meta redelivers
  days later does not reopen the window).
- **Templates** are synced from the provider into `message_templates` (`store_templates`) and listed in the
  admin. `WindowGuard.plan` decides, at send time, what an outbound message becomes: itself (window open),
  the template the flow named for the case (`OutboundMessage.template`, or the account's `window_template`),
  or **held** (`SendError(held=True)`: the outbox row is kept `held` and released by the buyer's next
  message, never dropped and never sent to be refused with 131047).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, bindparam, delete, insert, literal_column, select, update

from otklik.adapters.db.engine import Database, raw_read
from otklik.adapters.db.models import CustomerWindow, Message, MessageTemplate, OutboxRow
from otklik.conversations.statuses import MessageStatus, OutboxStatus
from otklik.core.channel import SendError
from otklik.core.messages import OutboundMessage, TemplateRef

WINDOW = timedelta(hours=24)

_RAISE = (
    update(CustomerWindow)
    .where(
        CustomerWindow.channel_account_id == bindparam("a"),
        CustomerWindow.recipient == bindparam("r"),
        CustomerWindow.last_inbound_at < bindparam("at"),
    )
    .values(last_inbound_at=bindparam("at"))
)
_EXISTS = select(CustomerWindow.last_inbound_at).where(
    CustomerWindow.channel_account_id == bindparam("a"), CustomerWindow.recipient == bindparam("r")
)
_ADD = insert(CustomerWindow).values(
    channel_account_id=bindparam("a"), recipient=bindparam("r"), last_inbound_at=bindparam("at")
)
_HELD_ROWS = select(OutboxRow.id, OutboxRow.message_id).where(
    OutboxRow.conversation_id == bindparam("c"), OutboxRow.status == OutboxStatus.HELD
)


async def note_inbound(writer: Any, *, account_id: int, recipient: str, conversation_id: int, at: datetime) -> int:
    """The customer wrote at `at` (the provider's time, never later than our clock): the window of (account,
    recipient) runs from it, unless a later message already set it. The conversation's held outbox rows become
    pending again (in order, due now). Runs in the step's transaction (`writer`: a `repo` writer, whose
    conversation lock serialises it). Returns the number of rows released."""
    params = {"a": account_id, "r": recipient, "at": at}
    if await writer.execute(_RAISE, params) == 0 and not await writer.fetch(_EXISTS, params):
        await writer.execute(_ADD, params)
    held = await writer.fetch(_HELD_ROWS, {"c": conversation_id})
    if not held:
        return 0
    outbox_ids = sorted(int(r[0]) for r in held)
    message_ids = sorted(int(r[1]) for r in held)
    await writer.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_([literal_column(str(i)) for i in outbox_ids]), OutboxRow.status == OutboxStatus.HELD)
        .values(status=OutboxStatus.PENDING, due_at=at, last_error=None)
    )
    await writer.execute(
        update(Message)
        .where(Message.id.in_([literal_column(str(i)) for i in message_ids]), Message.status == MessageStatus.HELD)
        .values(status=MessageStatus.QUEUED, error=None)
    )
    return len(outbox_ids)


async def last_inbound(db: Database, account_id: int, recipient: str) -> datetime | None:
    """The customer's last message time (the hot path's plain read: one per send)."""
    async with raw_read(db) as tx:
        rows = await tx.core_fetch(_EXISTS, {"a": account_id, "r": recipient})
    return rows[0][0] if rows else None


def is_open(last: datetime | None, now: datetime, margin: timedelta = timedelta(0)) -> bool:
    """Within 24 h of the customer's last message, less `margin` (a message queued at 23:59:59 must not
    reach Meta after the window closed)."""
    return last is not None and now < last + WINDOW - margin


# --- templates -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    """One template as a provider lists it."""

    name: str
    language: str
    category: str = ""
    status: str = ""
    params: int = 0
    body: str = ""
    provider_id: str = ""

    @property
    def approved(self) -> bool:
        return self.status.upper() == "APPROVED"


async def store_templates(db: Database, account_id: int, templates: Iterable[TemplateInfo], now: datetime) -> int:
    """Replace the account's templates with the provider's list (one transaction). Returns how many."""
    rows = {(t.name, t.language): t for t in templates}
    async with db.write() as session:
        await session.execute(delete(MessageTemplate).where(MessageTemplate.channel_account_id == account_id))
        if rows:
            await session.execute(
                insert(MessageTemplate),
                [
                    {
                        "channel_account_id": account_id,
                        "name": t.name[:512],
                        "language": t.language[:15],
                        "category": t.category[:32],
                        "status": t.status[:32],
                        "params": t.params,
                        "body": t.body[:4096],
                        "provider_id": t.provider_id[:64],
                        "synced_at": now,
                    }
                    for t in rows.values()
                ],
            )
    return len(rows)


async def templates_of(db: Database, account_id: int) -> list[TemplateInfo]:
    async with db.read() as session:
        rows = (
            await session.execute(
                select(MessageTemplate)
                .where(MessageTemplate.channel_account_id == account_id)
                .order_by(MessageTemplate.name, MessageTemplate.language)
                .limit(2000)
            )
        ).scalars()
        return [TemplateInfo(r.name, r.language, r.category, r.status, r.params, r.body, r.provider_id) for r in rows]


async def find_template(db: Database, account_id: int, name: str, language: str) -> TemplateInfo | None:
    """The template of that name in that language, else (a pack language "es" vs Meta's "es_AR") one of that
    name whose language starts with it."""
    async with db.read() as session:
        rows = (
            await session.execute(
                select(MessageTemplate).where(
                    and_(MessageTemplate.channel_account_id == account_id, MessageTemplate.name == name)
                )
            )
        ).scalars()
        found = [TemplateInfo(r.name, r.language, r.category, r.status, r.params, r.body, r.provider_id) for r in rows]
    exact = [t for t in found if t.language == language]
    if exact:
        return exact[0]
    base = language.split("_")[0].lower()
    near = sorted((t for t in found if t.language.split("_")[0].lower() == base), key=lambda t: t.language)
    return near[0] if near else None


# --- deciding at send time -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    how: Literal["free", "template"]
    template: TemplateRef | None = None
    info: TemplateInfo | None = None


class WindowGuard:
    """What a message to `recipient` may become now. `fallback`: the account's template for "the window is
    closed" (config `window_template`: {"name", "language", "params"}), used when the message names none."""

    def __init__(
        self, db: Database, account_id: int, *, fallback: TemplateRef | None = None, margin: float = 60.0
    ) -> None:
        self.db = db
        self.account_id = account_id
        self.fallback = fallback
        self.margin = timedelta(seconds=margin)

    async def plan(self, recipient: str, message: OutboundMessage, now: datetime) -> Plan:
        """`free` inside the window; else the named template (checked: known, approved, the right number of
        parameters); else `SendError(held=True)`. A template-only message is always a template."""
        if not message.template_only:
            last = await last_inbound(self.db, self.account_id, recipient)
            if is_open(last, now, self.margin):
                return Plan("free")
        ref = message.template or self.fallback
        if ref is None:
            raise SendError(
                "held: outside the 24-hour customer-service window and no template is named for this message;"
                " it goes when the customer writes again (or send an approved template)",
                held=True,
            )
        info = await find_template(self.db, self.account_id, ref.name, ref.language)
        if info is None:
            raise SendError(
                f"held: the template {ref.name!r} ({ref.language}) is not among the synced templates; sync them"
                " in Settings or fix the flow",
                held=True,
            )
        if not info.approved:
            raise SendError(f"held: the template {ref.name!r} is {info.status or 'not approved'}", held=True)
        if len(ref.params) != info.params:
            raise SendError(
                f"the template {ref.name!r} takes {info.params} parameter(s), the flow gave {len(ref.params)}",
                permanent=True,
            )
        return Plan("template", TemplateRef(info.name, info.language, ref.params), info)


def template_from_config(config: Mapping[str, Any]) -> TemplateRef | None:
    """The account's `window_template` (name, language, params) or None; malformed → None."""
    raw = config.get("window_template")
    if not isinstance(raw, dict) or not raw.get("name"):
        return None
    try:
        return TemplateRef.from_dict(raw)
    except (KeyError, TypeError, ValueError):
        return None
