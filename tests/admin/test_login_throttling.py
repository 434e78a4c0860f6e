"""Issue 13: sign-in throttling must hold under parallel requests and must not let a stranger lock the owner out.

Real SQLite and PostgreSQL, real argon2; only the clock of `otklik.platform.users` is frozen/advanced by hand.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import EventLog, LoginFailure
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.platform import users as users_mod
from otklik.platform.users import (
    THROTTLE_LOGIN_DELAY,
    THROTTLE_PAIR_FREE,
    THROTTLE_PAIR_MAX_DELAY,
    THROTTLE_PER_IP,
    THROTTLE_PER_LOGIN,
    LoginRefused,
    LoginThrottled,
    authenticate,
)
from otklik.platform.webkit.deps import COOKIE
from tests.fixtures.admin import PASSWORD, csrf_of

WRONG = "wrong password 123"


class FrozenClock:
    """Stands still unless advanced, so parallel requests all see the same instant."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def fast_password_hashes() -> None:
    """These tests race real argon2 verifications: the product's hasher, not the tests' cheap one."""


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(users_mod, "utcnow", frozen)
    return frozen


async def _attempt(otklik: Otklik, login: str, password: str, ip: str) -> str:
    try:
        await authenticate(otklik.db, login, password, ip)
    except LoginThrottled:
        return "throttled"
    except LoginRefused:
        return "refused"
    return "ok"


async def _counts(otklik: Otklik) -> tuple[int, int]:
    async with otklik.db.read() as session:
        failures = await session.scalar(select(func.count(LoginFailure.id)))
        audited = await session.scalar(select(func.count(EventLog.id)).where(EventLog.kind == "user.login_failed"))
    return int(failures or 0), int(audited or 0)


async def test_parallel_wrong_passwords_for_one_login_bypassed_the_throttle(otklik: Otklik, users, clock) -> None:  # type: ignore[no-untyped-def]
    outcomes = await asyncio.gather(*(_attempt(otklik, "owner", WRONG, "198.51.100.7") for _ in range(40)))
    assert outcomes.count("refused") == THROTTLE_PAIR_FREE
    assert outcomes.count("throttled") == 40 - THROTTLE_PAIR_FREE
    assert await _counts(otklik) == (THROTTLE_PAIR_FREE, THROTTLE_PAIR_FREE)  # only those were checked
    # the right password from that address is throttled too, right now
    assert await _attempt(otklik, "owner", PASSWORD, "198.51.100.7") == "throttled"


async def test_parallel_wrong_passwords_for_one_login_from_many_addresses_bypassed_the_bound(  # type: ignore[no-untyped-def]
    otklik: Otklik, users, clock
) -> None:
    outcomes = await asyncio.gather(*(_attempt(otklik, "owner", WRONG, f"203.0.113.{i}") for i in range(40)))
    assert outcomes.count("refused") == THROTTLE_PER_LOGIN
    assert outcomes.count("throttled") == 40 - THROTTLE_PER_LOGIN
    assert await _counts(otklik) == (THROTTLE_PER_LOGIN, THROTTLE_PER_LOGIN)


async def test_parallel_wrong_passwords_from_one_address_across_logins_bypassed_the_cap(  # type: ignore[no-untyped-def]
    otklik: Otklik, users, clock
) -> None:
    total = THROTTLE_PER_IP + 10
    outcomes = await asyncio.gather(*(_attempt(otklik, f"guess{i}", WRONG, "192.0.2.66") for i in range(total)))
    assert outcomes.count("refused") == THROTTLE_PER_IP
    assert outcomes.count("throttled") == total - THROTTLE_PER_IP
    assert await _counts(otklik) == (THROTTLE_PER_IP, THROTTLE_PER_IP)
    # a full address waits for its oldest failure to leave the window; other addresses are not affected
    with pytest.raises(LoginThrottled) as blocked:
        await authenticate(otklik.db, "owner", PASSWORD, "192.0.2.66")
    assert blocked.value.seconds == 15 * 60
    assert (await authenticate(otklik.db, "owner", PASSWORD, "192.0.2.1")).login == "owner"


async def test_a_strangers_failures_locked_the_owner_out(otklik: Otklik, users, clock) -> None:  # type: ignore[no-untyped-def]
    # a stranger guesses the owner's password from several addresses for 30 s, as fast as allowed
    start = clock.now
    refused = 0
    while clock.now - start < timedelta(seconds=30):
        ip = f"203.0.113.{refused % 4}"
        outcome = await _attempt(otklik, "owner", WRONG, ip)
        if outcome == "refused":
            refused += 1
        else:
            clock.advance(0.5)
    assert refused > THROTTLE_PER_LOGIN  # the bound per login was reached and kept being hit
    # right after the stranger's last failure, the owner from their own address is in within the short delay
    waited = 0.0
    while (outcome := await _attempt(otklik, "owner", PASSWORD, "192.0.2.10")) == "throttled":
        clock.advance(0.5)
        waited += 0.5
        assert waited <= THROTTLE_LOGIN_DELAY.total_seconds()
    assert outcome == "ok"


async def test_the_delay_grows_per_login_and_address(otklik: Otklik, users, clock) -> None:  # type: ignore[no-untyped-def]
    ip = "198.51.100.20"
    for _ in range(THROTTLE_PAIR_FREE):
        assert await _attempt(otklik, "owner", WRONG, ip) == "refused"
    waits = []
    for _ in range(10):
        with pytest.raises(LoginThrottled) as throttled:
            await authenticate(otklik.db, "owner", WRONG, ip)
        waits.append(throttled.value.seconds)
        clock.advance(throttled.value.seconds - 0.5)
        assert await _attempt(otklik, "owner", WRONG, ip) == "throttled"  # not a moment early
        clock.advance(0.5)
        assert await _attempt(otklik, "owner", WRONG, ip) == "refused"
    cap = int(THROTTLE_PAIR_MAX_DELAY.total_seconds())
    assert waits == [min(2**i, cap) for i in range(10)]
    assert waits[-1] == cap
    # another address waits only the short delay of the bound per login (reached by now), not this address's
    with pytest.raises(LoginThrottled) as elsewhere:
        await authenticate(otklik.db, "owner", WRONG, "192.0.2.10")
    assert elsewhere.value.seconds == THROTTLE_LOGIN_DELAY.total_seconds()
    clock.advance(THROTTLE_LOGIN_DELAY.total_seconds())
    assert await _attempt(otklik, "owner", WRONG, "192.0.2.10") == "refused"
    # a success clears this address's failures: the next typo costs no wait
    clock.advance(cap)
    assert await _attempt(otklik, "owner", PASSWORD, ip) == "ok"
    assert await _attempt(otklik, "owner", WRONG, ip) == "refused"


async def test_the_login_page_says_how_long_to_wait(anon: httpx.AsyncClient, users, clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(THROTTLE_PAIR_FREE):
        page = await anon.get("/admin/login")
        r = await anon.post(
            "/admin/login", data={"login": "owner", "password": WRONG, "csrf_token": csrf_of(page.text)}
        )
        assert r.status_code == 401
    page = await anon.get("/admin/login")
    blocked = await anon.post(
        "/admin/login", data={"login": "owner", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert blocked.status_code == 429 and COOKIE not in blocked.cookies
    assert blocked.headers["retry-after"] == "1"
    assert "1 с." in blocked.text or "1 s." in blocked.text
    clock.advance(1)
    page = await anon.get("/admin/login")
    ok = await anon.post(
        "/admin/login", data={"login": "owner", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert ok.status_code == 303
