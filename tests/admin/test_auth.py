"""Sign-in, sessions, CSRF and throttling against the real app and database."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import AdminSession, EventLog, LoginFailure
from otklik.bootstrap import Otklik
from otklik.platform import users as users_mod
from otklik.platform.users import THROTTLE_PAIR_FREE, Role, set_password
from otklik.platform.webkit.deps import COOKIE
from tests.fixtures.admin import PASSWORD, csrf_of, sign_in


async def test_an_anonymous_visitor_is_sent_to_the_login_page(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/admin/users?x=1", headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=%2Fadmin%2Fusers%3Fx%3D1"
    api = await anon.get("/admin/users", headers={"accept": "application/json"})
    assert api.status_code == 401


async def test_sign_in_sets_a_hardened_cookie_and_signs_out(app, users, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await sign_in(app, "owner")
    cookie = next(c for c in admin.http.cookies.jar if c.name == COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite", "").lower() in ("lax", "strict")
    token = cookie.value
    async with otklik.db.read() as session:
        stored = list((await session.execute(select(AdminSession.id))).scalars())
    assert stored and token not in stored  # only a digest is kept
    out = await admin.post("/admin/logout")
    assert out.status_code == 303
    # the old cookie no longer works even if a thief kept it
    thief = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin.test")
    thief.cookies.set(COOKIE, token, domain="admin.test", path="/admin")
    assert (await thief.get("/admin", headers={"accept": "application/json"})).status_code == 401


async def test_login_issues_a_new_session_id_no_fixation(app, users) -> None:  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin.test")
    planted = "attacker-chosen-session-value"
    http.cookies.set(COOKIE, planted, domain="admin.test", path="/admin")
    page = await http.get("/admin/login")
    response = await http.post(
        "/admin/login", data={"login": "operator", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 303
    assert response.cookies.get(COOKIE) not in (None, planted)


async def test_wrong_password_and_unknown_user_look_the_same(anon: httpx.AsyncClient, users) -> None:  # type: ignore[no-untyped-def]
    page = await anon.get("/admin/login")
    token = csrf_of(page.text)
    wrong = await anon.post("/admin/login", data={"login": "owner", "password": "nope-nope-nope", "csrf_token": token})
    page = await anon.get("/admin/login")
    unknown = await anon.post(
        "/admin/login", data={"login": "ghost", "password": "nope-nope-nope", "csrf_token": csrf_of(page.text)}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong login or password" in wrong.text or "Неверный логин" in wrong.text
    assert COOKIE not in wrong.cookies


async def test_login_without_its_csrf_token_is_refused(anon: httpx.AsyncClient, users) -> None:  # type: ignore[no-untyped-def]
    response = await anon.post("/admin/login", data={"login": "owner", "password": PASSWORD})
    assert response.status_code == 403
    assert COOKIE not in response.cookies


async def test_repeated_failures_are_throttled_even_with_the_right_password(
    anon: httpx.AsyncClient, users, otklik: Otklik, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    frozen = users_mod.utcnow()
    monkeypatch.setattr(users_mod, "utcnow", lambda: frozen)  # the growing delay must not run out meanwhile
    for _ in range(THROTTLE_PAIR_FREE):
        page = await anon.get("/admin/login")
        r = await anon.post(
            "/admin/login", data={"login": "owner", "password": "x" * 12, "csrf_token": csrf_of(page.text)}
        )
        assert r.status_code == 401
    page = await anon.get("/admin/login")
    blocked = await anon.post(
        "/admin/login", data={"login": "owner", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert blocked.status_code == 429
    assert COOKIE not in blocked.cookies
    async with otklik.db.read() as session:
        assert await session.scalar(select(func.count(LoginFailure.id))) == THROTTLE_PAIR_FREE
        failed = await session.scalar(select(func.count(EventLog.id)).where(EventLog.kind == "user.login_failed"))
    assert failed == THROTTLE_PAIR_FREE
    # a reset by an owner lifts the block
    await set_password(otklik.db, "owner", PASSWORD)
    page = await anon.get("/admin/login")
    ok = await anon.post(
        "/admin/login", data={"login": "owner", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert ok.status_code == 303


async def test_a_state_change_without_csrf_is_rejected_and_changes_nothing(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    before = await owner.http.get("/admin/users")
    no_token = await owner.http.post("/admin/users", data={"login": "intruder", "role": "admin"})
    wrong = await owner.http.post("/admin/users", data={"login": "intruder", "role": "admin", "csrf_token": "forged"})
    header = await owner.http.post(
        "/admin/users", data={"login": "intruder", "role": "admin"}, headers={"X-CSRF-Token": "forged"}
    )
    assert no_token.status_code == wrong.status_code == header.status_code == 403
    after = await owner.http.get("/admin/users")
    assert "intruder" not in after.text and before.text.count("data-login") == after.text.count("data-login")
    ok = await owner.post("/admin/users", {"login": "helper", "role": "operator"})
    assert ok.status_code == 201 and 'data-login="helper"' in ok.text


async def test_a_password_reset_ends_every_session_of_that_user(app, users, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    operator = await sign_in(app, "operator")
    assert (await operator.http.get("/admin")).status_code == 200
    await set_password(otklik.db, "operator", "another password 1")
    assert (await operator.http.get("/admin", headers={"accept": "application/json"})).status_code == 401


async def test_a_deactivated_user_is_signed_out_at_once(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    analyst = await as_role(Role.ANALYST)
    page = await owner.http.get("/admin/users")
    import re

    user_id = re.search(r'data-login="analyst">.*?action="/admin/users/(\d+)"', page.text, re.S)
    assert user_id
    response = await owner.post(f"/admin/users/{user_id.group(1)}", {"active": "0"})
    assert response.status_code == 200
    assert (await analyst.http.get("/admin", headers={"accept": "application/json"})).status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil", "/chat"])
async def test_the_next_parameter_never_leaves_the_admin(anon: httpx.AsyncClient, users, target: str) -> None:  # type: ignore[no-untyped-def]
    page = await anon.get("/admin/login")
    response = await anon.post(
        "/admin/login",
        data={"login": "owner", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": target},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"


async def test_hostile_login_input_gets_a_clear_answer(anon: httpx.AsyncClient, users) -> None:  # type: ignore[no-untyped-def]
    page = await anon.get("/admin/login")
    huge = await anon.post(
        "/admin/login", data={"login": "a" * 5000, "password": "b", "csrf_token": csrf_of(page.text)}
    )
    assert huge.status_code == 422
    page = await anon.get("/admin/login")
    script = await anon.post(
        "/admin/login",
        data={"login": "<script>alert(1)</script>", "password": "x" * 12, "csrf_token": csrf_of(page.text)},
    )
    assert script.status_code == 401
    assert "<script>alert(1)</script>" not in script.text and "&lt;script&gt;" in script.text
