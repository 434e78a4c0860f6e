"""Channel accounts as the admin sees them, whatever their kind: list (secrets masked), enable or disable,
test the connection. What is particular to a kind (connecting it, masking its secret, its detail line, its
test) is declared by the kind (`otklik/channels/<kind>/__init__.py`, a `ChannelKind`); this module receives
the kinds through the container (`otklik.channel_kinds`) and never names one.

Secrets never leave through here unmasked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.audit import audit
from otklik.platform.channel_accounts import mask
from otklik.platform.plugins import ChannelKind, resolve

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the settings page shows of an account: never the secret itself."""

    id: int
    kind: str
    name: str
    pack: str
    enabled: bool
    secret: str  # masked, or '' when there is none
    detail: str  # @username for a bot, the URL host for an API webhook, a token's expiry
    manage: str = ""  # the kind's own admin page of this account (`ChannelKind.manage`), if it has one


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    message: str


def _view(account: ChannelAccount, decrypt: Any, kinds: dict[str, ChannelKind]) -> AccountView:
    kind = kinds.get(account.kind)
    plain: str | None = None
    secret = ""
    if account.secret:
        try:
            plain = decrypt(account.secret)
            secret = (kind.mask if kind and kind.mask else mask)(plain)
        except Exception:  # a key change makes old secrets unreadable; say so, never crash the page
            secret = "?"  # noqa: S105 - a placeholder shown instead of an unreadable secret
    detail = ""
    if kind is not None and kind.detail is not None:
        try:
            detail = kind.detail(account.config or {}, plain)
        except Exception:  # a malformed config shows no detail rather than breaking the list
            detail = ""
    manage = kind.manage.format(id=account.id) if kind is not None and kind.manage else ""
    return AccountView(account.id, account.kind, account.name, account.pack, account.enabled, secret, detail, manage)


async def list_accounts(otklik: Any) -> list[AccountView]:
    async with otklik.db.read() as session:
        rows = (await session.execute(select(ChannelAccount).order_by(ChannelAccount.id).limit(500))).scalars().all()
    return [_view(a, otklik.vault.decrypt, otklik.channel_kinds) for a in rows]


def check_name(name: str) -> str:
    name = name.strip()
    if name and not _NAME.match(name):
        raise InvalidInput("account name: 1-120 Latin letters, digits, '-', '_' or '.'")
    return name


def check_pack(otklik: Any, pack: str) -> str:
    """A pack this install has; InvalidInput (the name capped) otherwise."""
    if pack not in otklik.available_packs():
        raise InvalidInput(f"unknown pack {pack[:64]!r}")
    return pack


async def audit_added(otklik: Any, actor: str, account_id: int, data: dict[str, Any]) -> None:
    async with otklik.db.write() as session:
        audit(session, actor, "channel.add", "channel_account", account_id, data)


async def set_enabled(otklik: Any, account_id: int, enabled: bool, actor: str) -> None:
    async with otklik.db.write() as session:
        account = await session.get(ChannelAccount, account_id, with_for_update=True)
        if account is None:
            raise NotFound("no such channel account")
        if account.enabled != enabled:
            account.enabled = enabled
            kind = "channel.enable" if enabled else "channel.disable"
            audit(session, actor, kind, "channel_account", account_id, {"name": account.name, "kind": account.kind})


async def check_connection(otklik: Any, account_id: int) -> Check:
    """The kind's own connection test (getMe, a signed ping, WB's /ping …)."""
    async with otklik.db.read() as session:
        account = await session.get(ChannelAccount, account_id)
    if account is None:
        raise NotFound("no such channel account")
    kind = otklik.channel_kinds.get(account.kind)
    if kind is None or kind.check is None:
        return Check(True, f"{account.kind}: no connection test for this kind")
    try:
        secret = otklik.vault.decrypt(account.secret) if account.secret else ""
    except Exception:  # the key changed since the secret was stored
        return Check(False, "the stored token cannot be decrypted (was the encryption key changed?)")
    result: Check = await resolve(kind.check)(otklik, account, secret)
    return result
