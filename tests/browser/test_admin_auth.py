"""The admin in a real browser: sign in, the menu follows the role, a forbidden page is refused."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import LiveServer, sign_in

Shot = Callable[[Page, str], None]


def test_sign_in_and_the_menu_follows_the_role(
    admin_context: BrowserContext, live_server: LiveServer, screenshot: Shot
) -> None:
    page = admin_context.new_page()
    page.goto(f"{live_server.url}/admin/users")
    expect(page).to_have_url(f"{live_server.url}/admin/login?next=%2Fadmin%2Fusers")
    page.fill("input[name=login]", "owner")
    page.fill("input[name=password]", "wrong password!")
    page.click("#login-form button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Wrong login or password")
    screenshot(page, "admin-login")
    page.fill("input[name=password]", "browser test password")
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/admin/users")
    expect(page.locator("tr[data-login=analyst]")).to_be_visible()
    page.click("[data-testid=logout]")
    expect(page).to_have_url(f"{live_server.url}/admin/login")
    page.goto(f"{live_server.url}/admin")
    expect(page).to_have_url(f"{live_server.url}/admin/login?next=%2Fadmin")


def test_an_analyst_sees_no_users_menu_and_gets_403(admin_context: BrowserContext, live_server: LiveServer) -> None:
    page = sign_in(admin_context, live_server, "analyst")
    expect(page.get_by_test_id("who")).to_contain_text("analyst")
    expect(page.locator("a[data-nav='/admin/users']")).to_have_count(0)
    response = page.goto(f"{live_server.url}/admin/users")
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("Your role does not allow")
