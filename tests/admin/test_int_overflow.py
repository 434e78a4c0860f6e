"""Regression (issue 13): an id or cursor beyond a 64-bit integer answered 500.

`GET /api/webchat/sessions/{sid}/messages?after=9223372036854775808`, `/admin/inbox/c/9223372036854775808`,
`POST /admin/claims/-9223372036854775809/approve`, `?version=`, `?before=`... raised `OverflowError: Python
int too large to convert to SQLite INTEGER` (a `DataError` on PostgreSQL). Every int path or query
parameter is now bounded by the schema (`otklik.platform.webkit.params`), so such a number is a 422.

The routes are enumerated from the app itself (the admin's plain routes and the routers it includes), so
a route added later is covered without editing this file.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from typing import Any

import annotated_types
import httpx
from fastapi.routing import APIRoute

from otklik.platform.apitokens import create_token, scopes_of_routes
from otklik.platform.restapi import TokenPace
from otklik.platform.users import Role
from otklik.platform.webkit.params import BIGINT_MAX

OUT_OF_RANGE = (2**63, -(2**63) - 1, 10**30)
INT32_EDGE = 2**31  # fits a BIGINT id, not a 32-bit INTEGER column: must not be a 500 either


def api_routes(app) -> Iterator[tuple[str, APIRoute]]:  # type: ignore[no-untyped-def]
    """(full path, route) of every FastAPI route, including those of `include_router` routers."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path, route
            continue
        contexts = getattr(route, "effective_route_contexts", None)  # FastAPI's included router
        if contexts is not None:
            for context in contexts():
                if isinstance(context.original_route, APIRoute):
                    yield context.path, context.original_route
        elif hasattr(route, "routes") and not hasattr(route, "app"):  # an older FastAPI's plain router
            yield from api_routes(route)


def _params(dependant) -> Iterator[tuple[str, Any]]:  # type: ignore[no-untyped-def]
    for param in dependant.path_params:
        yield "path", param
    for param in dependant.query_params:
        yield "query", param
    for dep in dependant.dependencies:
        yield from _params(dep)


def _is_int(annotation: object) -> bool:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_is_int(arg) for arg in typing.get_args(annotation))
    return annotation is int


def int_params(app) -> list[tuple[str, str, APIRoute, str, Any]]:  # type: ignore[no-untyped-def]
    """(method, path, route, where, param) of every int path or query parameter of the app."""
    found = []
    for path, route in api_routes(app):
        for where, param in _params(route.dependant):
            if _is_int(param.field_info.annotation):
                found.extend((method, path, route, where, param) for method in sorted(route.methods))
    return found


def _bounds(param) -> tuple[int | None, int | None]:  # type: ignore[no-untyped-def]
    low = high = None
    for item in param.field_info.metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low = item.gt + 1
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Lt):
            high = item.lt - 1
    return low, high


def test_every_int_path_and_query_parameter_is_bounded_by_the_schema(app) -> None:  # type: ignore[no-untyped-def]
    found = int_params(app)
    names = {(path, param.name) for _m, path, _r, _w, param in found}
    # the enumeration reaches the included routers and the admin's routes
    assert ("/api/webchat/sessions/{session_id}/messages", "after") in names
    assert ("/webhooks/telegram/{account_id}", "account_id") in names
    assert ("/admin/inbox/c/{conversation_id}/history", "before") in names
    assert len(names) >= 20
    unbounded = []
    for method, path, _route, _where, param in found:
        low, high = _bounds(param)
        if low is None or high is None or low < -(2**63) or high > BIGINT_MAX:
            unbounded.append(f"{method} {path} {param.name}: [{low}, {high}]")
    assert unbounded == [], "int parameters without a 64-bit range (use otklik.platform.webkit.params)"


def _url(path: str, where: str, name: str, value: int, values: dict[str, str], route: APIRoute) -> str:
    """`path` with `name` set to `value` and every other parameter set to a realistic value."""
    filled = re.sub(
        r"\{([^}:]+)(:[^}]*)?\}",
        lambda m: str(value) if (where == "path" and m.group(1) == name) else values.get(m.group(1), "1"),
        path,
    )
    query = {name: str(value)} if where == "query" else {}
    for _w, param in _params(route.dependant):
        if _w == "query" and param.name != name and param.field_info.is_required():
            query[param.name] = values.get(param.name, "1")
    return str(httpx.URL(filled, params=query))


async def test_an_out_of_range_id_or_cursor_is_a_422_never_a_500(app, as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    started = await owner.http.post("/api/webchat/sessions", json={})
    assert started.status_code == 201, started.text
    session = started.json()
    flow_key = (await otklik.flows.overview())[0].flow_key
    # real rows where a handler could answer 404 before it reads the parameter under test
    values = {
        "session_id": session["session_id"],
        "conversation_id": str(session["conversation_id"]),
        "key": flow_key,
        "fmt": "png",
        "media_id": "0" * 64,
    }
    found = int_params(app)
    assert found
    # the REST API's routes check their token first: give them one with every scope, and no pace
    _id, secret = await create_token(otklik.db, "overflow", scopes_of_routes(app.routes), actor="test")
    api = {"authorization": f"Bearer {secret}"}
    app.state.api_pace = TokenPace(0, 1)
    failures = []
    for method, path, route, where, param in found:
        for value in (*OUT_OF_RANGE, INT32_EDGE):
            url = _url(path, where, param.name, value, values, route)
            headers = {"accept": "application/json", **(api if path.startswith("/api/v1/") else {})}
            try:
                if method == "GET":
                    response = await owner.http.get(url, headers=headers)
                else:
                    response = await owner.http.request(method, url, data={"csrf_token": owner.csrf}, headers=headers)
            except Exception as exc:  # the app raised: what used to be the 500
                failures.append(f"{method} {url}: {type(exc).__name__}: {exc}")
                continue
            expected = response.status_code < 500 if value == INT32_EDGE else response.status_code == 422
            if not expected:
                failures.append(f"{method} {url}: {response.status_code}")
    assert failures == []


async def test_webchat_after_beyond_64_bits_is_refused_and_the_chat_still_reads(anon) -> None:  # type: ignore[no-untyped-def]
    started = await anon.post("/api/webchat/sessions", json={})
    sid = started.json()["session_id"]
    for after in ("9223372036854775808", "-1", "1" + "0" * 40):
        response = await anon.get(f"/api/webchat/sessions/{sid}/messages", params={"after": after})
        assert response.status_code == 422, (after, response.text)
    biggest = await anon.get(f"/api/webchat/sessions/{sid}/messages", params={"after": str(BIGINT_MAX)})
    assert biggest.status_code == 200 and biggest.json()["messages"] == []
    first = await anon.get(f"/api/webchat/sessions/{sid}/messages", params={"after": "0"})
    assert first.status_code == 200 and first.json()["messages"]


async def test_ids_beyond_64_bits_in_bodies_and_cursors_are_refused(as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    import base64
    import json

    from tests.capabilities.inbox.inbox_helpers import say

    owner = await as_role(Role.OWNER)
    conversation = await say(otklik, "buyer-overflow", "привет")
    flow_key = (await otklik.flows.overview())[0].flow_key
    for version in (2**63, 2**31, 0):
        for action in ("publish", "rollback"):
            answer = await owner.post_json(f"/admin/flows/{flow_key}/{action}", {"version": version})
            assert answer.status_code == 422, (action, version, answer.status_code)
        console = await owner.post_json(f"/admin/flows/{flow_key}/console", {"version": version, "action": "start"})
        assert console.status_code == 422, (version, console.status_code)
    assign = await owner.post(
        f"/admin/inbox/c/{conversation}/assign", {"user": str(2**63)}, headers={"accept": "application/json"}
    )
    assert assign.status_code == 422, assign.text
    when = "2026-01-01T00:00:00+00:00"
    for view, parts in (("waiting", [1, when, 2**64]), ("all", [when, 2**64]), ("all", [when, -(2**63) - 1])):
        forged = base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")
        page = await owner.http.get("/admin/inbox/list", params={"view": view, "cursor": forged})
        assert page.status_code == 422, (view, parts, page.status_code)
    audit = base64.urlsafe_b64encode(f"2026-01-01T00:00:00+00:00|{2**64}".encode()).decode()
    log = await owner.http.get("/admin/audit", params={"cursor": audit}, headers={"accept": "application/json"})
    assert log.status_code == 422
