"""The operator inbox, read side: conversation lists by cursor, a conversation's history and contact card.

Every query is bounded: lists read one page (`PAGE` rows) along an index, counts are taken over the
waiting set only and capped, text search looks at the newest `SEARCH_WINDOW` messages. The write side
(reply, notes, tags, assign, close, return to bot) is `otklik.capabilities.inbox.service`.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import String, cast, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from otklik.adapters.db.models import (
    ChannelAccount,
    Contact,
    ContactIdentity,
    ContactTag,
    Conversation,
    EventLog,
    Message,
    User,
)
from otklik.conversations.context import RuntimeContext
from otklik.core.conversation import Status
from otklik.core.errors import InvalidInput, NotFound

PAGE = 50
HISTORY_PAGE = 50
WAITING_CAP = 999  # the waiting tab shows "999+" beyond this
MINE_CAP = 99
SEARCH_WINDOW = 100_000  # text search reads the newest messages only
SEARCH_HITS = 1000  # ... and stops after this many matching messages
MAX_QUERY = 200


class View(StrEnum):
    WAITING = "waiting"
    MINE = "mine"
    ALL = "all"
    CLOSED = "closed"


STATUSES = tuple(Status)  # bot, waiting_operator, operator, closed


@dataclass(frozen=True, slots=True)
class ListFilter:
    """What the operator asked the list for; `cursor` is the opaque `next_cursor` of the previous page."""

    view: View = View.WAITING
    account_id: int | None = None
    tag: str | None = None
    status: str | None = None
    q: str | None = None
    cursor: str | None = None

    def query(self, *, cursor: str | None = None) -> dict[str, str]:
        """The filter as URL query parameters (empty ones left out)."""
        values = {
            "view": str(self.view),
            "account": str(self.account_id or ""),
            "tag": self.tag or "",
            "status": self.status or "",
            "q": self.q or "",
            "cursor": cursor or "",
        }
        return {k: v for k, v in values.items() if v}


@dataclass(slots=True)
class ListItem:
    id: int
    contact_id: int
    contact_name: str
    channel_account_id: int
    account_name: str
    account_kind: str
    status: str
    priority: bool
    assigned_to: int | None
    assignee: str
    waiting_since: datetime | None
    last_message_at: datetime | None
    unread: int
    last_text: str


@dataclass(slots=True)
class ListPage:
    items: list[ListItem]
    next_cursor: str | None


@dataclass(slots=True)
class Counters:
    waiting: int
    waiting_capped: bool
    priority: int
    mine_unread: int
    mine_capped: bool


@dataclass(slots=True)
class MessageItem:
    id: int
    direction: str
    author: str
    kind: str
    text: str
    status: str
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    buttons: list[str] = field(default_factory=list)
    pressed: str | None = None  # the title (or payload) of the button the buyer pressed
    attachments: list[dict[str, Any]] = field(default_factory=list)
    by: str = ""  # the operator's name for operator messages and notes


@dataclass(slots=True)
class Identity:
    account_name: str
    account_kind: str
    external_id: str


@dataclass(slots=True)
class ContactCard:
    id: int
    name: str
    language: str | None
    subscribed: bool
    reachable: bool
    created_at: datetime
    last_seen_at: datetime | None
    identities: list[Identity]
    tags: list[str]
    fields: dict[str, Any]


@dataclass(slots=True)
class ConversationView:
    id: int
    status: str
    priority: bool
    flow: str | None
    node: str | None
    channel_account_id: int
    account_name: str
    account_kind: str
    assigned_to: int | None
    assignee: str
    unread: int
    waiting_since: datetime | None
    created_at: datetime
    closed_at: datetime | None
    state_vars: dict[str, Any]
    contact: ContactCard
    messages: list[MessageItem]
    has_older: bool


# --- cursors -----------------------------------------------------------------------------------


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, datetime) else p for p in parts], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    """The parts of a cursor; a forged or stale one is `InvalidInput` (the page answers 422)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidInput("bad cursor; open the list again") from None
    if not isinstance(parts, list) or len(parts) != size:
        raise InvalidInput("bad cursor; open the list again")
    return parts


def _cursor_time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput("bad cursor; open the list again") from None
    if moment.tzinfo is None:
        raise InvalidInput("bad cursor; open the list again")
    return moment


def _cursor_id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:  # a 64-bit id
        raise InvalidInput("bad cursor; open the list again")
    return value


# --- the list ----------------------------------------------------------------------------------

_LIST_COLUMNS = (
    Conversation.id,
    Conversation.contact_id,
    Conversation.channel_account_id,
    Conversation.status,
    Conversation.priority,
    Conversation.assigned_to,
    Conversation.waiting_since,
    Conversation.last_message_at,
    Conversation.unread,
    Conversation.last_text,
)


async def list_conversations(
    session: AsyncSession, ctx: RuntimeContext, flt: ListFilter, *, user_id: int, limit: int | None = None
) -> ListPage:
    """One page of a view, newest activity first (the waiting view: priority first, then oldest wait)."""
    limit = limit or PAGE
    conditions = await _conditions(session, flt, user_id)
    if flt.view == View.WAITING:
        rows, next_cursor = await _waiting_page(session, conditions, flt.cursor, limit)
    else:
        rows, next_cursor = await _recent_page(session, conditions, flt.cursor, limit)
    return ListPage(await _items(session, ctx, rows), next_cursor)


async def _conditions(session: AsyncSession, flt: ListFilter, user_id: int) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if flt.view == View.WAITING:
        conditions.append(Conversation.status == Status.WAITING_OPERATOR)
    elif flt.view == View.CLOSED:
        conditions.append(Conversation.status == Status.CLOSED)
    elif flt.view == View.MINE:
        conditions.append(Conversation.assigned_to == user_id)
        if not flt.status:
            conditions.append(Conversation.status != Status.CLOSED)
    if flt.status and flt.view in (View.ALL, View.MINE):
        conditions.append(Conversation.status == flt.status)
    if flt.account_id is not None:
        conditions.append(Conversation.channel_account_id == flt.account_id)
    if flt.tag:
        conditions.append(exists().where(ContactTag.contact_id == Conversation.contact_id, ContactTag.tag == flt.tag))
    if flt.q:
        conditions.append(await _search(session, flt.q))
    return conditions


async def _waiting_page(
    session: AsyncSession, conditions: list[ColumnElement[bool]], cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Priority conversations first, each group oldest wait first: two index range scans."""
    after: tuple[bool, datetime, int] | None = None
    if cursor:
        p, ts, cid = decode_cursor(cursor, 3)
        after = (bool(p), _cursor_time(ts), _cursor_id(cid))
    rows: list[Any] = []
    for priority in (True, False):
        if after is not None and after[0] is False and priority is True:
            continue  # the cursor is already past the priority group
        where = [*conditions, Conversation.priority.is_(priority)]
        if after is not None and after[0] is priority:
            ws, cid = after[1], after[2]
            where += [Conversation.waiting_since >= ws, or_(Conversation.waiting_since > ws, Conversation.id > cid)]
        query = (
            select(*_LIST_COLUMNS)
            .where(*where)
            .order_by(Conversation.waiting_since, Conversation.id)
            .limit(limit + 1 - len(rows))
        )
        rows += (await session.execute(query)).all()
        if len(rows) > limit:
            break
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(1 if last.priority else 0, last.waiting_since, last.id)


async def _recent_page(
    session: AsyncSession, conditions: list[ColumnElement[bool]], cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    where = [*conditions, Conversation.last_message_at.is_not(None)]  # always set; NULLs would break the cursor
    if cursor:
        ts_raw, cid_raw = decode_cursor(cursor, 2)
        ts, cid = _cursor_time(ts_raw), _cursor_id(cid_raw)
        # a range the index can use, then the tie-break on id
        where += [Conversation.last_message_at <= ts, or_(Conversation.last_message_at < ts, Conversation.id < cid)]
    query = (
        select(*_LIST_COLUMNS)
        .where(*where)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit + 1)
    )
    rows = list((await session.execute(query)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].last_message_at, rows[-1].id)


async def _search(session: AsyncSession, raw: str) -> ColumnElement[bool]:
    """Contact name, channel identity, the last message preview, what the buyer or an operator wrote in the
    newest `SEARCH_WINDOW` messages, `#id`.

    No pattern matching (the text is taken literally): PostgreSQL compares `lower()`s with `strpos`; SQLite's
    `lower()` folds ASCII only, so there the text is looked up with `instr` as typed, in lower case and
    capitalised (messages: the first two).
    """
    q = " ".join(raw.split())[:MAX_QUERY]
    sqlite = session.get_bind().dialect.name == "sqlite"
    variants = list(dict.fromkeys((q, q.lower(), q.capitalize())))

    def contains(column: Any, forms: list[str]) -> ColumnElement[bool]:
        if not sqlite:  # strpos(lower()) is the same test as ILIKE '%q%', without pattern matching: faster
            return func.strpos(func.lower(column), q.lower()) > 0
        return or_(*(func.instr(column, form) > 0 for form in forms))

    newest = int(await session.scalar(select(func.max(Message.id))) or 0)
    # what buyers and operators wrote (the bot's texts are the flows'), newest first, the first matches only
    in_messages = (
        select(Message.conversation_id)
        .where(
            Message.id > newest - SEARCH_WINDOW,
            or_(Message.direction == "in", Message.author == "operator"),
            contains(Message.text, variants[:2]),
        )
        .order_by(Message.id.desc())
        .limit(SEARCH_HITS)
    )
    options: list[ColumnElement[bool]] = [
        Conversation.contact_id.in_(select(Contact.id).where(contains(Contact.display_name, variants))),
        contains(Conversation.last_text, variants),
        Conversation.id.in_(in_messages),
    ]
    if " " not in q:  # a chat id, a phone, a session: one token
        options.append(
            Conversation.identity_id.in_(
                select(ContactIdentity.id).where(contains(ContactIdentity.external_id, variants))
            )
        )
    digits = q.lstrip("#")
    if digits.isdigit() and len(digits) < 18:
        options.append(Conversation.id == int(digits))
    return or_(*options)


async def _items(session: AsyncSession, ctx: RuntimeContext, rows: Sequence[Any]) -> list[ListItem]:
    """Rows of the page with contact names, account names and assignees (two small lookups by id)."""
    contact_ids = {r.contact_id for r in rows}
    names: dict[int, str] = {}
    if contact_ids:
        result = await session.execute(select(Contact.id, Contact.display_name).where(Contact.id.in_(contact_ids)))
        names = {int(i): n for i, n in result.all()}
    assignees = await user_names(session, {r.assigned_to for r in rows if r.assigned_to})
    accounts = await account_names(session, ctx)
    items = []
    for r in rows:
        account_name, account_kind = accounts.get(r.channel_account_id, (str(r.channel_account_id), ""))
        items.append(
            ListItem(
                id=r.id,
                contact_id=r.contact_id,
                contact_name=names.get(r.contact_id, ""),
                channel_account_id=r.channel_account_id,
                account_name=account_name,
                account_kind=account_kind,
                status=r.status,
                priority=bool(r.priority),
                assigned_to=r.assigned_to,
                assignee=assignees.get(r.assigned_to or 0, ""),
                waiting_since=r.waiting_since,
                last_message_at=r.last_message_at,
                unread=int(r.unread or 0),
                last_text=r.last_text or "",
            )
        )
    return items


async def user_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    result = await session.execute(select(User.id, User.name, User.login).where(User.id.in_(ids)))
    return {int(i): (name or login) for i, name, login in result.all()}


async def account_names(session: AsyncSession, ctx: RuntimeContext) -> dict[int, tuple[str, str]]:
    """Channel accounts by id: (name, kind). Loaded ones come from memory; disabled ones from the table."""
    names = {a.id: (a.name, a.kind) for a in ctx.accounts.values()}
    if not names:
        result = await session.execute(select(ChannelAccount.id, ChannelAccount.name, ChannelAccount.kind))
        names = {int(i): (n, k) for i, n, k in result.all()}
    return names


async def counters(session: AsyncSession, *, user_id: int) -> Counters:
    """Tab counters: the waiting set (capped), its priority part, and my conversations with unread messages."""
    waiting_rows = (
        select(Conversation.priority)
        .where(Conversation.status == Status.WAITING_OPERATOR)
        .limit(WAITING_CAP + 1)
        .subquery()
    )
    waiting, priority = (
        await session.execute(
            select(func.count(), func.count().filter(waiting_rows.c.priority.is_(True))).select_from(waiting_rows)
        )
    ).one()
    mine_rows = (
        select(Conversation.id)
        .where(Conversation.assigned_to == user_id, Conversation.status != Status.CLOSED, Conversation.unread > 0)
        .limit(MINE_CAP + 1)
        .subquery()
    )
    mine = int(await session.scalar(select(func.count()).select_from(mine_rows)) or 0)
    return Counters(
        waiting=min(int(waiting), WAITING_CAP),
        waiting_capped=int(waiting) > WAITING_CAP,
        priority=int(priority or 0),
        mine_unread=min(mine, MINE_CAP),
        mine_capped=mine > MINE_CAP,
    )


async def pulse(session: AsyncSession) -> str:
    """A cheap version of "anything changed?": the newest message time and the newest event-log row.

    Both are read from the end of an index. Every buyer message and every operator action (audited)
    moves one of them, so a page polls this and reloads its list only when the value changes.
    """
    newest_message = await session.scalar(select(func.max(Conversation.last_message_at)))
    newest_event = await session.scalar(select(func.max(EventLog.id)))
    return f"{newest_message.isoformat() if newest_message else ''}|{newest_event or 0}"


# --- one conversation --------------------------------------------------------------------------

_MESSAGE_COLUMNS = (
    Message.id,
    Message.direction,
    Message.author,
    Message.kind,
    Message.text,
    Message.payload,
    Message.status,
    Message.error,
    Message.created_at,
    Message.sent_at,
    Message.delivered_at,
    Message.read_at,
    Message.failed_at,
)


async def conversation_view(session: AsyncSession, ctx: RuntimeContext, conversation_id: int) -> ConversationView:
    """The conversation, its contact card and the latest page of its history."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound("no such conversation")
    contact = await session.get(Contact, conv.contact_id)
    assert contact is not None
    messages, has_older = await history(session, conversation_id)
    accounts = await account_names(session, ctx)
    account_name, account_kind = accounts.get(conv.channel_account_id, (str(conv.channel_account_id), ""))
    assignee = (await user_names(session, {conv.assigned_to})).get(conv.assigned_to, "") if conv.assigned_to else ""
    return ConversationView(
        id=conv.id,
        status=conv.status,
        priority=bool(conv.priority),
        flow=conv.flow,
        node=conv.node,
        channel_account_id=conv.channel_account_id,
        account_name=account_name,
        account_kind=account_kind,
        assigned_to=conv.assigned_to,
        assignee=assignee,
        unread=conv.unread,
        waiting_since=conv.waiting_since,
        created_at=conv.created_at,
        closed_at=conv.closed_at,
        state_vars=dict((conv.state or {}).get("vars") or {}),
        contact=await contact_card(session, accounts, contact),
        messages=messages,
        has_older=has_older,
    )


async def contact_card(session: AsyncSession, accounts: dict[int, tuple[str, str]], contact: Contact) -> ContactCard:
    identities = (
        await session.execute(
            select(ContactIdentity.channel_account_id, ContactIdentity.external_id)
            .where(ContactIdentity.contact_id == contact.id)
            .order_by(ContactIdentity.id)
            .limit(20)
        )
    ).all()
    tags = (
        await session.execute(
            select(ContactTag.tag).where(ContactTag.contact_id == contact.id).order_by(ContactTag.tag).limit(100)
        )
    ).scalars()
    return ContactCard(
        id=contact.id,
        name=contact.display_name,
        language=contact.language,
        subscribed=contact.subscribed,
        reachable=contact.reachable,
        created_at=contact.created_at,
        last_seen_at=contact.last_seen_at,
        identities=[Identity(*accounts.get(a, (str(a), "")), external_id=e) for a, e in identities],
        tags=list(tags),
        fields=dict(contact.fields or {}),
    )


async def history(
    session: AsyncSession, conversation_id: int, *, before: int | None = None, limit: int = HISTORY_PAGE
) -> tuple[list[MessageItem], bool]:
    """The latest `limit` messages (before the id `before`), oldest first, and whether older ones exist."""
    query = select(*_MESSAGE_COLUMNS).where(Message.conversation_id == conversation_id)
    if before is not None:
        query = query.where(Message.id < before)
    rows = list((await session.execute(query.order_by(Message.id.desc()).limit(limit + 1))).all())
    has_older = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return await _message_items(session, rows), has_older


async def messages_after(
    session: AsyncSession, conversation_id: int, after: int, limit: int = 100
) -> list[MessageItem]:
    rows = (
        await session.execute(
            select(*_MESSAGE_COLUMNS)
            .where(Message.conversation_id == conversation_id, Message.id > after)
            .order_by(Message.id)
            .limit(limit)
        )
    ).all()
    return await _message_items(session, rows)


async def recent_marks(session: AsyncSession, conversation_id: int, limit: int = 30) -> dict[int, str]:
    """Status of the latest outbound messages: delivery and read marks change after they are shown."""
    rows = await session.execute(
        select(Message.id, Message.status)
        .where(Message.conversation_id == conversation_id, Message.direction == "out")
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return {int(i): s for i, s in rows.all()}


async def _message_items(session: AsyncSession, rows: Sequence[Any]) -> list[MessageItem]:
    titles: dict[str, str] = {}  # button payload -> title, from the bot's messages on this page
    items: list[MessageItem] = []
    for r in rows:
        payload = r.payload or {}
        buttons = [b for b in payload.get("buttons") or [] if isinstance(b, dict)]
        for b in buttons:
            titles[str(b.get("payload", ""))] = str(b.get("title", ""))
        pressed = None
        if r.direction == "in" and r.kind == "button":
            key = str(payload.get("payload") or "")
            pressed = titles.get(key) or key
        items.append(
            MessageItem(
                id=r.id,
                direction=r.direction,
                author=r.author,
                kind=r.kind,
                text=r.text or "",
                status=r.status,
                error=r.error,
                created_at=r.created_at,
                sent_at=r.sent_at,
                delivered_at=r.delivered_at,
                read_at=r.read_at,
                failed_at=r.failed_at,
                buttons=[str(b.get("title", "")) for b in buttons],
                pressed=pressed,
                attachments=[a for a in payload.get("attachments") or [] if isinstance(a, dict)],
                by=str(payload.get("by_name") or ""),
            )
        )
    return items


async def media_belongs(session: AsyncSession, conversation_id: int, media_id: str) -> bool:
    """Whether a message of the conversation carries this file (the admin serves no other media)."""
    found = await session.scalar(
        select(Message.id)
        .where(Message.conversation_id == conversation_id, cast(Message.payload, String).contains(media_id))
        .limit(1)
    )
    return found is not None


async def mark_read(session: AsyncSession, conversation_id: int) -> bool:
    """Reset the unread counter (an operator opened the conversation). False when it was already 0."""
    result = await session.execute(
        update(Conversation).where(Conversation.id == conversation_id, Conversation.unread > 0).values(unread=0)
    )
    return bool(getattr(result, "rowcount", 0))


TAGS_TTL = 60.0
TAGS_STATE = "inbox.tags_cache"  # `RuntimeContext.state` key of the tag suggestions
TagsCache = dict[int, tuple[float, list[str]]]  # limit -> (monotonic time, tags)


def tags_cache(ctx: RuntimeContext) -> TagsCache:
    """The install's cache of tag suggestions (one per container, so per database)."""
    cache: TagsCache = ctx.state.setdefault(TAGS_STATE, {})
    return cache


async def tags_in_use(session: AsyncSession, cache: TagsCache, limit: int = 200) -> list[str]:
    """Tags for the filter's suggestions (distinct, alphabetical, capped). A DISTINCT reads the whole tag
    index, so the answer is kept in `cache` (`tags_cache(ctx)`) for `TAGS_TTL` seconds: suggestions may
    lag a minute."""
    cached = cache.get(limit)
    if cached is not None and time.monotonic() - cached[0] < TAGS_TTL:
        return cached[1]
    rows = await session.execute(select(ContactTag.tag).distinct().order_by(ContactTag.tag).limit(limit))
    tags = list(rows.scalars())
    cache[limit] = (time.monotonic(), tags)
    return tags


async def operators(session: AsyncSession) -> list[tuple[int, str]]:
    """Active users who may reply (assignees), as (id, name)."""
    from otklik.platform.users import ROLE_PERMS, Perm

    roles = [role.value for role, perms in ROLE_PERMS.items() if Perm.INBOX_REPLY in perms]
    rows = await session.execute(
        select(User.id, User.name, User.login)
        .where(User.active.is_(True), User.role.in_(roles))
        .order_by(User.name, User.login)
        .limit(500)
    )
    return [(int(i), name or login) for i, name, login in rows.all()]


@dataclass(frozen=True, slots=True)
class Head:
    status: str
    unread: int
    assigned_to: int | None


async def head(session: AsyncSession, conversation_id: int) -> Head | None:
    """The few columns a poll needs (one primary-key read)."""
    row = (
        await session.execute(
            select(Conversation.status, Conversation.unread, Conversation.assigned_to).where(
                Conversation.id == conversation_id
            )
        )
    ).first()
    return Head(row.status, int(row.unread or 0), row.assigned_to) if row else None
