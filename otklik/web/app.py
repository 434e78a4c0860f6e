"""The FastAPI application factory and the error mapping at the HTTP edge."""

from __future__ import annotations

import importlib.resources
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otklik.bootstrap import Otklik
from otklik.core.errors import OtklikError
from otklik.platform.plugins import folder, resolve
from otklik.platform.restapi import ApiError, TokenPace, code_of, error_response
from otklik.platform.webkit.deps import templates
from otklik.platform.webkit.paths import STATIC
from otklik.web import reach_callback
from otklik.web.metrics import HttpTiming
from otklik.web.metrics import router as metrics_router

API_PREFIX = "/api/v1/"

log = logging.getLogger(__name__)


def create_app(otklik: Otklik, *, worker: bool = True, manage_lifecycle: bool = True) -> FastAPI:
    """`worker=True` runs the dispatcher and scheduler in the same process (the embedded default)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await otklik.start(demo_owner=True)
        otklik.start_watchers()
        if worker:
            otklik.start_worker()
        try:
            yield
        finally:
            if manage_lifecycle:
                await otklik.close()
            else:
                await otklik.supervisor.close()

    app = FastAPI(title="otklik", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.otklik = otklik
    app.state.flow_drafts = OrderedDict()  # the flow console's parsed drafts (`web.admin.flows_console`)
    for capability in otklik.capabilities:  # before /static, which would answer 404 for /static/<name>/…
        if capability.static:
            app.mount(f"/static/{capability.name}", StaticFiles(directory=folder(capability.static)))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.api_pace = TokenPace(otklik.settings.api_requests_per_minute, otklik.settings.api_burst)
    app.add_middleware(SecurityHeaders, chat_frame_ancestors=otklik.settings.chat_frame_ancestors)
    app.add_middleware(HttpTiming)
    _docs(app)
    _errors(app)
    app.include_router(metrics_router)
    app.include_router(reach_callback.router)  # SMS.ru's delivery statuses (platform/reach)
    for kind in otklik.channel_kinds.values():  # the web chat API, webhooks of each channel kind
        for ref in kind.inbound:
            app.include_router(resolve(ref))
    for capability in otklik.capabilities:  # the REST API (`/api/v1/…`, API tokens), in OpenAPI
        for ref in capability.api:
            app.include_router(resolve(ref))
    from otklik.web import admin

    admin.mount(app, otklik.capabilities, tuple(otklik.channel_kinds.values()))
    _pages(app)
    return app


# The admin and the chat page load scripts only from here: no inline scripts or handlers (styles may be
# inline: Mermaid puts a <style> into the SVGs it draws), nothing from other sites.
CSP_BASE = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'"
)


class SecurityHeaders:
    """Pure ASGI middleware (long-polls and streams pass untouched): `nosniff` and a referrer policy on every
    response; a Content-Security-Policy on the admin (never framed) and the web chat page (framed only by
    `chat_frame_ancestors`, the seller's sites)."""

    def __init__(self, app: ASGIApp, chat_frame_ancestors: tuple[str, ...] = ()) -> None:
        self.app = app
        ancestors = "*" if "*" in chat_frame_ancestors else " ".join(("'self'", *chat_frame_ancestors))
        self.admin = [
            (b"content-security-policy", f"{CSP_BASE}; frame-ancestors 'none'".encode()),
            (b"x-frame-options", b"DENY"),
        ]
        self.chat = [(b"content-security-policy", f"{CSP_BASE}; frame-ancestors {ancestors}".encode())]
        self.common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        extra = list(self.common)
        if path == "/admin" or path.startswith("/admin/"):
            extra += self.admin
        elif path == "/chat":
            extra += self.chat

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name.decode() not in headers:
                        headers.append(name.decode(), value.decode())
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc from files shipped in a package (`fastapi-offline`), not from a CDN."""
    assets = importlib.resources.files("fastapi_offline") / "static"
    app.mount("/docs-assets", StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(OtklikError)
    async def domain_error(request: Request, exc: OtklikError) -> JSONResponse:
        headers = getattr(exc, "headers", None)  # e.g. Retry-After of a 429
        if _is_api(request):
            return error_response(exc.status_code, code_of(exc.status_code), exc.user_message, headers)
        return JSONResponse({"detail": exc.user_message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request):  # the REST API answers every error in its one shape (docs/api.md)
            message = exc.detail if isinstance(exc.detail, str) else code_of(exc.status_code)
            if exc.status_code == 404 and message == "Not Found":
                message = f"no such resource: {request.url.path[:200]}"
            return error_response(exc.status_code, code_of(exc.status_code), message, exc.headers)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if _is_api(request):
            errors = exc.errors()
            first = errors[0] if errors else {}
            where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
            name = where[0] if where else "invalid"
            text = str(first.get("msg", "invalid input"))
            return error_response(422, name[:40], f"{name}: {text}"[:300])
        return await request_validation_exception_handler(request, exc)

    async def storage_down(_request: Request, exc: Exception) -> JSONResponse:
        log.error("storage unavailable: %s", exc)
        return JSONResponse(
            {"detail": "storage is temporarily unavailable; nothing was saved, please retry"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    for exc_type in (OperationalError, InterfaceError, DBAPIError, PoolTimeout, ConnectionError):
        app.add_exception_handler(exc_type, storage_down)


def _pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/admin")

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/chat", response_class=HTMLResponse, include_in_schema=False)
    async def chat_page(request: Request) -> HTMLResponse:
        context = {
            "start": request.query_params.get("start", ""),
            "max_chars": request.app.state.otklik.settings.max_text_chars,
        }
        return templates.TemplateResponse(request, "chat.html", context)
