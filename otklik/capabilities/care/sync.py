"""The WB sync job: per WB account, cache changed product cards, import new/changed feedbacks (and
classify them), draft replies for unanswered reviews and post the replies operators approved.

`otklik wb sync` runs it once; the worker runs `wb_sync_loop` (first run 30 s after start, then every
15 minutes, or the account's `sync_minutes`). Rate limits and 429s are honoured by the WB client; a 429
that asks for a longer wait stops this run and the next run resumes from the saved cursors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount
from otklik.adapters.wildberries import WBError
from otklik.adapters.wildberries.accounts import AccountLimiters, WBAccount, client_for, wb_accounts
from otklik.capabilities.care.catalog import CardsSync, sync_cards
from otklik.capabilities.care.classify import ReviewClassifier
from otklik.capabilities.care.replies import PostReport, create_drafts, post_approved
from otklik.capabilities.care.reviews import ImportReport, import_feedbacks
from otklik.capabilities.care.syncstate import save_state
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.core.errors import OtklikError

log = logging.getLogger(__name__)

FIRST_RUN_DELAY = 30.0
DEFAULT_INTERVAL = 15 * 60.0


@dataclass(frozen=True, slots=True)
class SyncReport:
    account_id: int
    account: str
    cards: CardsSync | None = None
    feedbacks: ImportReport | None = None
    drafts: int = 0
    replies: PostReport | None = None
    error: str | None = None  # what stopped the run (shown to the seller; the next run resumes)


@dataclass(frozen=True, slots=True)
class SyncOptions:
    cards: bool = True
    feedbacks: bool = True
    replies: bool = True  # draft replies and post approved ones
    full: bool = False
    date_from: datetime | None = None
    date_to: datetime | None = None


def classifier_for(account_pack: str, settings: Settings) -> ReviewClassifier | None:
    from otklik.conversations.packs import load_pack

    try:
        return ReviewClassifier.for_pack(Path(load_pack(account_pack, settings.packs_dirs).directory))
    except OtklikError as exc:
        log.warning("reviews of pack %s are not classified: %s", account_pack, exc.user_message)
        return None


async def _pack_of(db: Database, account_id: int) -> str:
    async with db.read() as session:
        account = await session.get(ChannelAccount, account_id)
        return account.pack if account else "care-ru"


async def sync_account(
    db: Database,
    settings: Settings,
    account: WBAccount,
    options: SyncOptions | None = None,
    *,
    llm: Any = None,
    limiters: AccountLimiters,
) -> SyncReport:
    """One sync of one account. Never raises for WB or input problems: the report carries the error.
    `limiters`: the container's WB rate-limit buckets (`RuntimeContext.wb_limiters`)."""
    options = options or SyncOptions()
    cards = feedbacks = posted = None
    drafts = 0
    try:
        async with client_for(account, settings, limiters=limiters) as client:
            if options.cards:
                cards = await sync_cards(db, client, account.id, full=options.full)
            if options.feedbacks:
                pack = await _pack_of(db, account.id)
                classifier = await asyncio.to_thread(classifier_for, pack, settings)
                feedbacks = await import_feedbacks(
                    db, client, account.id, classifier=classifier, date_from=options.date_from,
                    date_to=options.date_to, full=options.full,
                )  # fmt: skip
            if options.replies:
                drafts = len(await create_drafts(db, account_id=account.id, llm=llm))
                posted = await post_approved(db, client, account.id)
    except (WBError, OtklikError) as exc:
        message = exc.user_message("ru") if isinstance(exc, WBError) else exc.user_message
        log.warning("WB sync of account %s stopped: %s", account.id, exc)
        await _record(db, account.id, error=f"{message} ({exc})"[:500])
        return SyncReport(account.id, account.name, cards, feedbacks, drafts, posted, message)
    await _record(db, account.id, error=None)
    return SyncReport(account.id, account.name, cards, feedbacks, drafts, posted)


async def _record(db: Database, account_id: int, *, error: str | None) -> None:
    now = utcnow().isoformat()
    async with db.write() as session:
        if error is None:
            await save_state(session, account_id, last_run_at=now, last_ok_at=now, last_error=None)
        else:
            await save_state(session, account_id, last_run_at=now, last_error=error)


async def sync_all(
    db: Database, settings: Settings, vault: Vault, options: SyncOptions | None = None, *, llm: Any = None,
    limiters: AccountLimiters, account: str | None = None,
) -> list[SyncReport]:  # fmt: skip
    """Sync every enabled WB account (or the one named)."""
    accounts = [a for a in await wb_accounts(db, vault) if account is None or a.name == account]
    return [await sync_account(db, settings, a, options, llm=llm, limiters=limiters) for a in accounts]


def wb_sync_loop(
    db: Database,
    settings: Settings,
    vault: Vault,
    llm: Any = None,
    *,
    limiters: AccountLimiters,
    first_delay: float = FIRST_RUN_DELAY,
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The worker's background loop (run it under the Supervisor)."""

    async def loop(stop: asyncio.Event) -> None:
        delay = first_delay
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return
            except TimeoutError:
                pass
            for account in await wb_accounts(db, vault):
                if stop.is_set():
                    return
                await sync_account(db, settings, account, llm=llm, limiters=limiters)
            delay = await _interval(db)

    return loop


async def _interval(db: Database) -> float:
    """The shortest `sync_minutes` of the WB accounts (default 15 minutes, at least 1 minute)."""
    from sqlalchemy import select

    from otklik.adapters.wildberries.accounts import KIND

    async with db.read() as session:
        configs = (await session.execute(select(ChannelAccount.config).where(ChannelAccount.kind == KIND))).scalars()
        minutes = [float(c.get("sync_minutes")) for c in configs if isinstance(c.get("sync_minutes"), int | float)]
    return max(60.0, min(minutes) * 60) if minutes else DEFAULT_INTERVAL


def sync_job(app: Any) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The capability's job (`JobSpec`): WB cards, reviews and approved replies on the container's services."""
    return wb_sync_loop(app.db, app.settings, app.vault, app.ctx.llm, limiters=app.ctx.wb_limiters)
