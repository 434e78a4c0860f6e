"""Admin fixtures: the real app over ASGI on SQLite and PostgreSQL, users of every role, signed-in clients."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from otklik.bootstrap import Otklik
from otklik.runtime.users import Role, create_user
from otklik.web.app import create_app

PASSWORD = "correct horse battery"


@dataclass
class Admin:
    """A signed-in browser-like client: cookies kept, the CSRF token read from the page."""

    http: httpx.AsyncClient
    csrf: str
    login: str

    async def post(self, url: str, data: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        return await self.http.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kwargs)  # type: ignore[arg-type]

    async def post_json(self, url: str, body: object) -> httpx.Response:
        return await self.http.post(url, json=body, headers={"X-CSRF-Token": self.csrf})


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]*)"', html) or re.search(
        r'name="csrf_token" value="([^"]*)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
async def app(otklik: Otklik):  # type: ignore[no-untyped-def]
    return create_app(otklik, worker=False, manage_lifecycle=False)


@pytest.fixture
def anon(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin.test")


async def sign_in(app, login: str, password: str = PASSWORD) -> Admin:  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin.test")
    page = await http.get("/admin/login")
    response = await http.post(
        "/admin/login", data={"login": login, "password": password, "csrf_token": csrf_of(page.text), "next": "/admin"}
    )
    assert response.status_code == 303, response.text
    home = await http.get("/admin")
    assert home.status_code == 200
    return Admin(http, csrf_of(home.text), login)


@pytest.fixture
async def users(otklik: Otklik) -> dict[Role, str]:
    """One user per role; login == role name."""
    for role in Role:
        await create_user(otklik.db, role.value, role, password=PASSWORD, language="en")
    return {role: role.value for role in Role}


@pytest.fixture
async def as_role(app, users) -> AsyncIterator[Callable[[Role], Awaitable[Admin]]]:  # type: ignore[no-untyped-def]
    clients: list[Admin] = []

    async def make(role: Role) -> Admin:
        admin = await sign_in(app, users[role])
        clients.append(admin)
        return admin

    yield make
    for admin in clients:
        await admin.http.aclose()
