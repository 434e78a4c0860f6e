"""What every admin route shares: the signed-in principal, permissions, CSRF, rendering.

Every admin router is mounted with `guard` as a router-level dependency (see `otklik.web.admin.mount`),
so a route cannot be added without a login check; `need(Perm.X)` adds the role check on the server.
State-changing requests (POST, PUT, PATCH, DELETE) must carry the session's CSRF token in the
`X-CSRF-Token` header or a `csrf_token` form field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import FileSystemLoader, pass_context
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from otklik.platform.plugins import NavEntry
from otklik.platform.users import Perm, Principal, csrf_ok, load_session
from otklik.platform.webkit.client_ip import client_address
from otklik.platform.webkit.i18n import translator
from otklik.platform.webkit.paths import TEMPLATES

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

COOKIE = "otklik_admin"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
templates = Jinja2Templates(directory=TEMPLATES)


def add_template_folders(folders: Sequence[Path]) -> None:
    """Capabilities' own admin templates (`Capability.templates`), looked up after the shared ones."""
    loader = templates.env.loader
    known = list(getattr(loader, "searchpath", [])) if isinstance(loader, FileSystemLoader) else []
    new = [str(f) for f in folders if str(f) not in known]
    if new and isinstance(loader, FileSystemLoader):
        loader.searchpath.extend(new)


class NeedLogin(Exception):
    pass


class NoPermission(Exception):
    pass


class BadCsrf(Exception):
    pass


def menu_for(principal: Principal | None, entries: Sequence[NavEntry]) -> list[NavEntry]:
    """The admin menu of a role: entries with one `key` are one item, the first (by order) the role may open
    is shown — an area with sub-tabs under different permissions still has a single entry."""
    if principal is None:
        return []
    items: dict[str, NavEntry] = {}
    for item in sorted(entries, key=lambda e: e.order):
        if principal.can(item.perm):
            items.setdefault(item.key, item)
    return list(items.values())


def zone_of(request: Request) -> ZoneInfo:
    """The business's time zone (the business-hours setting): every admin timestamp is shown in it."""
    otk: Otklik | None = getattr(request.app.state, "otklik", None)
    return otk.live.snapshot.hours.zone if otk is not None else ZoneInfo("UTC")


def _aware(moment: datetime | str | None) -> datetime | None:
    """Naive datetimes and ISO strings without an offset are UTC (that is how they are stored)."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment) if moment else None
        except ValueError:
            return None
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def local_text(moment: datetime | str | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) moment as plain text in the business's wall-clock time; "—" if there is none."""
    aware = _aware(moment)
    return aware.astimezone(zone).strftime(fmt) if aware else "—"


def local_time(moment: datetime | str | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> Markup:
    """The same as a `<time>` element: local text, the zone's name and offset in its tooltip."""
    aware = _aware(moment)
    if aware is None:
        return Markup("—")
    here = aware.astimezone(zone)
    offset = here.strftime("%z")
    label = f"{zone.key} (UTC{offset[:3]}:{offset[3:]})"
    return Markup('<time datetime="{}" title="{}" data-tz="{}">{}</time>').format(
        here.isoformat(), label, zone.key, here.strftime(fmt)
    )


def _zone(ctx: Any) -> ZoneInfo:
    zone = ctx.get("tz")
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo("UTC")


@pass_context
def _when_filter(ctx: Any, moment: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> Markup:
    return local_time(moment, _zone(ctx), fmt)


@pass_context
def _when_text_filter(ctx: Any, moment: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return local_text(moment, _zone(ctx), fmt)


def zone_label(zone: ZoneInfo) -> str:
    """`Europe/Moscow (MSK)`: the zone's name and its current abbreviation, as the top bar shows it."""
    abbr = datetime.now(zone).strftime("%Z")
    return zone.key if not abbr or abbr.startswith(("+", "-")) or abbr == zone.key else f"{zone.key} ({abbr})"


# Every admin timestamp goes through these: `{{ x.created_at | when }}` (a <time> element) or
# `when_text` (plain text, for attributes and translated sentences); `tz` comes from `render`.
templates.env.filters["when"] = _when_filter
templates.env.filters["when_text"] = _when_text_filter


def otklik_of(request: Request) -> Otklik:
    app_otklik: Otklik = request.app.state.otklik
    return app_otklik


def client_ip(request: Request) -> str:
    return client_address(request)


async def guard(request: Request) -> Principal:
    """Router-level dependency of every admin route: a valid session, and CSRF for state changes."""
    principal = await load_session(otklik_of(request).db, request.cookies.get(COOKIE), otklik_of(request).role_perms)
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


def need(perm: str) -> Callable[[Request], Awaitable[Principal]]:
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
    zone = zone_of(request)
    base = {
        "user": principal,
        "csrf_token": principal.csrf_token if principal else context.pop("login_csrf", ""),
        "t": t,
        "lang": language,
        "nav": menu_for(principal, getattr(request.app.state, "nav", ())),
        "path": request.url.path,
        "Perm": Perm,
        "tz": zone,
        "tz_label": zone_label(zone),
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

    outside: Any = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)

    @app.exception_handler(StarletteHTTPException)
    async def admin_not_found(request: Request, exc: StarletteHTTPException) -> Response:
        """An unknown /admin page: the login redirect / 401 for anonymous visitors (nothing tells them
        which pages exist), a 404 page with the menu for signed-in users; elsewhere the handler the app had
        before (the REST API's error shape under /api/v1, else FastAPI's default)."""
        path = request.url.path
        if exc.status_code != 404 or not (path == "/admin" or path.startswith("/admin/")):
            return await outside(request, exc)  # type: ignore[no-any-return]
        principal = await load_session(
            otklik_of(request).db, request.cookies.get(COOKIE), otklik_of(request).role_perms
        )
        if principal is None:
            return await need_login(request, NeedLogin())
        request.state.principal = principal
        if _wants_html(request):
            return render(
                request,
                "admin/error.html",
                status_code=404,
                title_key="error.not_found_title",
                message_key="error.not_found",
            )
        return JSONResponse({"detail": "Not Found"}, status_code=404)

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, _exc: BadCsrf) -> Response:
        return JSONResponse(
            {"detail": "the form is out of date or was not sent from this site; reload the page and try again"},
            status_code=403,
        )
