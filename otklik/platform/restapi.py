"""What every REST API route (`/api/v1/…`, docs/api.md) shares: the one error shape, capped JSON bodies that
refuse unknown fields, opaque cursors, idempotency keys on POSTs and the per-token pace.

- Errors: `{"error": CODE, "message": TEXT}` with the HTTP status (`ApiError`; the web app turns FastAPI's
  own 404/405/422 under `/api/` into the same shape, see `web.app`).
- Paging: `?limit=1..200&cursor=…`; the answer is `{"data": [...], "next_cursor": "…" | null}`. A cursor is
  opaque (base64url of `<resource>:<last id>`); one of another resource, or not ours, is a 422 `cursor`.
- `Idempotency-Key` on a POST: the key is reserved before the work runs; the answer (any status below 500
  but 429) is kept per token for `api_idempotency_hours`; a retry with the same key and the same request
  gets the same status and body (`Idempotent-Replayed: true`) without doing the work again; the same key
  with another request is a 422 `idempotency_key`; a retry while the first is still running is a 409
  `idempotency_in_progress`.
- Pace: a token bucket per API token in each process (`api_requests_per_minute`, `api_burst`): over it,
  429 `rate_limited` with `Retry-After`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from otklik.adapters.db.models import ApiIdempotency
from otklik.clock import utcnow
from otklik.platform.webhooks.events import iso
from otklik.platform.webkit.bodies import BodyTooLarge, declared_too_large, read_capped
from otklik.platform.webkit.params import BIGINT_MAX

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


class ApiError(Exception):
    """An answer of the REST API in the one error shape."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.headers)


def plain(value: Any) -> Any:
    """A value as the API writes it: times as `iso` (UTC, milliseconds, Z), money (`Decimal`) as strings,
    tuples as lists, recursively."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=dict(headers or {}))


def code_of(status: int) -> str:
    return CODES.get(status, "error")


def error_responses(*statuses: int) -> Any:  # `{200: …} | error_responses(…)` in `responses=`
    """OpenAPI `responses` for the error statuses of a route, each with the error shape and an example."""
    described = {
        400: "bad request",
        401: "no, an unknown or a revoked API token",
        403: "the token lacks the scope",
        404: "no such resource",
        409: "conflict with the resource's state, or the same Idempotency-Key still running",
        413: "body over the limit",
        422: "refused input: the code names the field (`cursor`, `limit`, `text`, …) or is `invalid`",
        429: "over the token's pace; retry after `Retry-After` seconds",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        example = {"error": code_of(status), "message": described.get(status, "error")}
        out[status] = {
            "description": described.get(status, "error"),
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["error", "message"],
                        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                    },
                    "example": example,
                }
            },
        }
    return out


# --- bodies -------------------------------------------------------------------------------------------


async def read_json(request: Request, fields: Iterable[str], *, required: Sequence[str] = ()) -> dict[str, Any]:
    """The request's JSON object, at most `api_max_body_bytes`; unknown fields, another content type, bad
    UTF-8 or JSON, NaN and absurd nesting are refused in the error shape. Decimals stay `Decimal`."""
    limit = int(request.app.state.otklik.settings.api_max_body_bytes)
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    if declared_too_large(request, limit):
        raise ApiError(413, "too_large", f"the body is over {limit} bytes", {"Connection": "close"})
    try:
        raw = await read_capped(request, limit)
    except BodyTooLarge:
        raise ApiError(413, "too_large", f"the body is over {limit} bytes", {"Connection": "close"}) from None
    request.state.api_body = raw
    return parse_json(raw, fields, required=required)


def parse_json(raw: bytes, fields: Iterable[str], *, required: Sequence[str] = ()) -> dict[str, Any]:
    allowed = tuple(fields)

    def no_constant(name: str) -> Any:
        raise ApiError(422, "invalid", f"{name} is not a number")

    def as_decimal(text: str) -> Decimal:
        try:
            return Decimal(text)
        except InvalidOperation:
            raise ApiError(422, "invalid", f"{text[:20]} is not a number") from None

    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw.decode("utf-8"), parse_float=as_decimal, parse_constant=no_constant)
        except UnicodeDecodeError:
            raise ApiError(422, "invalid", "the body must be UTF-8 JSON") from None
        except json.JSONDecodeError as exc:
            raise ApiError(
                422, "invalid", f"the body is not JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except (ValueError, RecursionError):
            raise ApiError(422, "invalid", "the body has a number too long or nesting too deep") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid", "the body must be a JSON object")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise ApiError(
            422, "invalid", f"unknown field {str(unknown[0])[:40]!r}; the fields are {', '.join(allowed) or 'none'}"
        )
    for name in required:
        if data.get(name) is None:
            raise ApiError(422, name, f"{name}: required")
    return data


def check_query(request: Request, allowed: Iterable[str]) -> None:
    """Refuse a query parameter the route does not know (a typo would otherwise be ignored silently)."""
    known = set(allowed)
    for name in request.query_params:
        if name not in known:
            shown = ", ".join(sorted(known)) or "none"
            raise ApiError(422, "invalid", f"unknown query parameter {name[:40]!r}; the parameters are {shown}")


# --- paging -------------------------------------------------------------------------------------------


def encode_cursor(resource: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{resource}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(resource: str, cursor: str | None) -> int | None:
    """The id a cursor of `resource` points after; None for no cursor. Anything else: 422 `cursor`."""
    if cursor is None or cursor == "":
        return None
    bad = ApiError(422, "cursor", "cursor: not a cursor of this list; use next_cursor of the previous page as is")
    if len(cursor) > 64 or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise bad from None
    kind, _, number = text.partition(":")
    if kind != resource or not number.isdigit() or len(number) > 19 or not 1 <= int(number) <= BIGINT_MAX:
        raise bad
    return int(number)


def page_limit(raw: int | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not 1 <= raw <= MAX_LIMIT:
        raise ApiError(422, "limit", f"limit: 1 to {MAX_LIMIT}")
    return raw


def page(resource: str, items: list[dict[str, Any]], limit: int, more: bool) -> dict[str, Any]:
    """`{"data", "next_cursor"}`: `items` holds at most `limit` rows, each with an `id`."""
    return {"data": items, "next_cursor": encode_cursor(resource, int(items[-1]["id"])) if more and items else None}


# --- idempotency --------------------------------------------------------------------------------------

Handler = Callable[[], Awaitable[JSONResponse]]


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + path.encode() + b"\0" + body).hexdigest()


async def idempotent(request: Request, token_id: int, run: Handler) -> JSONResponse:
    """Run `run` once per `Idempotency-Key` of this token (see the module's text); without a key, just run."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return await run()
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(422, "idempotency_key", "Idempotency-Key: 1-200 printable ASCII characters, no spaces")
    db = request.app.state.otklik.db
    settings = request.app.state.otklik.settings
    hashed = request_hash(request.method, request.url.path, getattr(request.state, "api_body", b""))
    now = utcnow()
    row_id: int | None = None
    for _attempt in range(2):
        try:
            async with db.write() as session:
                cutoff = now - timedelta(hours=settings.api_idempotency_hours)
                await session.execute(delete(ApiIdempotency).where(ApiIdempotency.created_at < cutoff))
                row = await session.scalar(
                    select(ApiIdempotency).where(ApiIdempotency.token_id == token_id, ApiIdempotency.key == key)
                )
                if row is not None:
                    if row.request_hash != hashed:
                        raise ApiError(422, "idempotency_key", "Idempotency-Key: this key was used for another request")
                    if row.status_code is None:
                        raise ApiError(
                            409, "idempotency_in_progress", "a request with this Idempotency-Key is still running"
                        )
                    replay = JSONResponse(json.loads(row.response or "null"), status_code=row.status_code)
                    replay.headers["Idempotent-Replayed"] = "true"
                    return replay
                stored = ApiIdempotency(token_id=token_id, key=key, request_hash=hashed, created_at=now)
                session.add(stored)
                await session.flush()
                row_id = int(stored.id)
            break
        except IntegrityError:  # a concurrent request took the key first: read what it left
            continue
    if row_id is None:
        raise ApiError(409, "idempotency_in_progress", "a request with this Idempotency-Key is still running")
    try:
        response = await run()
    except BaseException:
        async with db.write() as session:
            await session.execute(delete(ApiIdempotency).where(ApiIdempotency.id == row_id))
        raise
    async with db.write() as session:
        if response.status_code >= 500 or response.status_code == 429:  # worth retrying: forget the key
            await session.execute(delete(ApiIdempotency).where(ApiIdempotency.id == row_id))
        else:
            await session.execute(
                update(ApiIdempotency)
                .where(ApiIdempotency.id == row_id)
                .values(status_code=response.status_code, response=bytes(response.body).decode("utf-8"),
                        finished_at=utcnow())
            )  # fmt: skip
    return response


# --- pace ---------------------------------------------------------------------------------------------


class TokenPace:
    """A token bucket per API token (this process): `per_minute` on average, `burst` at once."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}

    def take(self, token_id: int) -> float:
        """0 when the request may go now, else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        level, at = self._buckets.get(token_id, (self.burst, now))
        level = min(self.burst, level + (now - at) * self.rate)
        if level >= 1.0:
            self._buckets[token_id] = (level - 1.0, now)
            return 0.0
        self._buckets[token_id] = (level, now)
        if len(self._buckets) > 10_000:  # revoked and forgotten tokens: start afresh
            self._buckets = {token_id: (level, now)}
        return (1.0 - level) / self.rate


def pace_of(request: Request) -> TokenPace | None:
    pace = getattr(request.app.state, "api_pace", None)
    if pace is None:
        settings = request.app.state.otklik.settings
        pace = TokenPace(settings.api_requests_per_minute, settings.api_burst)
        request.app.state.api_pace = pace
    return pace if isinstance(pace, TokenPace) else None


def check_pace(request: Request, token_id: int) -> None:
    pace = pace_of(request)
    wait = pace.take(token_id) if pace is not None else 0.0
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests with this API token; slow down",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
