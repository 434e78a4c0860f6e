"""Care admin pages in a real browser: an analyst reads the incidents dashboard (SVG charts, counts) and
the review insights; an operator fixes a reply draft the guardrails refused and approves it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import update

from tests.browser.conftest import LiveServer, sign_in

Shot = Callable[[Page, str], None]
NOW = datetime.now(UTC).replace(microsecond=0)

INCIDENTS = [  # (category, outcome, product, rating, phrase, needs_check, days ago)
    ("wrong_item", "resolved_by_bot", "123456789", 5, "прислали не тот размер", False, 1),
    ("wrong_item", "handed_off", "123456789", 4, "пришёл не тот размер геля", True, 2),
    ("wrong_item", "resolved_by_bot", "123456789", 5, "не тот товар в пакете", False, 6),
    ("defective_item", "resolved_by_bot", "234567890", 4, "флакон треснул при доставке", False, 3),
    ("defective_item", "handed_off", "234567890", 2, "крышка сломана, флакон течёт", False, 11),
    ("side_effect", "resolved_by_bot", "123456789", 5, "гель жжёт, это нормально?", False, 4),
    ("side_effect", "unresolved", "123456789", None, "жжёт и краснеет кожа", False, 9),
    ("delivery_issue", "resolved_by_bot", "", 3, "долго везут заказ", False, 5),
    ("return_refund", "resolved_by_bot", "", 4, "как вернуть деньги за товар", False, 13),
]
REVIEWS = [  # (feedback id, stars, category, text, nm_id, days ago, with a draft)
    ("fb-1", 1, "wrong_item", "Пришёл не тот размер, заказывала M, а пришёл L", 123456789, 2, True),
    ("fb-2", 2, "defective_item", "Флакон пришёл треснутый", 123456789, 9, False),
    ("fb-3", 2, "smell", "Резкий запах химии", 234567890, 16, False),
    ("fb-4", 3, "packaging", "Коробка мятая, но товар целый", 123456789, 23, False),
    ("fb-5", 1, "side_effect", "Сильно жжёт, смыла сразу", 123456789, 30, False),
    ("fb-6", 2, "wrong_item", "Прислали другой товар", 234567890, 37, False),
    ("fb-7", 5, None, "Отличный гель, спасибо", 123456789, 3, False),
]


async def _seed(server: LiveServer) -> None:
    from otklik.adapters.db.models import ChannelAccount
    from otklik.bootstrap import Otklik
    from otklik.capabilities.care.incidents import IncidentInput, record_incident
    from otklik.capabilities.care.models import WBFeedback
    from otklik.capabilities.care.replies import create_drafts
    from otklik.channels.wildberries.accounts import add_wb_account
    from otklik.config import Settings
    from otklik.core.messages import EventKind, InboundEvent
    from otklik.testing.fake_wb import make_token

    settings = Settings(env="test", data_dir=server.data_dir, database_url=f"sqlite+aiosqlite:///{server.db_path}",
                        nlu="keywords", demo=False, default_pack="care-ru")  # fmt: skip
    otk = Otklik.build(settings)
    await otk.start(migrate=False)
    try:
        webchat = await otk.ensure_account("webchat", "webchat", "care-ru")
        for i, (category, outcome, product, rating, phrase, needs, ago) in enumerate(INCIDENTS):
            result = await otk.ingest(
                InboundEvent(webchat, f"care-{i}", f"buyer-care-{i}", EventKind.TEXT, text="/start")
            )
            assert result.conversation_id is not None
            data = IncidentInput(result.conversation_id, webchat, "case-1", category, outcome, product,
                                 rating=rating, phrase=phrase, needs_check=needs)  # fmt: skip
            async with otk.db.write() as session:
                await record_incident(session, data, NOW - timedelta(days=ago))
        # A WB account that the worker does not sync (disabled): no call leaves this machine.
        account, _ = await add_wb_account(otk.db, otk.vault, make_token(), name="wb-demo")
        async with otk.db.write() as session:
            await session.execute(update(ChannelAccount).where(ChannelAccount.id == account).values(enabled=False))
            for fid, stars, category, text, nm_id, ago, _draft in REVIEWS:
                session.add(
                    WBFeedback(channel_account_id=account, feedback_id=fid, nm_id=nm_id, rating=stars, text=text,
                               product_name="Гель разогревающий" if nm_id == 123456789 else "Масло массажное",
                               created_date=NOW - timedelta(days=ago), negative=category is not None,
                               category=category, confidence=90, classified_by="offline",
                               answer_text="" if _draft else "Спасибо за отзыв!", imported_at=NOW, updated_at=NOW)
                )  # fmt: skip
        await create_drafts(otk.db, account_id=account)
    finally:
        await otk.close()


def seed(server: LiveServer) -> None:
    """Seed in a thread: Playwright's sync API owns this thread's event loop."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_seed(server))
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def test_an_analyst_reads_the_incidents_dashboard_and_review_insights(
    admin_context: BrowserContext, live_server: LiveServer, screenshot: Shot
) -> None:
    seed(live_server)
    page = sign_in(admin_context, live_server, "analyst")
    page.click("a[data-nav='/admin/care/incidents']")
    expect(page).to_have_url(f"{live_server.url}/admin/care/incidents")
    expect(page.locator("[data-k=total]")).to_have_text("9")
    expect(page.locator("[data-k=bot_share]")).to_have_text("66.7%")
    expect(page.locator("[data-k=needs_check]")).to_have_text("1")
    chart = page.locator("svg[data-testid=chart-category]")
    expect(chart).to_be_visible()
    expect(chart.locator("g.bar[data-key=wrong_item]")).to_have_attribute("data-value", "3")
    assert chart.locator("rect").count() == 5
    expect(page.locator("svg[data-testid=chart-series] rect").first).to_be_visible()
    expect(page.locator("table[data-testid=incidents] tbody tr")).to_have_count(9)
    screenshot(page, "admin-care-incidents")

    page.select_option("select[name=category]", "wrong_item")
    page.select_option("select[name=needs_check]", "1")
    page.click("#incident-filters button[type=submit]")
    expect(page.locator("[data-k=total]")).to_have_text("3")
    expect(page.locator("table[data-testid=incidents] tbody tr")).to_have_count(1)

    page.click("a[data-nav='/admin/care/reviews']")
    expect(page.locator("[data-k=negative]")).to_have_text("6")
    expect(page.locator("svg[data-testid=chart-category] g.bar[data-key=wrong_item]")).to_have_attribute(
        "data-value", "2"
    )
    expect(page.locator("[data-testid=sync-now]")).to_have_count(0)  # syncing is for owners and admins
    expect(page.locator("[data-testid=examples]")).to_contain_text("Флакон пришёл треснутый")
    screenshot(page, "admin-care-reviews")


def test_an_operator_approves_a_reply_draft(
    admin_context: BrowserContext, live_server: LiveServer, screenshot: Shot
) -> None:
    seed(live_server)
    page = sign_in(admin_context, live_server, "operator")
    expect(page.locator("a[data-nav='/admin/care/incidents']")).to_have_count(0)
    page.click("a[data-nav='/admin/care/replies']")
    card = page.locator("article[data-status=draft]").first
    expect(card).to_contain_text("Пришёл не тот размер")
    text = card.locator("textarea[name=text]")
    expect(text).to_contain_text("Не тот товар")
    text.fill("Здравствуйте! Напишите нам в Telegram @shop_help или по телефону +7 999 123-45-67.")
    card.locator("[data-testid=approve]").click()
    expect(page.get_by_test_id("guardrail")).to_contain_text("marketplace rules")
    card = page.locator("article[data-status=draft]").first
    expect(card.locator("textarea[name=text]")).to_have_value(
        "Здравствуйте! Напишите нам в Telegram @shop_help или по телефону +7 999 123-45-67."
    )  # nothing typed is lost
    screenshot(page, "admin-care-reply-refused")
    card.locator("textarea[name=text]").fill(
        "Здравствуйте! Жаль, что размер не тот. Оформите возврат в приложении Wildberries с причиной «Не тот товар»."
    )
    card.locator("[data-testid=approve]").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Approved")
    expect(page.locator("[data-count=approved]")).to_have_text("1")
    page.click("nav.care-tabs a[data-status=approved]")
    approved = page.locator("article[data-status=approved]")
    expect(approved).to_have_count(1)
    expect(approved).to_contain_text("approved by Operator")
    screenshot(page, "admin-care-replies")
