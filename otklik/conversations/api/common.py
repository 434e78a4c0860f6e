"""What the kernel's API routers share: the container of the request, JSON answers, the actor of a token."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse

from otklik.platform.apitokens import ApiCaller
from otklik.platform.webhooks.events import iso

if TYPE_CHECKING:
    from otklik.conversations.context import RuntimeContext


def ctx_of(request: Request) -> RuntimeContext:
    return request.app.state.otklik.ctx  # type: ignore[no-any-return]


def actor_of(caller: ApiCaller) -> str:
    return f"api:{caller.name}"[:120]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def answer(data: Any, status: int = 200) -> JSONResponse:
    """JSON with times as ISO 8601 UTC with `Z` (as in the webhooks), decimals as strings."""
    return JSONResponse(_plain(data), status_code=status)
