"""API tokens: bearer tokens for the REST API (`/api/v1/…`), each with scopes, shared by every capability
that offers an API (financing today; orders, leads, metrics later).

- A token is `otk_` + 43 URL-safe characters (256 random bits). It is shown once, when it is created; only
  its SHA-256 is stored, with its first characters (`prefix`) so tokens can be told apart in a list.
- `require_scope("financing")` is the FastAPI dependency of a route: no or an unknown token answers 401,
  a revoked one 401, a token without the scope 403, a token over its pace 429 — in the REST API's error
  shape `{"error", "message"}` (docs/api.md), 401 with `WWW-Authenticate: Bearer`.
- Creating and revoking are audited (`api_token.create`, `api_token.revoke`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ApiToken
from otklik.clock import utcnow
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.platform.audit import audit
from otklik.platform.restapi import ApiError, check_pace

PREFIX = "otk_"
TOKEN = re.compile(r"otk_[A-Za-z0-9_-]{43}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}")
SCOPE = re.compile(r"[a-z][a-z0-9_.-]{0,39}")
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


@dataclass(frozen=True, slots=True)
class ApiCaller:
    """Who called: the token's id, name and scopes."""

    token_id: int
    name: str
    scopes: frozenset[str]


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_scopes(raw: str | Iterable[str]) -> list[str]:
    parts = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = sorted({p.strip().lower() for p in parts if p.strip()})
    bad = [s for s in scopes if not SCOPE.fullmatch(s)]
    if bad or not scopes:
        raise InvalidInput("scopes: one or more names like financing,orders (lower-case letters, digits, . _ -)")
    if len(",".join(scopes)) > 400:
        raise InvalidInput("scopes: too many")
    return scopes


async def create_token(db: Database, name: str, scopes: str | Iterable[str], *, actor: str) -> tuple[int, str]:
    """A new token: (its id, the token itself — shown once, never stored)."""
    name = (name or "").strip()
    if not NAME.fullmatch(name):
        raise InvalidInput("name: 1-80 characters: letters, digits, space, '.', '_' or '-'")
    wanted = parse_scopes(scopes)
    token = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    try:
        async with db.write() as session:
            row = ApiToken(
                name=name, scopes=",".join(wanted), token_hash=digest(token), prefix=token[:10],
                created_by=actor[:120], created_at=now,
            )  # fmt: skip
            session.add(row)
            await session.flush()
            audit(session, actor, "api_token.create", "api_token", row.id, {"name": name, "scopes": wanted}, now=now)
            token_id = int(row.id)
    except IntegrityError:
        raise Conflict(f"a token named {name!r} exists (names are unique, revoked ones too)") from None
    return token_id, token


async def list_tokens(db: Database) -> list[ApiToken]:
    async with db.read() as session:
        return list((await session.execute(select(ApiToken).order_by(ApiToken.id))).scalars().all())


async def revoke_token(db: Database, name: str, *, actor: str) -> None:
    now = utcnow()
    async with db.write() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.name == (name or "").strip()))
        if row is None:
            raise NotFound(f"no token named {name!r}")
        if row.revoked_at is None:
            row.revoked_at = now
            audit(session, actor, "api_token.revoke", "api_token", row.id, {"name": row.name}, now=now)


async def authenticate(db: Database, token: str) -> ApiCaller | None:
    """The caller of a presented token, or None (malformed, unknown or revoked)."""
    if not TOKEN.fullmatch(token):
        return None
    hashed = digest(token)
    async with db.read() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hashed))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, hashed):
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        async with db.write() as session:
            await session.execute(
                update(ApiToken).where(ApiToken.id == row.id, ApiToken.revoked_at.is_(None)).values(last_used_at=now)
            )
    return ApiCaller(int(row.id), row.name, frozenset(s for s in row.scopes.split(",") if s))


def _refuse(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})


#: Declares the bearer scheme in OpenAPI (components.securitySchemes and each route's `security`), so
#: Swagger UI, n8n and generated clients know to send the token; the refusals stay ours (`auto_error=False`).
BEARER = HTTPBearer(auto_error=False, scheme_name="apiToken", description="An API token: `Authorization: Bearer otk_…`")


def require_scope(scope: str) -> Callable[..., Awaitable[ApiCaller]]:
    """Route dependency: the caller of a valid, unrevoked token that carries `scope`, within its pace.

    Refusals are in the REST API's one error shape (`platform.restapi`): 401 `unauthorized`, 403 `forbidden`,
    429 `rate_limited` (with `Retry-After`)."""

    async def check(request: Request, _bearer: HTTPAuthorizationCredentials | None = Depends(BEARER)) -> ApiCaller:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise _refuse("an API token is required: send 'Authorization: Bearer otk_…'")
        caller = await authenticate(request.app.state.otklik.db, token.strip())
        if caller is None:
            raise _refuse("the API token is unknown or revoked")
        if scope not in caller.scopes:
            raise ApiError(403, "forbidden", f"the API token lacks the scope {scope!r}")
        check_pace(request, caller.token_id)
        request.state.api_caller = caller
        return caller

    check.scope = scope  # type: ignore[attr-defined]
    return check


async def revoke_token_id(db: Database, token_id: int, *, actor: str) -> str:
    """Revoke by id (the admin's button); returns the token's name. Revoking twice is harmless."""
    now = utcnow()
    async with db.write() as session:
        row = await session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = now
            audit(session, actor, "api_token.revoke", "api_token", row.id, {"name": row.name}, now=now)
        return str(row.name)


def scopes_of_routes(routes: Iterable[Any]) -> list[str]:
    """Every scope a mounted API route asks for (`require_scope`), sorted: what the admin offers."""
    found: set[str] = set()

    def walk(dependant: Any) -> None:
        for dep in getattr(dependant, "dependencies", ()):
            scope = getattr(dep.call, "scope", None)
            if isinstance(scope, str):
                found.add(scope)
            walk(dep)

    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)  # a router FastAPI included as a whole
        if contexts is not None:
            for context in contexts():
                walk(getattr(context.original_route, "dependant", None))
        else:
            walk(getattr(route, "dependant", None))
    return sorted(found)
