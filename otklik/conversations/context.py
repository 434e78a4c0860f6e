"""What the runtime's use cases share: database, settings, channel accounts, engines, senders, and the
app-scoped state of one install (caches, the Vault, the WB rate-limit buckets) — never module globals, so
two containers in one process share nothing."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.media import MediaStore
from otklik.adapters.wildberries.accounts import AccountLimiters
from otklik.config import Settings
from otklik.conversations.notify import Notifier
from otklik.core.channel import ChannelSender
from otklik.core.errors import NotFound
from otklik.core.flows.engine import Engine
from otklik.core.understanding import Understanding

#: Recent offline readings, (id(classifier), language, text) -> (classifier, reading); see `understanding`.
Readings = OrderedDict[tuple[int, str | None, str], tuple[object, Understanding]]


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: int
    kind: str
    name: str
    pack: str


@dataclass(slots=True)
class RuntimeContext:
    """Built once by the composition root (`otklik.bootstrap`)."""

    db: Database
    settings: Settings
    media: MediaStore
    vault: Vault  # the install's Vault (`Otklik.vault`): channel secrets, sealed answers, payout details
    notifier: Notifier = field(default_factory=Notifier)
    accounts: dict[int, AccountInfo] = field(default_factory=dict)
    engines: dict[str, Engine] = field(default_factory=dict)  # by pack id
    senders: dict[int, ChannelSender] = field(default_factory=dict)  # by channel account id
    local_kinds: frozenset[str] = frozenset({"webchat"})  # from the channel kinds (`ChannelKind.local`)
    marketplace_kinds: frozenset[str] = frozenset()  # `ChannelKind.marketplace`: their chat rules apply
    action_starter: Callable[[int], None] | None = None
    llm: Any = None  # otklik.conversations.llm.LLMClient when an LLM is configured
    intent_descriptions: dict[str, dict[str, str]] = field(default_factory=dict)  # by pack id
    # (channel account id, now) -> "an operator answers from Monday 09:00" outside business hours, else None
    after_hours_text: Callable[[int, datetime], str | None] | None = None
    readings: Readings = field(default_factory=OrderedDict)  # the offline readings cache (`understanding`)
    wb_limiters: AccountLimiters = field(default_factory=AccountLimiters)  # WB rate-limit buckets per account
    # app-scoped state of capabilities, keyed "<capability>.<name>" (e.g. "inbox.tags_cache"); each
    # capability creates and reads its own entries
    state: dict[str, Any] = field(default_factory=dict)
    # capabilities' `erase` functions by capability name, run by `people.erase` in its transaction
    erasers: dict[str, Callable[..., Awaitable[Mapping[str, int]]]] = field(default_factory=dict)

    def engine_for(self, account_id: int) -> Engine:
        account = self.accounts.get(account_id)
        if account is None or account.pack not in self.engines:
            raise NotFound("channel account or its pack is not loaded")
        return self.engines[account.pack]

    def kind_of(self, account_id: int) -> str:
        """The channel kind of an account ("telegram", "webchat"; "unknown" when it is not loaded)."""
        account = self.accounts.get(account_id)
        return account.kind if account is not None else "unknown"

    def is_local(self, account_id: int) -> bool:
        account = self.accounts.get(account_id)
        return account is not None and account.kind in self.local_kinds

    def sender(self, account_id: int) -> ChannelSender:
        sender = self.senders.get(account_id)
        if sender is None:
            raise NotFound(f"no sender for channel account {account_id}")
        return sender

    def start_action(self, timer_id: int) -> None:
        if self.action_starter is not None:
            self.action_starter(timer_id)
