"""Flows in the database: versioned, validated before saving, one active version per flow."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import EventLog, FlowVersion, Setting
from otklik.clock import utcnow
from otklik.core.errors import NotFound
from otklik.core.flows.model import Flow
from otklik.core.flows.validate import parse_flow_yaml

REVISION_KEY = "flows_revision"


@dataclass(frozen=True, slots=True)
class FlowVersionInfo:
    flow_key: str
    version: int
    active: bool
    created_by: str


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

    async def save(self, source: str, *, pack: str, author: str, activate: bool = True) -> FlowVersionInfo:
        """Validate and store a new version. An invalid flow raises `FlowInvalid` and nothing is saved."""
        async with self.db.write() as session:
            known = set((await session.execute(select(FlowVersion.flow_key).distinct())).scalars())
            flow = parse_flow_yaml(source, known_flows=known)
            version = (
                int(
                    await session.scalar(
                        select(func.coalesce(func.max(FlowVersion.version), 0)).where(FlowVersion.flow_key == flow.id)
                    )
                    or 0
                )
                + 1
            )
            if activate:
                await session.execute(update(FlowVersion).where(FlowVersion.flow_key == flow.id).values(active=False))
            session.add(
                FlowVersion(
                    flow_key=flow.id,
                    pack=pack,
                    version=version,
                    source=source,
                    active=activate,
                    created_by=author,
                    created_at=utcnow(),
                )
            )
            session.add(
                EventLog(
                    ts=utcnow(),
                    actor=author,
                    kind="flow_saved",
                    subject_type="flow",
                    subject_id=flow.id,
                    data={"version": version, "active": activate},
                )
            )
            await _bump(session)
        return FlowVersionInfo(flow.id, version, activate, author)

    async def activate(self, flow_key: str, version: int, *, author: str) -> None:
        async with self.db.write() as session:
            exists = await session.scalar(
                select(FlowVersion.id).where(FlowVersion.flow_key == flow_key, FlowVersion.version == version)
            )
            if exists is None:
                raise NotFound(f"flow {flow_key} has no version {version}")
            await session.execute(
                update(FlowVersion)
                .where(FlowVersion.flow_key == flow_key)
                .values(active=FlowVersion.version == version)
            )
            session.add(
                EventLog(
                    ts=utcnow(),
                    actor=author,
                    kind="flow_activated",
                    subject_type="flow",
                    subject_id=flow_key,
                    data={"version": version},
                )
            )
            await _bump(session)

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

    async def versions(self, flow_key: str) -> list[FlowVersionInfo]:
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(FlowVersion).where(FlowVersion.flow_key == flow_key).order_by(FlowVersion.version)
                )
            ).scalars()
            return [FlowVersionInfo(r.flow_key, r.version, r.active, r.created_by) for r in rows]

    async def revision(self) -> int:
        async with self.db.read() as session:
            row = await session.get(Setting, REVISION_KEY)
            return int(row.value.get("n", 0)) if row else 0


async def _bump(session: AsyncSession) -> None:
    row = await session.get(Setting, REVISION_KEY)
    if row is None:
        session.add(Setting(key=REVISION_KEY, value={"n": 1}, updated_at=utcnow()))
    else:
        row.value = {"n": int(row.value.get("n", 0)) + 1}
        row.updated_at = utcnow()
