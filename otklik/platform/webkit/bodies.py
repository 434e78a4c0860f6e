"""Request bodies read with a cap: inbound webhooks of every channel kind use these."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

MAX_BODY = 256 * 1024


class BodyTooLarge(Exception):
    """The request body is over the cap."""


def declared_too_large(request: Request, limit: int = MAX_BODY) -> bool:
    """A `Content-Length` over the cap is refused before a byte of the body is read."""
    declared = request.headers.get("content-length")
    return declared is not None and declared.strip().isdigit() and int(declared) > limit


async def read_capped(request: Request, limit: int = MAX_BODY) -> bytes:
    """Read the body as a stream; stop (and raise) as soon as more than `limit` bytes arrived."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def too_large() -> JSONResponse:
    return JSONResponse({"detail": "body too large"}, status_code=413, headers={"Connection": "close"})
