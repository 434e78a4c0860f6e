"""Wildberries API keys as channel accounts (kind `wildberries`): adding them (the token encrypted with the
Vault, like Telegram tokens) and building clients that share one rate-limit state per account."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from otklik.adapters.crypto import Vault, load_or_create_key
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount
from otklik.adapters.wildberries import (
    RateLimiters,
    RetryPolicy,
    TokenProblem,
    WBClient,
    WBHosts,
    inspect_token,
    token_problems,
)
from otklik.config import Settings
from otklik.core.errors import InvalidInput

KIND = "wildberries"
NEEDED = ("feedbacks", "content")  # reviews (read and answer) and product cards (barcodes)
#: For a buyer waiting in a chat: give up quickly and take the general path.
INTERACTIVE_RETRY = RetryPolicy(max_attempts=2, backoff_base=0.2, backoff_max=1.0, max_retry_after=3.0)

_LIMITERS: dict[tuple[str, int], RateLimiters] = {}


@dataclass(frozen=True, slots=True)
class WBAccount:
    id: int
    name: str
    token: str

    def __repr__(self) -> str:  # never show the token
        return f"WBAccount(id={self.id}, name={self.name!r})"


def vault_for(settings: Settings) -> Vault:
    return Vault(load_or_create_key(settings.fernet_key, settings.data_dir))


def check_token(token: str) -> list[TokenProblem]:
    """Problems of a pasted token; raises InvalidInput when it is not a WB token or cannot be used at all."""
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    try:
        info = inspect_token(token)
    except ValueError as exc:
        raise InvalidInput(f"this is not a Wildberries API token: {exc}") from None
    problems = token_problems(info, NEEDED)
    blocking = [p for p in problems if p.blocking]
    if blocking:
        raise InvalidInput(" ".join(p.text("ru") for p in blocking), details=blocking)
    return problems


async def wb_accounts(db: Database, vault: Vault) -> list[WBAccount]:
    """Enabled WB accounts with their decrypted tokens."""
    async with db.read() as session:
        rows = (
            await session.execute(
                select(ChannelAccount)
                .where(ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True))
                .order_by(ChannelAccount.id)
            )
        ).scalars()
        return [WBAccount(a.id, a.name, vault.decrypt(a.secret)) for a in rows if a.secret]


def client_for(
    account: WBAccount, settings: Settings, *, retry: RetryPolicy | None = None, timeout: float = 30.0
) -> WBClient:
    """A client of this account; every client of one account shares its rate-limit buckets."""
    key = (settings.db_url, account.id)
    limiters = _LIMITERS.get(key)
    if limiters is None:
        limiters = _LIMITERS[key] = RateLimiters()
    return WBClient(
        account.token,
        hosts=WBHosts.from_setting(settings.wb_api_url),
        limiters=limiters,
        retry=retry,
        timeout=timeout,
    )
