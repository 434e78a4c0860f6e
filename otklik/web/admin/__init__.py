"""The admin: sign-in, inbox, flows, settings, users, audit. Every route needs a signed-in user."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from otklik.web.admin import (
    audit,
    auth,
    care,
    care_replies,
    cashback,
    cashback_claims,
    deps,
    flows,
    home,
    inbox,
    inbox_actions,
    inbox_canned,
    settings,
    users,
)

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
