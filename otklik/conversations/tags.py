"""Contact tags: kept in the contact's JSON (what flows read) and in `contact_tags` (what the inbox filters by)."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import Contact, ContactTag
from otklik.core.errors import InvalidInput

_TAG = re.compile(r"^[\w\-.:/ ]{1,64}$", re.UNICODE)


def clean_tag(raw: str) -> str:
    tag = " ".join(str(raw or "").split()).lower()
    if not _TAG.match(tag):
        raise InvalidInput("a tag is 1-64 letters, digits, spaces or - _ . : /")
    return tag


async def add_tag(session: AsyncSession, contact_id: int, raw: str, now: datetime) -> list[str]:
    tag = clean_tag(raw)
    contact = (await session.execute(select(Contact).where(Contact.id == contact_id))).scalar_one()
    tags = list((contact.tags or {}).get("list", []))
    if tag not in tags:
        tags.append(tag)
        contact.tags = {"list": tags}
        if await session.get(ContactTag, (contact_id, tag)) is None:
            session.add(ContactTag(contact_id=contact_id, tag=tag, created_at=now))
    return tags


async def remove_tag(session: AsyncSession, contact_id: int, raw: str) -> list[str]:
    tag = clean_tag(raw)
    contact = (await session.execute(select(Contact).where(Contact.id == contact_id))).scalar_one()
    tags = [t for t in (contact.tags or {}).get("list", []) if t != tag]
    contact.tags = {"list": tags}
    await session.execute(delete(ContactTag).where(ContactTag.contact_id == contact_id, ContactTag.tag == tag))
    return tags
