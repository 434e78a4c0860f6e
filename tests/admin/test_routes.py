"""Every admin route refuses anonymous visitors, and the role matrix holds on the server.

The routes are enumerated from the app itself, so a route added later is covered without editing
this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
from fastapi.routing import APIRoute

from otklik.platform.users import ROLE_PERMS, Perm, Role, role_perms
from otklik.platform.webkit.deps import guard
from otklik.registry import CAPABILITIES
from tests.fixtures.admin import locale_folders

PUBLIC = {("GET", "/admin/login"), ("POST", "/admin/login")}


def _walk(dependant) -> Iterator[object]:  # type: ignore[no-untyped-def]
    for dep in dependant.dependencies:
        yield dep.call
        yield from _walk(dep)


def admin_routes(app) -> Iterator[tuple[str, str, APIRoute]]:  # type: ignore[no-untyped-def]
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/admin"):
            for method in sorted(route.methods):
                if (method, route.path) not in PUBLIC:
                    yield method, route.path, route


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "999999", path)  # no such row: a POST must not act on a real user


def perm_of(route: APIRoute) -> str | None:
    for call in _walk(route.dependant):
        perm = getattr(call, "perm", None)
        if perm is not None:
            return perm  # type: ignore[no-any-return]
    return None


async def test_every_admin_route_refuses_anonymous_access(app, anon: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    routes = list(admin_routes(app))
    assert len(routes) >= 5
    for method, path, route in routes:
        assert guard in set(_walk(route.dependant)), f"{method} {path} is mounted without the login guard"
        response = await anon.request(method, concrete(path), headers={"accept": "application/json"})
        assert response.status_code == 401, f"{method} {path} answered {response.status_code} to an anonymous visitor"
        page = await anon.request(method, concrete(path), headers={"accept": "text/html"})
        if method == "GET":
            assert page.status_code == 303 and page.headers["location"].startswith("/admin/login"), path
        else:
            assert page.status_code == 401, f"{method} {path}"


async def test_the_role_matrix_is_enforced_on_the_server(app, as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    routes = [(m, p, r, perm_of(r)) for m, p, r in admin_routes(app)]
    for role in Role:
        client = await as_role(role)
        for method, path, _route, perm in routes:
            if perm is None:
                continue
            allowed = perm in otklik.role_perms[role]  # the platform's and the capabilities' permissions
            url = concrete(path)
            if method == "GET":
                response = await client.http.get(url, headers={"accept": "text/html"})
            else:
                response = await client.post(url, {})
            if not allowed:
                assert response.status_code == 403, f"{role} reached {method} {path}: {response.status_code}"
            elif method == "GET" and "{" not in path:
                assert response.status_code == 200, f"{role} could not open {path}: {response.status_code}"


def test_the_matrix_matches_the_product_rules() -> None:
    perms = role_perms(p for c in CAPABILITIES for p in c.permissions)
    assert Perm.SETTINGS not in perms[Role.OPERATOR]
    assert Perm.INBOX_REPLY not in perms[Role.ANALYST]
    assert Perm.INBOX_VIEW in perms[Role.ANALYST]
    assert "claims" in perms[Role.MODERATOR] and "claims" not in perms[Role.OPERATOR]
    assert "dashboards" in perms[Role.ANALYST] and "dashboards" not in perms[Role.OPERATOR]
    declared = {p.key for c in CAPABILITIES for p in c.permissions}
    assert all(perm in perms[Role.OWNER] and perm in perms[Role.ADMIN] for perm in [*Perm, *declared])
    assert not (perms[Role.ANALYST] & {Perm.FLOWS_EDIT, Perm.USERS, Perm.SETTINGS, Perm.INBOX_REPLY, "claims"})
    assert ROLE_PERMS[Role.MODERATOR] == {Perm.INBOX_VIEW}  # the rest of a moderator's rights are cashback's


async def test_an_admin_cannot_touch_an_owner(as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    page = await admin.http.get("/admin/users")
    owner_id = re.search(r'data-login="owner">.*?action="/admin/users/(\d+)"', page.text, re.S).group(1)
    demote = await admin.post(f"/admin/users/{owner_id}", {"role": "operator"})
    assert demote.status_code == 403
    make_owner = await admin.post("/admin/users", {"login": "sneaky", "role": "owner"})
    assert make_owner.status_code == 403
    reset = await admin.post(f"/admin/users/{owner_id}/password")
    assert reset.status_code == 403
    still = await admin.http.get("/admin/users")
    assert "sneaky" not in still.text


def test_i18n_catalog_has_every_language_for_every_key() -> None:
    """Every declared locales folder (the shared one, each capability's), not only what a mounted app merged."""
    from otklik.platform.webkit.i18n import LANGUAGES, load_catalog

    folders = locale_folders()
    assert all(f.is_dir() and list(f.glob("*.yaml")) for f in folders), folders
    merged = load_catalog(folders)
    assert {"yes", "care.cat.size_fit", "cashback.nav", "nav.inbox", "example.nav", "settings.add_bot"} <= merged.keys()
    missing = [(key, lang) for key, texts in merged.items() for lang in LANGUAGES if not texts.get(lang)]
    assert missing == []
