"""Sign in and out. The only admin routes open to anonymous visitors are the login form and its POST.

The login form carries a CSRF token too (double submit: a random cookie and the same value in the
form), so a foreign site cannot sign a browser in to an account of the attacker's choosing.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from otklik.platform.users import (
    LoginRefused,
    LoginThrottled,
    Principal,
    authenticate,
    csrf_ok,
    end_session,
    start_session,
)
from otklik.platform.webkit.deps import COOKIE, client_ip, guard, otklik_of, render

public = APIRouter(prefix="/admin")  # no guard: login only
router = APIRouter()  # mounted with the guard
LOGIN_CSRF_COOKIE = "otklik_login_csrf"


def safe_next(raw: str | None) -> str:
    """Only a path inside the admin; never another host (`//evil`, `https://…`, `/\\evil`)."""
    if not raw or not raw.startswith("/admin") or raw.startswith("//") or "\\" in raw or "\n" in raw:
        return "/admin"
    return raw[:500]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or str(otklik_of(request).settings.public_url or "").startswith("https://")


def _login_page(
    request: Request,
    error_key: str = "",
    status_code: int = 200,
    error_values: dict[str, object] | None = None,
    **values: str,
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "admin/login.html",
        status_code=status_code,
        login_csrf=token,
        error_key=error_key,
        error_values=error_values or {},
        next=safe_next(request.query_params.get("next") or values.get("next")),
        **{k: v for k, v in values.items() if k != "next"},
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/admin", secure=_secure(request)
    )
    return response


@public.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


@public.post("/login", include_in_schema=False)
async def login(
    request: Request,
    login: str = Form("", max_length=200),
    password: str = Form("", max_length=1024),
    csrf_token: str = Form("", max_length=200),
    next: str = Form("/admin", max_length=500),
) -> Response:
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        return _login_page(request, "login.expired", status_code=403, login=login, next=next)
    otk = otklik_of(request)
    try:
        user = await authenticate(otk.db, login, password, client_ip(request))
    except LoginThrottled as exc:
        page = _login_page(
            request, "login.throttled", status_code=429, error_values={"seconds": exc.seconds}, login=login, next=next
        )
        page.headers["Retry-After"] = str(exc.seconds)
        return page
    except LoginRefused:
        return _login_page(request, "login.refused", status_code=401, login=login, next=next)
    token = await start_session(otk.db, user, client_ip(request))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path="/admin", secure=_secure(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, _principal: Principal = Depends(guard)) -> Response:
    token = request.cookies.get(COOKIE)
    if token:
        await end_session(otklik_of(request).db, token)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response
