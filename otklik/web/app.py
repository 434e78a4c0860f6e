"""The FastAPI application factory and the error mapping at the HTTP edge."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from otklik.bootstrap import Otklik
from otklik.core.errors import OtklikError

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


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

    app = FastAPI(title="otklik", version="0.1.0", lifespan=lifespan)
    app.state.otklik = otklik
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _errors(app)
    from otklik.web import webchat, webhooks

    app.include_router(webchat.router)
    app.include_router(webhooks.router)
    from otklik.web import admin

    admin.mount(app)
    _pages(app)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(OtklikError)
    async def domain_error(_request: Request, exc: OtklikError) -> JSONResponse:
        return JSONResponse({"detail": exc.user_message}, status_code=exc.status_code)

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
        return templates.TemplateResponse(request, "chat.html", {"start": request.query_params.get("start", "")})
