"""What every admin route shares: the signed-in principal, permissions, CSRF, rendering.

Every admin router is mounted with `guard` as a router-level dependency (see `otklik.web.admin.mount`),
so a route cannot be added without a login check; `need(Perm.X)` adds the role check on the server.
State-changing requests (POST, PUT, PATCH, DELETE) must carry the session's CSRF token in the
`X-CSRF-Token` header or a `csrf_token` form field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from otklik.bootstrap import Otklik
from otklik.runtime.users import Perm, Principal, csrf_ok, load_session
from otklik.web.admin.i18n import translator
from otklik.web.app import HERE

COOKIE = "otklik_admin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
templates = Jinja2Templates(directory=HERE / "templates")


class NeedLogin(Exception):
    pass


class NoPermission(Exception):
    pass


class BadCsrf(Exception):
    pass


@dataclass(frozen=True, slots=True)
class NavItem:
    key: str  # i18n key of the label
    href: str
    perm: Perm
    order: int


NAV: list[NavItem] = []


def nav(key: str, href: str, perm: Perm, order: int) -> None:
    """Admin areas register their menu entry at import; the menu shows only what the role may open."""
    if not any(item.href == href for item in NAV):
        NAV.append(NavItem(key, href, perm, order))
        NAV.sort(key=lambda item: item.order)


def otklik_of(request: Request) -> Otklik:
    app_otklik: Otklik = request.app.state.otklik
    return app_otklik


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def guard(request: Request) -> Principal:
    """Router-level dependency of every admin route: a valid session, and CSRF for state changes."""
    principal = await load_session(otklik_of(request).db, request.cookies.get(COOKIE))
    if principal is None:
        raise NeedLogin()
    request.state.principal = principal
    if request.method not in SAFE_METHODS:
        given = request.headers.get("x-csrf-token")
        if not given and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
        if not csrf_ok(principal.csrf_token, given):
            raise BadCsrf()
    return principal


def need(perm: Perm) -> Callable[[Request], Awaitable[Principal]]:
    """Endpoint dependency: the principal, if its role has `perm` (403 otherwise)."""

    async def check(request: Request) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            principal = await guard(request)
        if not principal.can(perm):
            raise NoPermission()
        return principal

    check.perm = perm  # type: ignore[attr-defined]  # read by the role-matrix test
    return check


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    principal: Principal | None = getattr(request.state, "principal", None)
    language = principal.language if principal else _browser_language(request)
    t = translator(language)
    items = [item for item in NAV if principal is not None and principal.can(item.perm)]
    base = {
        "user": principal,
        "csrf_token": principal.csrf_token if principal else context.pop("login_csrf", ""),
        "t": t,
        "lang": language,
        "nav": items,
        "path": request.url.path,
        "Perm": Perm,
    }
    base.update(context)
    response = templates.TemplateResponse(request, template, base, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _browser_language(request: Request) -> str:
    accept = request.headers.get("accept-language", "").lower()
    for part in accept.split(","):
        code = part.split(";")[0].strip()[:2]
        if code in ("ru", "en", "es"):
            return code
    return "ru"


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def install(app: FastAPI) -> None:
    """Map the admin's auth errors to responses: login redirect / 401, 403 pages."""

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, _exc: NeedLogin) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/admin/login?next={quote(target, safe='')}", status_code=303)
        return JSONResponse({"detail": "sign in first"}, status_code=401)

    @app.exception_handler(NoPermission)
    async def no_permission(request: Request, _exc: NoPermission) -> Response:
        if _wants_html(request):
            return render(request, "admin/error.html", status_code=403, message_key="error.forbidden")
        return JSONResponse({"detail": "your role does not allow this"}, status_code=403)

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, _exc: BadCsrf) -> Response:
        return JSONResponse(
            {"detail": "the form is out of date or was not sent from this site; reload the page and try again"},
            status_code=403,
        )
