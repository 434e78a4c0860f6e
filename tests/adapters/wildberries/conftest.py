"""Fixtures: a fake WB server on loopback and real clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from otklik.adapters.wildberries import RateLimit, RetryPolicy, WBClient, WBHosts
from otklik.adapters.wildberries.ratelimit import BUYER_CHAT, CHAT_DOWNLOAD, CONTENT, FEEDBACKS, PING
from otklik.testing.fake_wb import FakeWB

# For tests that are not about rate limiting: effectively no client-side limit.
UNLIMITED = {
    group: RateLimit(rate=10_000, burst=10_000) for group in (FEEDBACKS, CONTENT, PING, BUYER_CHAT, CHAT_DOWNLOAD)
}
FAST_RETRY = RetryPolicy(max_attempts=4, backoff_base=0.02, backoff_max=0.05, max_retry_after=5)

MakeClient = Callable[..., WBClient]


@pytest.fixture
async def fake() -> AsyncIterator[FakeWB]:
    async with FakeWB() as server:
        yield server


@pytest.fixture
async def make_client(fake: FakeWB) -> AsyncIterator[MakeClient]:
    """Build real clients against the fake; closed at teardown. Defaults: unlimited, fast retries."""
    made: list[WBClient] = []

    def build(token: str | None = None, **kw: Any) -> WBClient:
        kw.setdefault("hosts", WBHosts.single(fake.url))
        kw.setdefault("retry", FAST_RETRY)
        kw.setdefault("timeout", 5.0)
        if "limiters" not in kw:
            kw.setdefault("limits", UNLIMITED)
        client = WBClient(token or fake.token, **kw)
        made.append(client)
        return client

    yield build
    for client in made:
        await client.aclose()


@pytest.fixture
def client(make_client: MakeClient) -> WBClient:
    return make_client()
