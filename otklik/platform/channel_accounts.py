"""Channel accounts: adding them (tokens encrypted) and building their senders."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount
from otklik.channels.api.adapter import WebhookSender
from otklik.clock import utcnow
from otklik.conversations.context import RuntimeContext
from otklik.core.channel import ChannelSender
from otklik.core.errors import Conflict, InvalidInput

SenderFactory = Callable[[ChannelAccount, str | None, RuntimeContext], ChannelSender]


def _webhook(account: ChannelAccount, secret: str | None, _ctx: RuntimeContext) -> ChannelSender:
    per_second = account.config.get("per_second")
    return WebhookSender(str(account.config["url"]), secret or "", per_second=float(per_second) if per_second else None)


def _telegram(account: ChannelAccount, secret: str | None, ctx: RuntimeContext) -> ChannelSender:
    from otklik.channels.telegram.runtime import telegram_sender

    return telegram_sender(account, secret, ctx)


SENDERS: dict[str, SenderFactory] = {"webhook": _webhook, "telegram": _telegram}


def register_sender(kind: str, factory: SenderFactory) -> None:
    """Channel packages add their sender factory here (e.g. telegram)."""
    SENDERS[kind] = factory


async def build_senders(ctx: RuntimeContext, vault: Vault) -> dict[int, ChannelSender]:
    async with ctx.db.read() as session:
        accounts = (await session.execute(select(ChannelAccount).where(ChannelAccount.enabled.is_(True)))).scalars()
        out: dict[int, ChannelSender] = {}
        for account in accounts:
            factory = SENDERS.get(account.kind)
            if factory is not None:
                secret = vault.decrypt(account.secret) if account.secret else None
                out[account.id] = factory(account, secret, ctx)
    return out


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
