"""The admin: sign-in, inbox, flows, settings, users, audit. Every route needs a signed-in user."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute

from otklik.capabilities.care import admin as care
from otklik.capabilities.care import admin_replies as care_replies
from otklik.capabilities.cashback import admin as cashback
from otklik.capabilities.cashback import admin_claims as cashback_claims
from otklik.capabilities.inbox import admin as inbox
from otklik.capabilities.inbox import admin_actions as inbox_actions
from otklik.capabilities.inbox import admin_canned as inbox_canned
from otklik.platform.webkit import deps
from otklik.web.admin import audit, auth, flows, home, settings, users

# Each admin area is a module with a `router`; listing it here mounts it behind the login guard.
AREAS = [
    auth,
    home,
    users,
    flows,
    inbox,
    inbox_actions,
    inbox_canned,
    settings,
    audit,
    cashback,
    cashback_claims,
    care,
    care_replies,
]


def mount(app: FastAPI) -> None:
    """Add every area's routes under /admin with `deps.guard` as their first dependency.

    Routes are added one by one (not with `include_router`) so each is a plain `APIRoute` at its full
    path whose dependencies visibly include the guard; the route-enumeration test relies on that.
    """
    deps.install(app)
    app.router.add_route("/favicon.ico", favicon, methods=["GET", "HEAD"], include_in_schema=False)
    for route in auth.public.routes:
        app.router.routes.append(route)
    for module in AREAS:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            app.router.add_api_route(
                "/admin" + route.path,
                route.endpoint,
                methods=sorted(route.methods or ()),
                name=route.name,
                response_class=route.response_class,
                status_code=route.status_code,
                include_in_schema=False,
                dependencies=[Depends(deps.guard), *route.dependencies],
            )


FAVICON = Path(__file__).parent.parent / "static" / "favicon.svg"


async def favicon(_request: Request) -> FileResponse:
    """Browsers ask for /favicon.ico whatever the page links; the SVG is served under that name too."""
    return FileResponse(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
