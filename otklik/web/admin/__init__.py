"""The admin: sign-in, inbox, flows, settings, users, audit. Every route needs a signed-in user."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute

from otklik.platform.plugins import Capability, ChannelKind, NavEntry, folder, resolve
from otklik.platform.webkit import deps
from otklik.platform.webkit.i18n import add_locale_folders
from otklik.web.admin import (
    api_tokens,
    audit,
    auth,
    contacts,
    experiments,
    flows,
    home,
    settings,
    sms,
    staff,
    users,
    webhooks,
)

# The platform's own admin areas; capabilities add theirs (`Capability.admin`, `Capability.nav`).
AREAS = [auth, home, users, flows, experiments, settings, webhooks, api_tokens, sms, staff, contacts, audit]
NAV = (
    NavEntry("flows.nav", "/admin/flows", "flows.view", 30),
    NavEntry("abtests.nav", "/admin/abtests", "flows.view", 33),
    NavEntry("surveys.nav", "/admin/surveys", "flows.view", 36),
    NavEntry("settings.nav", "/admin/settings", "settings", 70),
    NavEntry("staff.nav", "/admin/staff", "staff", 75),
    NavEntry("nav.users", "/admin/users", "users", 80),
    NavEntry("audit.nav", "/admin/audit", "audit", 90),
)


def mount(app: FastAPI, capabilities: Sequence[Capability], kinds: Sequence[ChannelKind] = ()) -> None:
    """Add every area's routes (the platform's and each capability's) under /admin with `deps.guard` as their
    first dependency, and build the menu; capabilities' and channel kinds' templates and strings are added.

    Routes are added one by one (not with `include_router`) so each is a plain `APIRoute` at its full
    path whose dependencies visibly include the guard; the route-enumeration test relies on that.
    """
    deps.install(app)
    app.router.add_route("/favicon.ico", favicon, methods=["GET", "HEAD"], include_in_schema=False)
    for route in auth.public.routes:
        app.router.routes.append(route)
    routers = [module.router for module in AREAS]
    routers += [resolve(ref) for capability in capabilities for ref in capability.admin]
    routers += [resolve(ref) for kind in kinds for ref in kind.admin]
    deps.add_template_folders(
        [folder(ref) for ref in [*(c.templates for c in capabilities), *(k.templates for k in kinds)] if ref]
    )
    add_locale_folders(
        [folder(ref) for ref in [*(c.locales for c in capabilities), *(k.locales for k in kinds)] if ref]
    )
    app.state.nav = tuple(sorted([*NAV, *(e for c in capabilities for e in c.nav)], key=lambda e: e.order))
    for router in routers:
        for route in router.routes:
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
