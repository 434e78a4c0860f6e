"""Contact tags: kept in the contact's JSON (what flows read) and in `contact_tags` (what the inbox filters by)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import Contact, ContactTag
from otklik.conversations.repo import as_tx
from otklik.core.errors import InvalidInput

if TYPE_CHECKING:
    from otklik.conversations.timers import QuickTx

_TAG = re.compile(r"^[\w\-.:/ ]{1,64}$", re.UNICODE)


def clean_tag(raw: str) -> str:
    tag = " ".join(str(raw or "").split()).lower()
    if not _TAG.match(tag):
        raise InvalidInput("a tag is 1-64 letters, digits, spaces or - _ . : /")
    return tag


_CONTACT_TAGS = select(Contact.tags).where(Contact.id == bindparam("contact_id"))
_SET_CONTACT_TAGS = update(Contact).where(Contact.id == bindparam("contact_id")).values(tags=bindparam("new_tags"))
_TAG_ROW = select(ContactTag.tag).where(
    ContactTag.contact_id == bindparam("contact_id"), ContactTag.tag == bindparam("t")
)
_ADD_TAG_ROW = insert(ContactTag)


async def add_tag(tx: QuickTx | AsyncSession, contact_id: int, raw: str, now: datetime) -> list[str]:
    """Add a tag (idempotent); Core statements, so it runs in an ORM session or as the quick action
    `contact.add_tag` inside the ingest transaction."""
    tag = clean_tag(raw)
    tx = as_tx(tx)
    row = (await tx.fetch(_CONTACT_TAGS, {"contact_id": contact_id}))[0]
    tags = list((row.tags or {}).get("list", []))
    if tag not in tags:
        tags.append(tag)
        await tx.execute(_SET_CONTACT_TAGS, {"contact_id": contact_id, "new_tags": {"list": tags}})
        if not await tx.fetch(_TAG_ROW, {"contact_id": contact_id, "t": tag}):
            await tx.execute(_ADD_TAG_ROW, {"contact_id": contact_id, "tag": tag, "created_at": now})
    return tags


async def remove_tag(session: AsyncSession, contact_id: int, raw: str) -> list[str]:
    tag = clean_tag(raw)
    contact = (await session.execute(select(Contact).where(Contact.id == contact_id))).scalar_one()
    tags = [t for t in (contact.tags or {}).get("list", []) if t != tag]
    contact.tags = {"list": tags}
    await session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id, ContactTag.tag == tag))
    return tags
