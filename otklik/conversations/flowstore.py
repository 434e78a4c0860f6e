"""Flows in the database: versioned, validated before saving, one active (published) version per flow.

Every save makes a new version; a version that is not active is a *draft*. Publishing activates a version,
a rollback stores an older version's source as a new active version. Each of these bumps the flows
revision (the `flows_revision` setting); every process's watcher rebuilds its engines on a new revision
(`Otklik.watch_flows`), so a published flow is live everywhere within seconds, without a restart.
Changes made by people are audited (`flow.saved`, `flow.published`, `flow.rolled_back`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import FlowLayout, FlowVersion, Setting
from otklik.clock import utcnow
from otklik.core import safe_yaml
from otklik.core.errors import FlowInvalid, FlowIssue, NotFound
from otklik.core.flows.canvas import clean_layout
from otklik.core.flows.model import Flow
from otklik.core.flows.validate import parse_flow_yaml
from otklik.platform.audit import audit

REVISION_KEY = "flows_revision"
_SAVE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class FlowVersionInfo:
    flow_key: str
    version: int
    active: bool
    created_by: str
    created_at: datetime | None = None
    pack: str = ""


@dataclass(frozen=True, slots=True)
class FlowVersionSource:
    info: FlowVersionInfo
    source: str


@dataclass(frozen=True, slots=True)
class FlowSummary:
    """One line of the flow list: the newest version, and which one is live."""

    flow_key: str
    pack: str
    active_version: int | None
    latest_version: int
    updated_by: str
    updated_at: datetime | None
    name: str = ""  # the flow's `name:` (its title for people), "" if it has none

    @property
    def has_draft(self) -> bool:
        return self.active_version is None or self.latest_version > self.active_version


def _flow_name(source: str) -> str:
    """The `name:` of a stored flow for the list; "" when the source (a draft, say) has none or does not parse."""
    try:
        data = safe_yaml.load(source)
    except Exception:  # a broken draft still gets its line in the list, by id
        return ""
    name = data.get("name") if isinstance(data, dict) else None
    return name.strip()[:200] if isinstance(name, str) else ""


def parse_source(source: str, known_flows: Iterable[str] = ()) -> Flow:
    """Full validation (hostile-input guard included): a valid `Flow` or `FlowInvalid` listing every problem."""
    return parse_flow_yaml(source, known_flows=known_flows)


def unified_diff(old: FlowVersionSource, new: FlowVersionSource) -> list[str]:
    """The unified diff between two versions (plain text lines; the caller escapes them for HTML)."""
    return list(
        difflib.unified_diff(
            old.source.splitlines(),
            new.source.splitlines(),
            fromfile=f"{old.info.flow_key} v{old.info.version}",
            tofile=f"{new.info.flow_key} v{new.info.version}",
            lineterm="",
        )
    )


class FlowStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def seed(self, pack: str, sources: dict[str, str]) -> int:
        """Store a pack's flows that the database does not have yet. Returns how many were added."""
        added = 0
        async with self.db.write() as session:
            existing = set((await session.execute(select(FlowVersion.flow_key).distinct())).scalars())
            known = existing | set(sources)
            for key, source in sources.items():
                if key in existing:
                    continue
                parse_flow_yaml(source, known_flows=known)
                session.add(
                    FlowVersion(
                        flow_key=key,
                        pack=pack,
                        version=1,
                        source=source,
                        active=True,
                        created_by="pack",
                        created_at=utcnow(),
                    )
                )
                added += 1
            if added:
                await _bump(session)
        return added

    async def save(
        self,
        source: str,
        *,
        pack: str,
        author: str,
        activate: bool = True,
        expect_key: str | None = None,
        new: bool = False,
    ) -> FlowVersionInfo:
        """Validate and store a new version. An invalid flow raises `FlowInvalid` and nothing is saved.

        `expect_key`: the flow being edited; a source whose `id` differs is refused (no silent fork).
        `new`: the flow must not exist yet. An existing flow keeps its pack. A source identical to the
        newest version adds no version (it is only published when `activate`).
        """
        for attempt in range(_SAVE_ATTEMPTS):
            try:
                async with self.db.write() as session:
                    return await self._save(session, source, pack, author, activate, expect_key, new)
            except IntegrityError:  # a concurrent save took the same version number (PostgreSQL)
                if attempt == _SAVE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _save(
        self,
        session: AsyncSession,
        source: str,
        pack: str,
        author: str,
        activate: bool,
        expect_key: str | None,
        new: bool,
    ) -> FlowVersionInfo:
        known = set((await session.execute(select(FlowVersion.flow_key).distinct())).scalars())
        flow = parse_source(source, known)
        if expect_key is not None and flow.id != expect_key:
            raise FlowInvalid(
                [FlowIssue(flow.id, None, "id", f"the id must stay {expect_key!r}; create a new flow for another id")]
            )
        newest = await _newest(session, flow.id)
        if new and newest is not None:
            raise FlowInvalid([FlowIssue(flow.id, None, "id", f"a flow with id {flow.id!r} already exists")])
        if newest is not None and newest.source == source:
            if activate and not newest.active:
                await self._publish(session, newest, author)
            return _info(newest, active=newest.active or activate)
        version = (newest.version if newest else 0) + 1
        pack = newest.pack if newest else pack
        if activate:
            await session.execute(update(FlowVersion).where(FlowVersion.flow_key == flow.id).values(active=False))
        row = FlowVersion(
            flow_key=flow.id,
            pack=pack,
            version=version,
            source=source,
            active=activate,
            created_by=author,
            created_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        audit(session, author, "flow.saved", "flow", flow.id, {"version": version, "pack": pack, "active": activate})
        if activate:
            audit(session, author, "flow.published", "flow", flow.id, {"version": version})
        await _bump(session)
        return _info(row)

    async def publish(self, flow_key: str, version: int, *, author: str) -> FlowVersionInfo:
        """Make `version` the live one (audited as `flow.published`)."""
        async with self.db.write() as session:
            row = await session.scalar(
                select(FlowVersion).where(FlowVersion.flow_key == flow_key, FlowVersion.version == version)
            )
            if row is None:
                raise NotFound(f"flow {flow_key} has no version {version}")
            if not row.active:
                await self._publish(session, row, author)
            return _info(row, active=True)

    async def _publish(self, session: AsyncSession, row: FlowVersion, author: str) -> None:
        previous = await session.scalar(
            select(FlowVersion.version).where(FlowVersion.flow_key == row.flow_key, FlowVersion.active.is_(True))
        )
        await session.execute(
            update(FlowVersion)
            .where(FlowVersion.flow_key == row.flow_key)
            .values(active=FlowVersion.version == row.version)
        )
        audit(session, author, "flow.published", "flow", row.flow_key, {"version": row.version, "previous": previous})
        await _bump(session)

    async def activate(self, flow_key: str, version: int, *, author: str) -> None:
        """Alias of `publish` (kept for callers of the first API)."""
        await self.publish(flow_key, version, author=author)

    async def rollback(self, flow_key: str, version: int, *, author: str) -> FlowVersionInfo:
        """Store the source of `version` as a new, published version (audited as `flow.rolled_back`)."""
        for attempt in range(_SAVE_ATTEMPTS):
            try:
                async with self.db.write() as session:
                    return await self._rollback(session, flow_key, version, author)
            except IntegrityError:
                if attempt == _SAVE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _rollback(self, session: AsyncSession, flow_key: str, version: int, author: str) -> FlowVersionInfo:
        old = await session.scalar(
            select(FlowVersion).where(FlowVersion.flow_key == flow_key, FlowVersion.version == version)
        )
        if old is None:
            raise NotFound(f"flow {flow_key} has no version {version}")
        known = set((await session.execute(select(FlowVersion.flow_key).distinct())).scalars())
        parse_source(old.source, known)  # still valid against today's flows
        newest = await _newest(session, flow_key)
        number = (newest.version if newest else 0) + 1
        await session.execute(update(FlowVersion).where(FlowVersion.flow_key == flow_key).values(active=False))
        row = FlowVersion(
            flow_key=flow_key,
            pack=old.pack,
            version=number,
            source=old.source,
            active=True,
            created_by=author,
            created_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        audit(session, author, "flow.rolled_back", "flow", flow_key, {"version": number, "from_version": version})
        await _bump(session)
        return _info(row)

    async def active(self) -> dict[str, tuple[str, Flow]]:
        """Active flows: id -> (pack, flow)."""
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(FlowVersion.flow_key, FlowVersion.pack, FlowVersion.source).where(
                        FlowVersion.active.is_(True)
                    )
                )
            ).all()
        keys = {r.flow_key for r in rows}
        return {r.flow_key: (r.pack, parse_flow_yaml(r.source, known_flows=keys)) for r in rows}

    async def source(self, flow_key: str, version: int | None = None) -> str:
        async with self.db.read() as session:
            query = select(FlowVersion.source).where(FlowVersion.flow_key == flow_key)
            query = (
                query.where(FlowVersion.version == version) if version else query.where(FlowVersion.active.is_(True))
            )
            source = await session.scalar(query)
        if source is None:
            raise NotFound(f"no flow {flow_key!r}")
        return str(source)

    async def get(self, flow_key: str, version: int | None = None) -> FlowVersionSource:
        """One version with its source; without `version`, the newest one (a draft when there is one)."""
        async with self.db.read() as session:
            if version is None:
                row = await _newest(session, flow_key)
            else:
                row = await session.scalar(
                    select(FlowVersion).where(FlowVersion.flow_key == flow_key, FlowVersion.version == version)
                )
        if row is None:
            raise NotFound(f"no flow {flow_key!r}" + (f" version {version}" if version else ""))
        return FlowVersionSource(_info(row), row.source)

    async def versions(self, flow_key: str, limit: int | None = None) -> list[FlowVersionInfo]:
        """Versions of a flow, oldest first (the newest `limit` when given)."""
        async with self.db.read() as session:
            query = select(FlowVersion).where(FlowVersion.flow_key == flow_key).order_by(FlowVersion.version.desc())
            if limit is not None:
                query = query.limit(limit)
            rows = (await session.execute(query)).scalars().all()
        return [_info(r) for r in reversed(rows)]

    async def overview(self, limit: int = 1000) -> list[FlowSummary]:
        """Every flow with its newest version and the live one, by key."""
        newest = (
            select(FlowVersion.flow_key, func.max(FlowVersion.version).label("latest"))
            .group_by(FlowVersion.flow_key)
            .subquery()
        )
        async with self.db.read() as session:
            rows = (
                (
                    await session.execute(
                        select(FlowVersion)
                        .join(
                            newest,
                            and_(FlowVersion.flow_key == newest.c.flow_key, FlowVersion.version == newest.c.latest),
                        )
                        .order_by(FlowVersion.flow_key)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
            live = {
                key: number
                for key, number in await session.execute(
                    select(FlowVersion.flow_key, FlowVersion.version).where(FlowVersion.active.is_(True))
                )
            }
        return [
            FlowSummary(
                r.flow_key, r.pack, live.get(r.flow_key), r.version, r.created_by, r.created_at, _flow_name(r.source)
            )
            for r in rows
        ]

    async def layout(self, flow_key: str) -> dict[str, list[int]]:
        """The builder's stored node positions of a flow (`{}` when none were saved)."""
        async with self.db.read() as session:
            row = await session.get(FlowLayout, flow_key)
        return clean_layout(row.positions if row else {})

    async def save_layout(self, flow_key: str, positions: dict[str, list[int]], *, author: str) -> int:
        """Store node positions beside the flow (no new version; the YAML is untouched). Positions of nodes
        the newest version does not have are dropped. Returns how many were kept."""
        async with self.db.write() as session:
            newest = await _newest(session, flow_key)
            if newest is None:
                raise NotFound(f"no flow {flow_key!r}")
            try:
                nodes = safe_yaml.load(newest.source).get("nodes") or {}
            except (safe_yaml.UnsafeYaml, AttributeError, ValueError):
                nodes = {}
            kept = clean_layout(positions, {str(k) for k in nodes})
            row = await session.get(FlowLayout, flow_key)
            if row is None:
                session.add(FlowLayout(flow_key=flow_key, positions=kept, updated_by=author, updated_at=utcnow()))
            else:
                row.positions, row.updated_by, row.updated_at = kept, author, utcnow()
        return len(kept)

    async def keys(self) -> set[str]:
        """Every flow id with at least one version (drafts included), as `save` validates against."""
        async with self.db.read() as session:
            return set((await session.execute(select(FlowVersion.flow_key).distinct())).scalars())

    async def diff(self, flow_key: str, old: int, new: int) -> list[str]:
        return unified_diff(await self.get(flow_key, old), await self.get(flow_key, new))

    async def revision(self) -> int:
        async with self.db.read() as session:
            row = await session.get(Setting, REVISION_KEY)
            return int(row.value.get("n", 0)) if row else 0


async def _newest(session: AsyncSession, flow_key: str) -> FlowVersion | None:
    row: FlowVersion | None = await session.scalar(
        select(FlowVersion).where(FlowVersion.flow_key == flow_key).order_by(FlowVersion.version.desc()).limit(1)
    )
    return row


def _info(row: FlowVersion, *, active: bool | None = None) -> FlowVersionInfo:
    return FlowVersionInfo(
        row.flow_key, row.version, row.active if active is None else active, row.created_by, row.created_at, row.pack
    )


async def _bump(session: AsyncSession) -> None:
    row = await session.get(Setting, REVISION_KEY)
    if row is None:
        session.add(Setting(key=REVISION_KEY, value={"n": 1}, updated_at=utcnow()))
    else:
        row.value = {"n": int(row.value.get("n", 0)) + 1}
        row.updated_at = utcnow()
