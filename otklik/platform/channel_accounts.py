"""Channel accounts: adding them (secrets encrypted), new secrets, masking. Senders are built by the
container from each kind's declaration (`ChannelKind.sender`)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount
from otklik.clock import utcnow
from otklik.core.errors import Conflict, InvalidInput


async def add_account(
    db: Database, vault: Vault, *, kind: str, name: str, pack: str, secret: str | None, config: dict[str, Any]
) -> int:
    """Store a channel account; the secret is encrypted at rest."""
    if not name or len(name) > 120 or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidInput("account name: 1-120 letters, digits, '-', '_' or '.'")
    async with db.write() as session:
        if await session.scalar(select(ChannelAccount.id).where(ChannelAccount.name == name)) is not None:
            raise Conflict(f"a channel account named {name!r} already exists")
        account = ChannelAccount(
            kind=kind,
            name=name,
            pack=pack,
            config=config,
            enabled=True,
            created_at=utcnow(),
            secret=vault.encrypt(secret) if secret else None,
        )
        session.add(account)
        await session.flush()
        return int(account.id)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def mask(secret: str) -> str:
    return secret[:4] + "…" + secret[-2:] if len(secret) > 8 else "…"
