"""What every CRM connector does, and the pieces they share: the outcome of a call (`CrmError`), the external
ids kept per lead / booking (`Link`), a leaky bucket for the CRMs' request limits, the HTTP client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from otklik.core.errors import InvalidInput

TIMEOUT = 15.0
MAX_ANSWER = 2 * 1024 * 1024


class CrmError(Exception):
    """A call that did not succeed. `retry`: worth trying again later (the CRM is down, rate-limited); else a
    clear failure an administrator must fix (a revoked webhook, a mapped field that no longer exists)."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None) -> None:
        super().__init__(message[:480])
        self.message = message[:480]
        self.retry = retry
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Link:
    """The CRM's ids of one local lead or booking (`crm_links`)."""

    contact: str | None = None
    record: str | None = None  # the CRM's lead
    activity: str | None = None  # the booking's to-do (Bitrix24) or task (amoCRM)

    def but(self, **changes: str | None) -> Link:
        return replace(self, **changes)


Save = Callable[[Link], Awaitable[None]]


class Connector(Protocol):
    kind: str

    async def check(self) -> str:
        """One cheap authenticated call; a line describing the CRM (raises CrmError)."""
        ...

    async def lead(self, data: Mapping[str, Any], link: Link | None, save: Save, *, retrying: bool) -> Link:
        """Create the lead of a `lead.created` event (or find the one a lost attempt created)."""
        ...

    async def booking(
        self, event: str, data: Mapping[str, Any], lead: Link | None, link: Link | None, save: Save, *, retrying: bool
    ) -> Link:
        """Hand over a `booking.*` event: the lead and the booking's to-do created once, then updated."""
        ...

    async def aclose(self) -> None: ...


class LeakyBucket:
    """The CRMs' request limit as a leaky bucket: `burst` requests at once, then `rate` a second (Bitrix24: 2/s,
    burst 50; amoCRM: 7/s). `clock` and `sleep` are injectable (the tests drive them without waiting)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self.level = 0.0
        self.at = clock()
        self.waited = 0.0

    def _leak(self) -> None:
        now = self.clock()
        self.level = max(0.0, self.level - (now - self.at) * self.rate)
        self.at = now

    def wait_for_next(self) -> float:
        self._leak()
        return max(0.0, (self.level + 1 - self.burst) / self.rate)

    async def acquire(self) -> None:
        wait = self.wait_for_next()
        if wait > 0:
            self.waited += wait
            await self.sleep(wait)
            self._leak()
            self.level = min(self.level, self.burst - 1.0)  # we waited for one slot to leak
        self.level += 1

    def fill(self) -> None:
        """The CRM said the limit is reached (503 QUERY_LIMIT_EXCEEDED, 429): it is full, whatever we counted."""
        self._leak()
        self.level = float(self.burst)


def check_base_url(raw: str, what: str) -> str:
    """https, or http to the loopback (the fakes); no credentials in the URL, no fragment."""
    url = (raw or "").strip()
    if not url or len(url) > 500 or not url.isprintable() or any(c.isspace() for c in url):
        raise InvalidInput(f"{what}: an https:// URL of at most 500 characters")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise InvalidInput(f"{what}: not a valid URL") from None
    host = (parts.hostname or "").lower()
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InvalidInput(f"{what}: must start with https://")
    if not host or parts.username or parts.password or parts.fragment or parts.query:
        raise InvalidInput(f"{what}: a host, and no user, password, ?query or #fragment")
    return url


def http_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False, transport=transport)


def answer_json(response: httpx.Response) -> Any:
    """The JSON of an answer, or None when it is not JSON (an HTML error page of a proxy)."""
    if len(response.content) > MAX_ANSWER:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def text(data: Mapping[str, Any], key: str, limit: int = 255) -> str:
    value = data.get(key)
    return "" if value is None else str(value).strip()[:limit]
