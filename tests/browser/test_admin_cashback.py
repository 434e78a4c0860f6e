"""Cashback in a real browser: a buyer sends a review screenshot in the web chat (WB cannot be asked, so the
claim goes to moderation); a moderator sees it in the queue with the screenshot and approves it; the buyer
is told; the payout page shows the details masked. The campaign page shows the marketplace-rules note next
to the reward condition and the entry link with its QR code for insert cards."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.conftest import LiveServer, sign_in
from tests.capabilities.cashback.screens import review_screenshot

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
GEL = 123456789
REVIEW = "Отличный гель, греет мягко, запах приятный. Пользуемся неделю, всё понравилось."
CARD = "4111 1111 1111 1111"


async def _campaign(server: LiveServer) -> int:
    from otklik.bootstrap import Otklik
    from otklik.capabilities.cashback.campaigns import CampaignInput, create_campaign
    from otklik.clock import utcnow
    from otklik.config import Settings

    settings = Settings(env="test", data_dir=server.data_dir, database_url=f"sqlite+aiosqlite:///{server.db_path}",
                        nlu="keywords", demo=False, default_pack="care-ru")  # fmt: skip
    otk = Otklik.build(settings)
    await otk.start(migrate=False)
    try:
        data = CampaignInput(
            name="Весна 2025",
            reward_kopecks=15000,
            starts_at=utcnow() - timedelta(days=3),
            ends_at=utcnow() + timedelta(days=30),
            status="active",
            products=[{"nm_id": GEL, "name": "Гель-смазка 50 мл"}, {"nm_id": 234567890, "name": "Масло массажное"}],
        )
        async with otk.db.write() as session:
            return await create_campaign(session, data, actor="user:admin", now=utcnow())
    finally:
        await otk.close()


def seed_campaign(server: LiveServer) -> int:
    """A running campaign, written from a thread (Playwright's sync API owns this thread's event loop)."""
    out: list[int] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            out.append(asyncio.run(_campaign(server)))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]
    return out[0]


def bot(page: Page, text: str) -> Locator:
    return page.locator(".msg--out", has_text=text)


def send_text(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def buyer_sends_a_screenshot(page: Page, server: LiveServer, campaign_id: int, folder: Path) -> None:
    page.goto(f"{server.url}/chat?start=cb_{campaign_id}")
    expect(bot(page, "Бонус 150 ₽")).to_have_count(1)
    page.get_by_role("button", name="Согласен").click()
    expect(bot(page, "Какой товар")).to_have_count(1)
    page.get_by_role("button", name="Гель-смазка 50 мл").click()
    expect(bot(page, "скриншот опубликованного отзыва")).to_have_count(1)
    shot = folder / "review.png"
    shot.write_bytes(review_screenshot(REVIEW, name="Анна", when="сегодня"))
    page.locator("#file").set_input_files(shot)
    # No WB API key on this server: the automatic match cannot run, a moderator decides.
    expect(bot(page, "Скриншот получен")).to_have_count(1, timeout=90_000)
    expect(bot(page, "Куда перечислить")).to_have_count(1)
    send_text(page, CARD)
    expect(bot(page, "Реквизиты сохранены")).to_have_count(1)
    expect(bot(page, "Реквизиты сохранены")).to_contain_text("1111")


def test_a_moderator_approves_a_claim_in_the_queue_with_the_screenshot_shown(
    page: Page, admin_context: BrowserContext, live_server: LiveServer, tmp_path: Path, screenshot: Shot
) -> None:
    campaign_id = seed_campaign(live_server)
    buyer_sends_a_screenshot(page, live_server, campaign_id, tmp_path)
    screenshot(page, "cashback-webchat")

    moderator = sign_in(admin_context, live_server, "moderator")
    moderator.goto(f"{live_server.url}/admin/claims")
    row = moderator.locator("tr[data-claim]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Гель-смазка 50 мл")
    expect(row).to_contain_text("•••• 1111")  # masked: the full number is never shown
    expect(moderator.locator("main")).not_to_contain_text(CARD)
    screenshot(moderator, "admin-cashback-queue")

    row.get_by_role("link").first.click()
    image = moderator.get_by_test_id("screenshot")
    expect(image).to_be_visible()
    moderator.wait_for_function("img => img.complete && img.naturalWidth === 1080", arg=image.element_handle())
    expect(moderator.get_by_test_id("state")).to_have_text("in moderation")
    expect(moderator.get_by_test_id("checks")).to_contain_text("Wildberries")
    expect(moderator.get_by_test_id("payout-masked")).to_have_text("карта •••• 1111")
    screenshot(moderator, "admin-cashback-claim")

    moderator.get_by_test_id("approve").click()
    expect(moderator.get_by_test_id("state")).to_have_text("approved")
    expect(moderator.get_by_test_id("done")).to_be_visible()
    expect(bot(page, "одобрен")).to_have_count(1)  # the buyer is told at once

    moderator.goto(f"{live_server.url}/admin/payouts")
    due = moderator.get_by_test_id("due").locator("tr[data-claim]")
    expect(due).to_have_count(1)
    expect(due).to_contain_text("карта •••• 1111")
    screenshot(moderator, "admin-cashback-payouts")


def test_the_campaign_page_shows_the_rules_note_and_the_qr_link(
    admin_context: BrowserContext, live_server: LiveServer, screenshot: Shot
) -> None:
    campaign_id = seed_campaign(live_server)
    admin = sign_in(admin_context, live_server, "admin")
    admin.goto(f"{live_server.url}/admin/campaigns")
    admin.get_by_role("link", name="Весна 2025").click()
    expect(admin.locator("h1")).to_have_text("Весна 2025")
    note = admin.get_by_test_id("rules-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("forbid rewarding only positive reviews")
    # the note sits with the reward condition it is about
    expect(admin.locator("fieldset.cb-condition").get_by_test_id("rules-note")).to_have_count(1)
    expect(admin.locator("input[name=condition][value=any]")).to_be_checked()

    link = admin.get_by_test_id("deep-link")
    expect(link).to_have_text(f"{live_server.url}/chat?start=cb_{campaign_id}")
    qr = admin.get_by_test_id("qr-png")
    expect(qr).to_be_visible()
    response = admin.request.get(f"{live_server.url}{qr.get_attribute('href')}")
    assert response.status == 200 and response.headers["content-type"] == "image/png"
    assert response.body().startswith(b"\x89PNG")
    screenshot(admin, "admin-cashback-campaign")
