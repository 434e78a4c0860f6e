"""Wildberries API keys as channel accounts (kind `wildberries`): adding them (the token encrypted with the
Vault, like Telegram tokens) and building clients that share one rate-limit state per account.

The rate-limit state is not a module global: the container owns one `AccountLimiters`
(`RuntimeContext.wb_limiters`) and every caller passes it to `client_for`, so two containers in one
process (tests, a CLI command next to a server) never share buckets."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from otklik.adapters.crypto import Vault
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
#: Not blocking: reviews and cards work without it; the buyer chat stays off until a token has it.
CHAT_OFF = TokenProblem(
    "chat_off",
    "Чат с покупателями выключен: в токене нет категории «Чат с покупателями» — без неё бот не сможет читать "
    "чат и отвечать в нём. Чтобы включить чат, создайте токен с этой категорией и добавьте его заново.",
    "The buyer chat is off: the token lacks the “Buyers chat” category — without it the bot cannot read or "
    "answer the buyers chat. To turn the chat on, create a token with this category and add it again.",
    blocking=False,
)
NEEDED = ("feedbacks", "content")  # reviews (read and answer) and product cards (barcodes)
#: For a buyer waiting in a chat: give up quickly and take the general path.
INTERACTIVE_RETRY = RetryPolicy(max_attempts=2, backoff_base=0.2, backoff_max=1.0, max_retry_after=3.0)


class AccountLimiters:
    """The rate-limit buckets of each seller account (one `RateLimiters` per channel account id) of one
    install; owned by the container and passed to `client_for`."""

    def __init__(self) -> None:
        self._by_account: dict[int, RateLimiters] = {}

    def of(self, account_id: int) -> RateLimiters:
        limiters = self._by_account.get(account_id)
        if limiters is None:
            limiters = self._by_account[account_id] = RateLimiters()
        return limiters


@dataclass(frozen=True, slots=True)
class WBAccount:
    id: int
    name: str
    token: str

    def __repr__(self) -> str:  # never show the token
        return f"WBAccount(id={self.id}, name={self.name!r})"


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
    if not info.has("buyer_chat"):
        problems.append(CHAT_OFF)
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
    account: WBAccount,
    settings: Settings,
    *,
    limiters: AccountLimiters,
    retry: RetryPolicy | None = None,
    timeout: float = 30.0,
) -> WBClient:
    """A client of this account; every client of one account built with the same `limiters` (the
    container's, `RuntimeContext.wb_limiters`) shares its rate-limit buckets."""
    return WBClient(
        account.token,
        hosts=WBHosts.from_setting(settings.wb_api_url),
        limiters=limiters.of(account.id),
        retry=retry,
        timeout=timeout,
    )
