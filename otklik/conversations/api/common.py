"""What the kernel's API routers share: the container of the request, JSON answers, the actor of a token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse

from otklik.platform.apitokens import ApiCaller
from otklik.platform.restapi import plain

if TYPE_CHECKING:
    from otklik.conversations.context import RuntimeContext


def ctx_of(request: Request) -> RuntimeContext:
    return request.app.state.otklik.ctx  # type: ignore[no-any-return]


def actor_of(caller: ApiCaller) -> str:
    return f"api:{caller.name}"[:120]


def answer(data: Any, status: int = 200) -> JSONResponse:
    """JSON with times as ISO 8601 UTC with `Z` (as in the webhooks), decimals as strings."""
    return JSONResponse(plain(data), status_code=status)
