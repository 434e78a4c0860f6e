"""Settings and audit in a real browser: an operator is refused, an admin edits business hours, the
audit log shows the change."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import LiveServer, sign_in

Shot = Callable[[Page, str], None]


def test_an_operator_cannot_open_settings(admin_context: BrowserContext, live_server: LiveServer) -> None:
    page = sign_in(admin_context, live_server, "operator")
    expect(page.locator("a[data-nav='/admin/settings']")).to_have_count(0)
    expect(page.locator("a[data-nav='/admin/audit']")).to_have_count(0)
    for path in ("/admin/settings", "/admin/settings/hours", "/admin/audit"):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("alert")).to_contain_text("Your role does not allow")


def test_an_admin_edits_business_hours_and_the_audit_log_shows_it(
    admin_context: BrowserContext, live_server: LiveServer, screenshot: Shot
) -> None:
    page = sign_in(admin_context, live_server, "admin")
    page.click("a[data-nav='/admin/settings']")
    expect(page.get_by_test_id("accounts")).to_contain_text("webchat")
    screenshot(page, "admin-settings-accounts")

    page.click("a[data-tab=hours]")
    expect(page).to_have_url(f"{live_server.url}/admin/settings/hours")
    form = page.locator("#hours-form")
    form.locator("input[name=enabled]").check()
    form.locator("input[name=timezone]").fill("Europe/Moscow")
    for day in ("mon", "tue", "wed", "thu", "fri"):
        form.locator(f"input[name={day}]").fill("09:00-18:00")
    form.locator("input[name=sat]").fill("10:00-14:00, 13:00-15:00")  # overlapping: refused
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("errors")).to_contain_text("overlaps")
    expect(form.locator("input[name=sat]")).to_have_value("10:00-14:00, 13:00-15:00")  # nothing typed is lost

    form.locator("input[name=sat]").fill("10:00-14:00")
    form.locator("textarea[name=holidays]").fill("2030-01-01\n2030-01-07")
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Saved")
    page.reload()
    expect(form.locator("input[name=mon]")).to_have_value("09:00-18:00")
    expect(form.locator("input[name=sat]")).to_have_value("10:00-14:00")
    expect(form.locator("textarea[name=holidays]")).to_have_value("2030-01-01\n2030-01-07")
    expect(page.get_by_test_id("hours-status")).to_be_visible()
    screenshot(page, "admin-settings-hours")

    page.click("a[data-tab=texts]")
    expect(page.locator("textarea[name='text:handoff:ru']")).to_be_visible()
    screenshot(page, "admin-settings-texts")

    page.click("a[data-nav='/admin/audit']")
    row = page.locator("tr[data-kind='settings.business_hours']").first
    expect(row).to_contain_text("user:admin")
    expect(row).to_contain_text("10:00-14:00")
    page.fill("input[name=kind]", "settings.")
    page.click("#audit-filters button[type=submit]")
    expect(page.locator("tr[data-kind]")).to_have_count(1)
    screenshot(page, "admin-audit")
