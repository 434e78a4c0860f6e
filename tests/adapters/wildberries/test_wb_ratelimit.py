"""Token bucket, retry policy and hosts: pure logic with a virtual clock (no I/O, no real waiting)."""

from __future__ import annotations

import asyncio

import pytest

from otklik.adapters.wildberries import DEFAULT_LIMITS, RateLimit, RateLimiters, RetryPolicy, TokenBucket, WBHosts


class VirtualClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def test_documented_limits_are_the_defaults() -> None:
    assert DEFAULT_LIMITS["feedbacks"] == RateLimit(rate=3.0, burst=6)
    assert DEFAULT_LIMITS["content"].burst == 5
    assert DEFAULT_LIMITS["content"].rate == pytest.approx(100 / 60)
    assert DEFAULT_LIMITS["ping"].rate == pytest.approx(0.1)


async def test_burst_goes_at_once_then_requests_are_spaced_by_the_interval() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(RateLimit.per(3, 1.0, burst=6), clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(12):
        await bucket.acquire()
        times.append(clock.now - 100.0)
    assert times[:6] == [0.0] * 6
    assert times[6:] == pytest.approx([1 / 3 * k for k in range(1, 7)])


async def test_concurrent_callers_share_one_bucket() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(RateLimit.per(3, 1.0, burst=6), clock=clock, sleep=clock.sleep)
    done: list[float] = []

    async def call() -> None:
        await bucket.acquire()
        done.append(clock.now - 100.0)

    await asyncio.gather(*(call() for _ in range(15)))
    assert len(done) == 15
    assert max(done) == pytest.approx(3.0)  # (15 - 6) / 3 s


async def test_pause_blocks_everyone_until_the_server_said_then_allows_one() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(RateLimit.per(3, 1.0, burst=6), clock=clock, sleep=clock.sleep)
    bucket.pause(2.5)
    await bucket.acquire()
    assert clock.now - 100.0 == pytest.approx(2.5)
    await bucket.acquire()
    assert clock.now - 100.0 == pytest.approx(2.5 + 1 / 3)


async def test_a_shorter_pause_does_not_shorten_a_longer_one() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(RateLimit(rate=10, burst=1), clock=clock, sleep=clock.sleep)
    bucket.pause(3)
    bucket.pause(1)
    await bucket.acquire()
    assert clock.now - 100.0 == pytest.approx(3)


def test_limiters_keep_one_bucket_per_key_and_accept_overrides() -> None:
    limiters = RateLimiters({"feedbacks": RateLimit(rate=1, burst=1)}, headroom=1.0)
    assert limiters.bucket("feedbacks") is limiters.bucket("feedbacks")
    assert limiters.bucket("feedbacks").limit == RateLimit(rate=1, burst=1)
    assert limiters.bucket("ping:http://a") is not limiters.bucket("ping:http://b")
    assert limiters.bucket("content").limit == DEFAULT_LIMITS["content"]


def test_limiters_keep_headroom_below_the_documented_rate() -> None:
    bucket = RateLimiters().bucket("feedbacks")
    assert bucket.limit == RateLimit(rate=pytest.approx(2.7), burst=6)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RateLimiters(headroom=1.5)


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(RateLimit(rate=0, burst=1))


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (7, 8.0)]:
        delays = [policy.backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_hosts_default_to_documented_prod_hosts_and_single_overrides_all() -> None:
    hosts = WBHosts()
    assert hosts.feedbacks == "https://feedbacks-api.wildberries.ru"
    assert hosts.content == "https://content-api.wildberries.ru"
    assert hosts.common == "https://common-api.wildberries.ru"
    single = WBHosts.single("http://127.0.0.1:9000/")
    assert {single.for_api(a) for a in ("common", "feedbacks", "content", "buyer_chat", "returns")} == {
        "http://127.0.0.1:9000"
    }
    assert "sandbox" in WBHosts.sandbox().feedbacks
    assert WBHosts.from_setting(None) == hosts
    assert WBHosts.from_setting("http://fake:1") == WBHosts.single("http://fake:1")
    with pytest.raises(ValueError):
        WBHosts.single("127.0.0.1:9000")
    with pytest.raises(ValueError):
        hosts.for_api("nope")
