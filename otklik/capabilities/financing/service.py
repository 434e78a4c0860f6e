"""Rates tables in the database: several named tables, one default for the install and optionally one per
pack (the chat of a pack's conversations uses it), every save a new version (history and rollback), every
change in the audit log. The admin, the CLI, the API and the flow action use these.

A table's text is validated (`rules.parse_table`) before anything is written: a refused file saves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.capabilities.financing.models import pack_defaults, rate_tables, rate_versions
from otklik.capabilities.financing.rules import RatesTable, dump_table, parse_table
from otklik.clock import utcnow
from otklik.core.errors import Conflict, InvalidInput, NotFound

__all__ = ["Conflict", "InvalidInput", "NotFound", "StoredTable"]
from otklik.platform.audit import audit

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
RESERVED = frozenset({"packs"})  # /admin/financing/packs
MAX_PACK = 64  # `channel_accounts.pack`
Fetch = Callable[[Any], Awaitable[list[Any]]]


@dataclass(frozen=True, slots=True)
class StoredTable:
    id: int
    name: str
    is_default: bool
    version: int
    source: str
    updated_at: datetime

    @property
    def table(self) -> RatesTable:
        return parsed(self.source)


@lru_cache(maxsize=64)
def parsed(source: str) -> RatesTable:
    """A stored (already validated) source, parsed once per process."""
    return parse_table(source)


def clean_name(raw: str) -> str:
    name = (raw or "").strip().lower()
    if not NAME.fullmatch(name):
        raise InvalidInput("the table's name: 1-40 characters, lower-case letters, digits, '-' or '_'")
    if name in RESERVED:
        raise InvalidInput(f"{name!r} is reserved (an admin page's address); choose another name")
    return name


def session_fetch(session: AsyncSession) -> Fetch:
    async def fetch(stmt: Any) -> list[Any]:
        return list((await session.execute(stmt)).all())

    return fetch


async def load(fetch: Fetch, name: str | None = None, *, pack: str | None = None) -> StoredTable | None:
    """The current version of the named table; without a name, the `pack`'s default table when the pack has
    one, else the install's default. None when there is none."""
    query = select(
        rate_tables.c.id, rate_tables.c.name, rate_tables.c.is_default, rate_tables.c.version,
        rate_versions.c.source, rate_tables.c.updated_at,
    ).join(
        rate_versions,
        (rate_versions.c.table_id == rate_tables.c.id) & (rate_versions.c.version == rate_tables.c.version),
    )  # fmt: skip
    if name is not None:
        query = query.where(rate_tables.c.name == name)
    elif pack:
        chosen = select(pack_defaults.c.table_id).where(pack_defaults.c.pack == pack).scalar_subquery()
        query = query.where((rate_tables.c.id == chosen) | rate_tables.c.is_default.is_(True))
        query = query.order_by(case((rate_tables.c.id == chosen, 0), else_=1))  # the pack's first
    else:
        query = query.where(rate_tables.c.is_default.is_(True))
    rows = await fetch(query.limit(1))
    return StoredTable(*rows[0]) if rows else None


async def list_tables(session: AsyncSession) -> list[dict[str, Any]]:
    rows = (await session.execute(select(rate_tables).order_by(rate_tables.c.name))).mappings().all()
    return [dict(r) for r in rows]


async def history(session: AsyncSession, name: str) -> list[dict[str, Any]]:
    table_id = await _id_of(session, name)
    rows = await session.execute(
        select(rate_versions.c.version, rate_versions.c.actor, rate_versions.c.note, rate_versions.c.created_at)
        .where(rate_versions.c.table_id == table_id)
        .order_by(rate_versions.c.version.desc())
    )
    return [dict(r) for r in rows.mappings().all()]


async def version_source(session: AsyncSession, name: str, version: int) -> str:
    table_id = await _id_of(session, name)
    source = await session.scalar(
        select(rate_versions.c.source).where(rate_versions.c.table_id == table_id, rate_versions.c.version == version)
    )
    if source is None:
        raise NotFound(f"the table {name!r} has no version {version}")
    return str(source)


async def save(
    session: AsyncSession, name: str, source: str | bytes, *, actor: str, note: str = "edit",
    now: datetime | None = None,
) -> int:  # fmt: skip
    """Validate `source`, then store it as the table's next version (the table is created on its first save;
    the first table of the install becomes the default). Returns the new version number."""
    name = clean_name(name)
    table = parse_table(source)  # RatesInvalid lists every error; nothing is written
    text = source.decode("utf-8") if isinstance(source, bytes) else source
    text = text.removeprefix("\ufeff")
    if text.lstrip().startswith(("{", "[")):
        text = dump_table(table)  # stored as YAML; JSON comes back out through `export`
    now = now or utcnow()
    row = (
        await session.execute(
            select(rate_tables.c.id, rate_tables.c.version).where(rate_tables.c.name == name).with_for_update()
        )
    ).first()
    if row is None:
        has_default = await session.scalar(select(func.count()).where(rate_tables.c.is_default.is_(True)))
        table_id = int(
            (
                await session.execute(
                    insert(rate_tables)
                    .values(name=name, is_default=not has_default, version=1, created_at=now, updated_at=now)
                    .returning(rate_tables.c.id)
                )
            ).scalar_one()
        )
        version = 1
        audit(session, actor, "financing.table_create", "financing_table", name, {"version": 1, "note": note}, now=now)
    else:
        table_id, version = int(row[0]), int(row[1]) + 1
        current = await session.scalar(
            select(rate_versions.c.source).where(
                rate_versions.c.table_id == table_id, rate_versions.c.version == row[1]
            )
        )
        if current == text:
            raise Conflict(f"the table {name!r} already has this text (version {row[1]}); nothing to save")
        await session.execute(
            update(rate_tables).where(rate_tables.c.id == table_id).values(version=version, updated_at=now)
        )
        audit(
            session, actor, "financing.table_save", "financing_table", name, {"version": version, "note": note}, now=now
        )
    await session.execute(
        insert(rate_versions).values(
            table_id=table_id, version=version, source=text, actor=actor[:120], note=note[:200], created_at=now
        )
    )
    return version


async def rollback(session: AsyncSession, name: str, version: int, *, actor: str) -> int:
    """Make an older version current again, as a new version (the history keeps everything)."""
    source = await version_source(session, name, version)
    return await save(session, name, source, actor=actor, note=f"rollback to {version}")


async def set_default(session: AsyncSession, name: str, *, actor: str) -> None:
    table_id = await _id_of(session, name)
    await session.execute(update(rate_tables).where(rate_tables.c.id != table_id).values(is_default=False))
    await session.execute(update(rate_tables).where(rate_tables.c.id == table_id).values(is_default=True))
    audit(session, actor, "financing.table_default", "financing_table", name, {}, now=utcnow())


async def pack_default_names(session: AsyncSession) -> dict[str, str]:
    """pack id -> the name of the table its conversations use (packs without one use the install default)."""
    rows = await session.execute(
        select(pack_defaults.c.pack, rate_tables.c.name)
        .join(rate_tables, rate_tables.c.id == pack_defaults.c.table_id)
        .order_by(pack_defaults.c.pack)
    )
    return {str(pack): str(name) for pack, name in rows.all()}


async def set_pack_default(
    session: AsyncSession, pack: str, name: str | None, *, actor: str, packs: Collection[str]
) -> bool:
    """Make `name` the table of `pack`'s conversations; `name` None or "" removes the pack's own choice (the
    install default applies again). `packs`: the packs that exist (an unknown pack is refused). Audited as
    `financing.pack_default`; returns False when nothing changed (and audits nothing)."""
    pack = (pack or "").strip()
    if not pack or len(pack) > MAX_PACK or pack not in packs:
        raise InvalidInput(f"unknown pack {pack[:MAX_PACK]!r}; the packs are: {', '.join(sorted(packs))}")
    current = await session.scalar(
        select(rate_tables.c.name)
        .join(pack_defaults, pack_defaults.c.table_id == rate_tables.c.id)
        .where(pack_defaults.c.pack == pack)
        .with_for_update()
    )
    now = utcnow()
    if not (name or "").strip():
        if current is None:
            return False
        await session.execute(delete(pack_defaults).where(pack_defaults.c.pack == pack))
        audit(
            session, actor, "financing.pack_default", "financing_pack", pack, {"table": None, "was": current}, now=now
        )
        return True
    table_id = await _id_of(session, name or "")
    name = clean_name(name or "")
    if current == name:
        return False
    values = {"pack": pack, "table_id": table_id, "actor": actor[:120], "updated_at": now}
    upsert = (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(pack_defaults)
    await session.execute(  # two admins choosing at once: the last one wins, neither fails
        upsert.values(**values).on_conflict_do_update(index_elements=[pack_defaults.c.pack], set_=values)
    )
    audit(session, actor, "financing.pack_default", "financing_pack", pack, {"table": name, "was": current}, now=now)
    return True


async def export(session: AsyncSession, name: str, fmt: Literal["yaml", "json"] = "yaml") -> str:
    stored = await load(session_fetch(session), clean_name(name))
    if stored is None:
        raise NotFound(f"no rates table named {name!r}")
    return stored.source if fmt == "yaml" else dump_table(stored.table, "json")


async def _id_of(session: AsyncSession, name: str) -> int:
    table_id = await session.scalar(select(rate_tables.c.id).where(rate_tables.c.name == clean_name(name)))
    if table_id is None:
        raise NotFound(f"no rates table named {name!r}")
    return int(table_id)
