"""The audit log: who changed what. Written in the same transaction as the change it records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import EventLog
from otklik.clock import utcnow

# Kinds that are audit entries (shown on the audit page); the event log holds bot events too.
AUDIT_PREFIXES = (
    "user.",
    "flow.",
    "settings.",
    "channel.",
    "conversation.",
    "contacts.",
    "canned.",
    "claim.",
    "payout.",
    "review.",
    "campaign.",
    "financing.",
    "api_token.",
    "webhook.",
    "staff.",
    "guard.",
)


def audit(
    session: AsyncSession,
    actor: str,
    kind: str,
    subject_type: str,
    subject_id: object = None,
    data: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """Add one audit entry to the caller's transaction. `data` must never hold secrets or payout details."""
    session.add(
        EventLog(
            ts=now or utcnow(),
            actor=actor[:120],
            kind=kind[:64],
            subject_type=subject_type[:32],
            subject_id=None if subject_id is None else str(subject_id)[:64],
            data=data or {},
        )
    )
