"""The per-account send pace and daily cap shared by every worker (`conversations/sharedpace.py`), on SQLite,
PostgreSQL and Redis; the two-process proof is tests/integration/test_shared_limit_pg.py."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest

from otklik.bootstrap import Otklik
from otklik.conversations import sharedpace
from otklik.conversations.ratelimit import RateLimiter
from otklik.conversations.sharedpace import DailyCapReached, DbPace, Pace, RedisPace, wait_for_slot
from otklik.core.channel import ChannelLimits
from otklik.platform.channel_accounts import add_account

REDIS_URL = os.environ.get("OTKLIK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def _account(app: Otklik, name: str = "crm") -> int:
    return await add_account(
        app.db, app.vault, kind="webhook", name=name, pack="echo", secret="s", config={"url": "http://127.0.0.1:9/x"}
    )


async def _slots_and_cap(pace: Pace, account: int, other: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # slots 10 s apart: each reservation waits one interval more than the previous (minus the time between)
    delays = [await pace.reserve(account, 10.0, None) for _ in range(4)]
    assert all(d is not None for d in delays)
    got = [float(d or 0) for d in delays]
    assert got[0] <= 0.01
    for before, after in zip(got, got[1:], strict=False):
        assert 9.0 < after - before <= 10.0 + 1e-6
    assert (await pace.reserve(other, 10.0, None) or 0) <= 0.01  # another account has its own pace

    # the day's cap: three today, then none (nothing reserved), three more tomorrow
    day = datetime(2026, 3, 1, 12, tzinfo=UTC)
    monkeypatch.setattr(sharedpace, "utcnow", lambda: day)
    assert [await pace.reserve(other, 0.0, 3) is not None for _ in range(5)] == [True, True, True, False, False]
    with pytest.raises(DailyCapReached) as refused:
        await wait_for_slot(pace, other, None, 3)
    assert refused.value.retry_after == 12 * 3600
    day += timedelta(days=1)
    assert [await pace.reserve(other, 0.0, 3) is not None for _ in range(4)] == [True, True, True, False]


async def test_db_pace_spaces_slots_and_caps_the_day(otklik: Otklik, monkeypatch: pytest.MonkeyPatch) -> None:
    await _slots_and_cap(DbPace(otklik.db), await _account(otklik), await _account(otklik, "wa"), monkeypatch)


async def test_redis_pace_spaces_slots_and_caps_the_day(otklik: Otklik, monkeypatch: pytest.MonkeyPatch) -> None:
    if otklik.db.is_sqlite is False:
        pytest.skip("once is enough")
    pace = RedisPace(REDIS_URL)
    try:
        await pace.redis.ping()
    except Exception:  # noqa: BLE001
        await pace.aclose()
        pytest.skip("no Redis on 127.0.0.1:6379")
    try:
        await pace.redis.flushdb()
        await _slots_and_cap(pace, 1, 2, monkeypatch)
    finally:
        await pace.redis.flushdb()
        await pace.aclose()


async def test_daily_cap_in_the_dispatcher_reschedules_the_row(otklik: Otklik) -> None:
    account = await _account(otklik)
    limiter = RateLimiter(shared=DbPace(otklik.db))
    capped = ChannelLimits(per_day=2)
    await limiter.wait(account, "a", capped)
    await limiter.wait(account, "b", capped)
    with pytest.raises(DailyCapReached):
        await asyncio.wait_for(limiter.wait(account, "c", capped), timeout=5)
