"""Saved audiences: conditions combined with all / any / not, compiled to one SQL query (no SQL from the user).

A condition is JSON (the admin's form and the CLI write it, `parse` checks it):

    {"all": [c, …]}   {"any": [c, …]}   {"not": c}
    {"channel": "telegram"}            the conversation's channel kind
    {"account": "shop_bot"}            the channel account's name
    {"pack": "care-ru"}                the account's pack
    {"tag": "vip"}                     the contact has the tag
    {"language": "es"}                 the contact's language
    {"subscribed": true}               (opted-out contacts are always excluded anyway)
    {"attribute": {"key": "city", "value": "Rosario"}}   a contact field equals the value
    {"first_seen" | "last_inbound" | "last_outbound": {"after" | "before": "2026-01-31"}}
    {"first_seen" | "last_inbound" | "last_outbound": {"within_days" | "older_than_days": 30}}

`last_inbound: {older_than_days: N}` means no message from the contact in the last N days (never wrote
included); `within_days` means at least one. The audience is one row per contact: its latest conversation that
matches (on the broadcast's account when it names one). Opted-out (`subscribed` false) and unreachable
(blocked the bot) contacts are never in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select, true

from otklik.adapters.db.models import ChannelAccount, Contact, ContactTag, Conversation, Message
from otklik.core.errors import InvalidInput

MAX_NODES = 100
MAX_DEPTH = 8
MAX_DAYS = 36_500
TEXT_LEAVES = {"channel": 32, "account": 120, "pack": 64, "tag": 64, "language": 8}
DATE_LEAVES = ("first_seen", "last_inbound", "last_outbound")


@dataclass(frozen=True, slots=True)
class Audience:
    contact_id: int
    conversation_id: int


def parse(raw: Any) -> dict[str, Any]:
    """Check a condition tree; returns it normalised. `InvalidInput` names the first problem."""
    count = [0]
    return _check(raw, "conditions", 0, count)


def _check(node: Any, where: str, depth: int, count: list[int]) -> dict[str, Any]:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise InvalidInput(f"a segment may have at most {MAX_NODES} conditions")
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{where}: conditions nest at most {MAX_DEPTH} deep")
    if not isinstance(node, dict) or len(node) != 1:
        raise InvalidInput(f"{where}: each condition is an object with exactly one key")
    ((key, value),) = node.items()
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise InvalidInput(f"{where}.{key}: a non-empty list of conditions")
        return {key: [_check(v, f"{where}.{key}[{i}]", depth + 1, count) for i, v in enumerate(value)]}
    if key == "not":
        return {"not": _check(value, f"{where}.not", depth + 1, count)}
    if key in TEXT_LEAVES:
        if not isinstance(value, str) or not value.strip() or len(value) > TEXT_LEAVES[key]:
            raise InvalidInput(f"{where}.{key}: a text of 1-{TEXT_LEAVES[key]} characters")
        return {key: value.strip()}
    if key == "subscribed":
        if not isinstance(value, bool):
            raise InvalidInput(f"{where}.subscribed: true or false")
        return {key: value}
    if key == "attribute":
        if (
            not isinstance(value, dict)
            or set(value) != {"key", "value"}
            or not isinstance(value["key"], str)
            or not value["key"].strip()
            or len(value["key"]) > 64
            or not isinstance(value["value"], str)
            or len(value["value"]) > 200
        ):
            raise InvalidInput(f'{where}.attribute: {{"key": "<1-64 chars>", "value": "<up to 200 chars>"}}')
        return {key: {"key": value["key"].strip(), "value": value["value"]}}
    if key in DATE_LEAVES:
        if not isinstance(value, dict) or len(value) != 1:
            raise InvalidInput(f"{where}.{key}: one of after, before, within_days, older_than_days")
        ((op, arg),) = value.items()
        if op in ("after", "before"):
            try:
                date.fromisoformat(str(arg))
            except ValueError:
                raise InvalidInput(f"{where}.{key}.{op}: a date as YYYY-MM-DD") from None
            return {key: {op: str(arg)}}
        if op in ("within_days", "older_than_days"):
            if not isinstance(arg, int) or isinstance(arg, bool) or not 0 < arg <= MAX_DAYS:
                raise InvalidInput(f"{where}.{key}.{op}: a whole number of days, 1-{MAX_DAYS}")
            return {key: {op: arg}}
        raise InvalidInput(f"{where}.{key}: one of after, before, within_days, older_than_days")
    raise InvalidInput(f"{where}: unknown condition {key[:40]!r}")


def _since(op: str, arg: Any, now: datetime) -> datetime:
    if op in ("after", "before"):
        return datetime.fromisoformat(str(arg)).replace(tzinfo=UTC)
    return now - timedelta(days=int(arg))


def _messages_since(direction: str, since: datetime) -> ColumnElement[bool]:
    conv = Conversation.__table__.alias("seg_conv")
    return exists(
        select(Message.id)
        .join(conv, conv.c.id == Message.conversation_id)
        .where(conv.c.contact_id == Contact.id, Message.direction == direction, Message.created_at >= since)
    )


def compile_condition(node: dict[str, Any], now: datetime) -> ColumnElement[bool]:
    ((key, value),) = node.items()
    if key == "all":
        return and_(true(), *(compile_condition(v, now) for v in value))
    if key == "any":
        return or_(false(), *(compile_condition(v, now) for v in value))
    if key == "not":
        return not_(compile_condition(value, now))
    if key == "channel":
        return ChannelAccount.kind == str(value)
    if key == "account":
        return ChannelAccount.name == str(value)
    if key == "pack":
        return ChannelAccount.pack == str(value)
    if key == "language":
        return Contact.language == str(value)
    if key == "subscribed":
        return Contact.subscribed.is_(bool(value))
    if key == "tag":
        return exists(select(ContactTag.tag).where(ContactTag.contact_id == Contact.id, ContactTag.tag == str(value)))
    if key == "attribute":
        field: ColumnElement[str] = Contact.fields[str(value["key"])].as_string()
        return field == str(value["value"])
    ((op, arg),) = value.items()
    since = _since(op, arg, now)
    after = op in ("after", "within_days")
    if key == "first_seen":
        return Contact.created_at >= since if after else Contact.created_at < since
    found = _messages_since("in" if key == "last_inbound" else "out", since)
    return found if after else not_(found)


def audience_query(conditions: dict[str, Any] | None, now: datetime, account_id: int | None = None) -> Select[int, int]:
    """`(contact_id, conversation_id)` of every contact in the audience, ordered by contact id."""
    where: list[ColumnElement[bool]] = [Contact.subscribed.is_(True), Contact.reachable.is_(True)]
    if conditions is not None:
        where.append(compile_condition(conditions, now))
    if account_id is not None:
        where.append(Conversation.channel_account_id == account_id)
    return (
        select(Conversation.contact_id, func.max(Conversation.id).label("conversation_id"))
        .join(Contact, Contact.id == Conversation.contact_id)
        .join(ChannelAccount, ChannelAccount.id == Conversation.channel_account_id)
        .where(ChannelAccount.enabled.is_(True), *where)
        .group_by(Conversation.contact_id)
        .order_by(Conversation.contact_id)
    )
