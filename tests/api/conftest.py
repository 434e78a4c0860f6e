"""The REST API's tests: a client on the ASGI app, tokens made the way `otklik api-tokens create` makes them."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import httpx
import pytest

from otklik.bootstrap import Otklik
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.apitokens import create_token


@pytest.fixture
async def http(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")


@pytest.fixture
def token(otklik: Otklik) -> Callable[..., object]:
    """`await token("contacts.read,contacts.write")` -> the Authorization header of a new token."""
    made = [0]

    async def make(scopes: str, name: str | None = None) -> dict[str, str]:
        made[0] += 1
        _id, secret = await create_token(otklik.db, name or f"t{made[0]}", scopes, actor="test")
        return {"Authorization": f"Bearer {secret}"}

    return make


_EVENTS = itertools.count(1)


def webchat_id(app: Otklik) -> int:
    return next(a.id for a in app.ctx.accounts.values() if a.kind == "webchat")


async def say(app: Otklik, text: str, sender: str = "buyer-1", ext: str | None = None) -> int:
    """A buyer's message on the web chat; returns the conversation id."""
    event = InboundEvent(webchat_id(app), ext or f"e{next(_EVENTS)}-{sender}", sender, EventKind.TEXT, text=text)
    result = await app.ingest(event)
    assert result.conversation_id is not None
    return result.conversation_id
