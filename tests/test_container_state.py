"""App-scoped state lives on the container (`Otklik`), its runtime context or its web app, never in module
globals: two containers built in one process (as the tests do all the time) share no cache, no rate-limit
bucket, no Vault and no swapped-in service, and nothing has to be cleared by hand between them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from otklik.adapters.db.models import Contact
from otklik.adapters.wildberries.accounts import WBAccount, client_for
from otklik.adapters.wildberries.ratelimit import FEEDBACKS
from otklik.bootstrap import Otklik
from otklik.capabilities.cashback.claims import source_for
from otklik.capabilities.cashback.feedbacks import (
    SOURCE_STATE,
    Review,
    StaticFeedbackSource,
    WBFeedbackSource,
    feedbacks_cache,
)
from otklik.capabilities.inbox.queries import tags_cache, tags_in_use
from otklik.clock import utcnow
from otklik.conversations.sealed import SEALED, seal_text, unseal_text
from otklik.conversations.tags import add_tag
from otklik.core.messages import EventKind, InboundEvent
from otklik.web.app import create_app
from tests.conftest import make_settings


@pytest.fixture
async def two(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Otklik, Otklik]]:
    """Two installs in one process: their own data folders (so their own Fernet keys) and databases."""
    first = Otklik.build(make_settings(tmp_path / "a", db_url))
    second = Otklik.build(make_settings(tmp_path / "b", f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"))
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


def webchat(app: Otklik) -> int:
    return next(a.id for a in app.ctx.accounts.values() if a.kind == "webchat")


async def test_two_containers_share_no_app_state(two: tuple[Otklik, Otklik]) -> None:
    a, b = two
    for one, other in ((a.ctx, b.ctx), (a, b)):
        assert one is not other
    assert a.ctx.readings is not b.ctx.readings
    assert a.ctx.wb_limiters is not b.ctx.wb_limiters
    assert a.ctx.state is not b.ctx.state
    assert a.ctx.vault is a.vault and b.ctx.vault is b.vault and a.vault is not b.vault
    assert tags_cache(a.ctx) is tags_cache(a.ctx) is not tags_cache(b.ctx)
    assert feedbacks_cache(a.ctx) is feedbacks_cache(a.ctx) is not feedbacks_cache(b.ctx)
    web_a, web_b = (
        create_app(a, worker=False, manage_lifecycle=False),
        create_app(b, worker=False, manage_lifecycle=False),
    )
    assert web_a.state.flow_drafts is not web_b.state.flow_drafts


async def test_offline_readings_are_kept_per_container(two: tuple[Otklik, Otklik]) -> None:
    a, b = two
    result = await a.ingest(InboundEvent(webchat(a), "e-1", "buyer-1", EventKind.TEXT, text="привет"))
    assert not result.duplicate
    assert len(a.ctx.readings) == 1
    assert len(b.ctx.readings) == 0


async def test_tag_suggestions_are_cached_per_container(two: tuple[Otklik, Otklik]) -> None:
    a, b = two
    async with b.db.write() as session:
        contact = Contact(created_at=utcnow())
        session.add(contact)
        await session.flush()
        await add_tag(session, contact.id, "vip", utcnow())
    async with a.db.read() as session:
        assert await tags_in_use(session, tags_cache(a.ctx)) == []
    async with b.db.read() as session:
        assert await tags_in_use(session, tags_cache(b.ctx)) == ["vip"]  # not A's cached answer
    async with a.db.read() as session:
        assert await tags_in_use(session, tags_cache(a.ctx)) == []


async def test_wb_rate_limit_buckets_are_the_containers(two: tuple[Otklik, Otklik]) -> None:
    """Clients of one account built on one container share its buckets; the other container's are its own."""
    a, b = two
    account = WBAccount(7, "wildberries", "token")
    async with (
        client_for(account, a.settings, limiters=a.ctx.wb_limiters) as sync_a,
        client_for(account, a.settings, limiters=a.ctx.wb_limiters) as buyer_a,
        client_for(account, b.settings, limiters=b.ctx.wb_limiters) as other,
    ):
        sync_a.limiters.bucket(FEEDBACKS).pause(80)  # a 429 of A's sync job
        assert buyer_a.limiters.bucket(FEEDBACKS).blocked_for() > 60
        assert other.limiters.bucket(FEEDBACKS).blocked_for() == 0


async def test_the_feedback_source_and_vault_are_the_containers(two: tuple[Otklik, Otklik]) -> None:
    a, b = two
    static = StaticFeedbackSource([Review("fb-1", 1, "ok", 5, utcnow() - timedelta(hours=1), "Анна", 1)], down=False)
    a.ctx.state[SOURCE_STATE] = static  # what a test swaps in for one install only
    assert source_for(a.ctx) is static
    live = source_for(b.ctx)
    assert isinstance(live, WBFeedbackSource) and live.ctx is b.ctx
    sealed = seal_text(a.ctx.vault, "4276 3800 1234 5678")
    assert unseal_text(a.ctx.vault, {SEALED: sealed}) == "4276 3800 1234 5678"
    assert unseal_text(b.ctx.vault, {SEALED: sealed}) is None  # another install's key cannot read it
