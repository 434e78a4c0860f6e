"""Wildberries API keys as channel accounts (kind `wildberries`): storing one (the token encrypted with
the Vault). Reading them and building clients is the adapter's (`otklik.adapters.wildberries.accounts`)."""

from __future__ import annotations

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.wildberries import TokenProblem
from otklik.adapters.wildberries.accounts import KIND, check_token, wb_accounts
from otklik.core.errors import Conflict
from otklik.platform.channel_accounts import add_account


async def add_wb_account(
    db: Database, vault: Vault, token: str, *, name: str = "wildberries", pack: str = "care-ru"
) -> tuple[int, list[TokenProblem]]:
    """Store a WB API key (encrypted). Returns (account id, non-blocking problems such as "expires soon").

    The same token added twice is a Conflict; a second seller account gets another `name`."""
    token = token.strip().removeprefix("Bearer ").strip()
    problems = check_token(token)
    for account in await wb_accounts(db, vault):
        if account.token == token:
            raise Conflict(f"this token is already stored as account {account.name!r}")
    account_id = await add_account(db, vault, kind=KIND, name=name, pack=pack, secret=token, config={})
    return account_id, problems
