"""Members of staff: validation, adding, changing, removing (each audited as `staff.*`)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import StaffMember
from otklik.clock import utcnow
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.platform.audit import audit

MAX_NAME = 120
MAX_EMAIL = 254
# A practical address check (no quoted local parts, no IP literals): what an SMTP server accepts from a form.
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
# A Telegram chat id: a user (positive), a group (negative), a supergroup/channel (-100…), or a public @username.
CHAT_ID = re.compile(r"-?[1-9][0-9]{0,15}|@[A-Za-z][A-Za-z0-9_]{4,31}")
PACK = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
RULE = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,79}")


@dataclass(frozen=True, slots=True)
class Member:
    """A member of staff as the services hand it around (not an ORM row)."""

    id: int
    name: str
    email: str | None
    telegram_chat_id: str | None
    active: bool
    packs: tuple[str, ...]  # () = every pack
    rules: tuple[str, ...]

    def serves(self, pack: str) -> bool:
        return not self.packs or pack in self.packs

    @classmethod
    def of(cls, row: StaffMember) -> Member:
        return cls(
            int(row.id), row.name, row.email, row.telegram_chat_id, bool(row.active),
            split(row.packs), split(row.rules),
        )  # fmt: skip


def split(raw: str | None) -> tuple[str, ...]:
    return tuple(p for p in (raw or "").split(",") if p)


def clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput(f"name: 1-{MAX_NAME} characters, no control characters")
    return name


def clean_email(email: str | None) -> str | None:
    email = (email or "").strip()
    if not email:
        return None
    if len(email) > MAX_EMAIL or not EMAIL.fullmatch(email):
        raise InvalidInput(f"e-mail: {email[:80]!r} is not an address like name@example.com")
    return email


def clean_chat_id(chat_id: str | int | None) -> str | None:
    text = str(chat_id if chat_id is not None else "").strip()
    if not text:
        return None
    if not CHAT_ID.fullmatch(text):
        raise InvalidInput(
            f"Telegram chat id: {text[:40]!r} is not a chat id (a number such as 123456789 or -1001234567890, "
            "or a public @channel)"
        )
    return text


def clean_list(raw: str | Iterable[str] | None, pattern: re.Pattern[str], what: str) -> list[str]:
    parts = (raw or "").split(",") if isinstance(raw, str) or raw is None else list(raw)
    items = sorted({p.strip().lower() for p in parts if p and p.strip()})
    bad = [p for p in items if not pattern.fullmatch(p)]
    if bad:
        raise InvalidInput(f"{what}: {bad[0][:80]!r} is not valid (lower-case letters, digits, '-', '_')")
    if len(",".join(items)) > 400:
        raise InvalidInput(f"{what}: too many")
    return items


def clean_packs(raw: str | Iterable[str] | None, known: Collection[str] | None) -> list[str]:
    packs = clean_list(raw, PACK, "packs")
    unknown = [p for p in packs if known is not None and p not in known]
    if unknown:
        raise InvalidInput(f"packs: no pack {unknown[0]!r} (known: {', '.join(sorted(known or ())) or 'none'})")
    return packs


async def add_member(
    db: Database,
    name: str,
    *,
    email: str | None = None,
    telegram_chat_id: str | int | None = None,
    packs: str | Iterable[str] | None = None,
    rules: str | Iterable[str] | None = None,
    known_packs: Collection[str] | None = None,
    actor: str,
) -> Member:
    """Add a member of staff; at least one way to reach them (e-mail or Telegram). `known_packs`: the
    install's packs (an unknown one is refused)."""
    name = clean_name(name)
    address, chat = clean_email(email), clean_chat_id(telegram_chat_id)
    if address is None and chat is None:
        raise InvalidInput("give an e-mail address, a Telegram chat id, or both")
    pack_list, rule_list = clean_packs(packs, known_packs), clean_list(rules, RULE, "rules")
    now = utcnow()
    try:
        async with db.write() as session:
            row = StaffMember(
                name=name, email=address, telegram_chat_id=chat, active=True, packs=",".join(pack_list),
                rules=",".join(rule_list), created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            audit(session, actor, "staff.added", "staff", row.id, _audited(row), now=now)
            return Member.of(row)
    except IntegrityError:
        raise Conflict(f"a member of staff named {name!r} exists") from None


async def update_member(
    db: Database,
    member_id: int,
    *,
    actor: str,
    email: str | None = None,
    telegram_chat_id: str | None = None,
    active: bool | None = None,
    packs: str | Iterable[str] | None = None,
    rules: str | Iterable[str] | None = None,
    known_packs: Collection[str] | None = None,
) -> Member:
    """Change what is given (None: unchanged; "" for e-mail/chat id: remove it)."""
    now = utcnow()
    async with db.write() as session:
        row = await session.get(StaffMember, member_id)
        if row is None:
            raise NotFound("no such member of staff")
        if email is not None:
            row.email = clean_email(email)
        if telegram_chat_id is not None:
            row.telegram_chat_id = clean_chat_id(telegram_chat_id)
        if row.email is None and row.telegram_chat_id is None:
            raise InvalidInput("give an e-mail address, a Telegram chat id, or both")
        if active is not None:
            row.active = active
        if packs is not None:
            row.packs = ",".join(clean_packs(packs, known_packs))
        if rules is not None:
            row.rules = ",".join(clean_list(rules, RULE, "rules"))
        row.updated_at = now
        audit(session, actor, "staff.updated", "staff", row.id, _audited(row), now=now)
        return Member.of(row)


async def remove_member(db: Database, name_or_id: str | int, *, actor: str) -> Member:
    """Remove a member (their past notifications stay, without the link to them)."""
    async with db.write() as session:
        row = await _find(session, name_or_id)
        member = Member.of(row)
        await session.delete(row)
        audit(session, actor, "staff.removed", "staff", member.id, {"name": member.name})
        return member


async def list_members(db: Database, *, pack: str | None = None, active_only: bool = False) -> list[Member]:
    async with db.read() as session:
        rows = (await session.execute(select(StaffMember).order_by(StaffMember.id))).scalars().all()
    members = [Member.of(r) for r in rows]
    return [m for m in members if (pack is None or m.serves(pack)) and (m.active or not active_only)]


async def members_of(session: AsyncSession, pack: str) -> list[Member]:
    """The active members serving `pack`, in id order (in the caller's transaction)."""
    rows = (
        await session.execute(select(StaffMember).where(StaffMember.active.is_(True)).order_by(StaffMember.id))
    ).scalars()
    return [m for m in (Member.of(r) for r in rows) if m.serves(pack)]


async def _find(session: AsyncSession, name_or_id: str | int) -> StaffMember:
    text = str(name_or_id).strip()
    row = await session.scalar(select(StaffMember).where(StaffMember.name == " ".join(text.split())))
    if row is None and text.isdigit() and len(text) < 19:
        row = await session.get(StaffMember, int(text))
    if row is None:
        raise NotFound(f"no member of staff {text[:120]!r}")
    return row


def _audited(row: StaffMember) -> dict[str, object]:
    return {
        "name": row.name, "email": row.email, "telegram_chat_id": row.telegram_chat_id, "active": row.active,
        "packs": row.packs, "rules": row.rules,
    }  # fmt: skip
