"""The live review source against the fake WB server: both lists, the cache, and the time box (a buyer is
waiting, so WB trouble of any kind ends in "unavailable", never in a long wait)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from otklik.adapters.wildberries.accounts import client_for, wb_accounts
from otklik.adapters.wildberries.ratelimit import FEEDBACKS
from otklik.bootstrap import Otklik
from otklik.capabilities.cashback.feedbacks import FeedbacksUnavailable, WBFeedbackSource
from otklik.channels.wildberries.accounts import add_wb_account
from otklik.clock import utcnow
from otklik.testing.fake_wb import FakeFeedback, FakeWB
from tests.capabilities.cashback.conftest import GEL
from tests.conftest import make_settings

LIST = "/api/v1/feedbacks"


@pytest.fixture
async def seller(tmp_path: Path, db_url: str, fake_wb: FakeWB) -> AsyncIterator[Otklik]:
    app = Otklik.build(make_settings(tmp_path, db_url, wb_api_url=fake_wb.url))
    await app.start()
    await add_wb_account(app.db, app.vault, fake_wb.token)
    try:
        yield app
    finally:
        await app.close()


def window() -> tuple[datetime, datetime]:
    return utcnow() - timedelta(days=3), utcnow()


async def test_both_lists_are_read_and_cached(seller: Otklik, fake_wb: FakeWB) -> None:
    answered = FakeFeedback(
        id="fb-answered", nm_id=GEL, text="Хороший гель", created_date=utcnow() - timedelta(hours=1), answer="Спасибо!"
    )
    fake_wb.add_feedbacks([answered])
    source = WBFeedbackSource(seller.ctx)
    since, until = window()
    found = await source.reviews(GEL, since, until)
    assert {r.id for r in found} == {"fb-anna", "fb-olga", "fb-answered"}
    anna = next(r for r in found if r.id == "fb-anna")
    assert anna.user_name == "Анна" and anna.stars == 5 and anna.nm_id == GEL
    calls = len(fake_wb.calls_to(LIST))
    assert calls >= 2  # unanswered and answered
    assert {r.id for r in await source.reviews(GEL, since, until)} == {r.id for r in found}
    assert len(fake_wb.calls_to(LIST)) == calls  # the second claim of a burst costs nothing


async def test_an_outage_is_unavailable_and_not_cached(seller: Otklik, fake_wb: FakeWB) -> None:
    source = WBFeedbackSource(seller.ctx)
    since, until = window()
    fake_wb.fail_next(20, status=503)
    with pytest.raises(FeedbacksUnavailable, match="503"):
        await source.reviews(GEL, since, until)
    fake_wb._faults.clear()
    assert {r.id for r in await source.reviews(GEL, since, until)} == {"fb-anna", "fb-olga"}


async def test_a_hanging_server_is_cut_off_at_the_deadline(seller: Otklik, fake_wb: FakeWB) -> None:
    fake_wb.slow_next(20, delay=120)
    source = WBFeedbackSource(seller.ctx, deadline=1.0)
    with pytest.raises(FeedbacksUnavailable, match="did not answer within 1 s"):
        await source.reviews(GEL, *window())


async def test_a_paused_bucket_is_not_waited_for(seller: Otklik, fake_wb: FakeWB) -> None:
    """A 429 of another caller paused the account's feedbacks bucket for 80 s: no call, no wait."""
    (account,) = await wb_accounts(seller.db, seller.vault)
    client_for(account, seller.settings, limiters=seller.ctx.wb_limiters).limiters.bucket(FEEDBACKS).pause(80)
    source = WBFeedbackSource(seller.ctx)
    with pytest.raises(FeedbacksUnavailable, match="rate limit"):
        await source.reviews(GEL, *window())
    assert fake_wb.calls_to(LIST) == []


async def test_a_429_asking_for_a_long_wait_is_unavailable(seller: Otklik, fake_wb: FakeWB) -> None:
    fake_wb.rate_limit_next(2, retry=60)
    source = WBFeedbackSource(seller.ctx)
    with pytest.raises(FeedbacksUnavailable, match="60"):
        await source.reviews(GEL, *window())


async def test_no_wb_key_is_unavailable(tmp_path: Path, db_url: str) -> None:
    app = Otklik.build(make_settings(tmp_path, db_url))
    await app.start()
    try:
        with pytest.raises(FeedbacksUnavailable, match="no Wildberries API key"):
            await WBFeedbackSource(app.ctx).reviews(GEL, *window())
    finally:
        await app.close()
