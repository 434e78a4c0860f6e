"""The operator inbox in a real browser, against the live app with the care-ru pack.

A buyer in the web chat asks for a person -> the conversation appears in "waiting" without a reload ->
an operator opens it and replies -> the buyer sees the reply -> the operator returns it to the bot ->
the bot answers the buyer's next message. Hostile buyer text is shown literally; an analyst can look
but not reply (no reply box, and the server answers 403).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.conftest import LiveServer, Watched, sign_in

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
GREETING = "Здравствуйте! Я помощник магазина."
HANDOFF = "Передаю ваш вопрос менеджеру"
REPLY = "Здравствуйте! Я Ольга, менеджер магазина. Сейчас проверю ваш заказ."
HOSTILE = '<script>alert(1)</script><b>жирный</b> <img src=x onerror="alert(2)">'


def bot(page: Page, text: str | None = None) -> Locator:
    return page.locator(".msg--out", has_text=text) if text else page.locator(".msg--out")


def open_chat(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.url}/chat")
    expect(bot(page, GREETING)).to_have_count(1)


def send_text(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def ask_for_a_person(page: Page, server: LiveServer) -> None:
    open_chat(page, server)
    send_text(page, "позовите оператора")
    expect(bot(page, HANDOFF)).to_have_count(1)


def open_inbox(context: BrowserContext, server: LiveServer, role: str, watched: Watched) -> Page:
    admin = sign_in(context, server, role)
    admin.on("dialog", lambda dialog: (watched.dialogs.append(dialog.message), dialog.dismiss()))
    admin.on("pageerror", lambda error: watched.errors.append(str(error)))
    admin.goto(f"{server.url}/admin/inbox")
    return admin


def test_a_buyer_asks_for_a_person_an_operator_replies_and_hands_back_to_the_bot(
    page: Page, admin_context: BrowserContext, live_server: LiveServer, watched: Watched, screenshot: Shot
) -> None:
    operator = open_inbox(admin_context, live_server, "operator", watched)
    expect(operator.get_by_test_id("conv-empty")).to_be_visible()

    ask_for_a_person(page, live_server)

    row = operator.get_by_test_id("conv-row")
    expect(row).to_have_count(1)  # live: the page was not reloaded
    expect(row).to_contain_text("позовите оператора")
    expect(operator.get_by_test_id("count-waiting")).to_have_text("1")
    screenshot(operator, "inbox-waiting")

    row.locator("a").click()
    expect(operator.get_by_test_id("conversation")).to_be_visible()
    expect(operator.get_by_test_id("msg").filter(has_text=HANDOFF)).to_have_count(1)
    operator.get_by_test_id("reply-text").fill(REPLY)
    operator.get_by_test_id("send").click()
    expect(operator.get_by_test_id("msg").filter(has_text=REPLY)).to_have_count(1)
    expect(operator.get_by_test_id("reply-text")).to_have_value("")
    expect(operator.get_by_test_id("conv-status")).to_have_text("with an operator")  # live, no reload
    expect(operator.get_by_test_id("count-waiting")).to_have_text("0")  # it left "waiting"
    expect(operator.get_by_test_id("conv-empty")).to_be_visible()

    expect(bot(page, REPLY)).to_have_count(1)  # the buyer's web chat shows the operator's reply
    screenshot(operator, "inbox-conversation")

    operator.get_by_test_id("reply-text").fill("Покупатель ждёт курьера, перезвонить завтра")
    operator.get_by_test_id("add-note").click()
    expect(operator.locator(".msg.note")).to_have_count(1)

    operator.get_by_test_id("to-bot").locator("summary").click()
    screenshot(operator, "inbox-return-to-bot")
    operator.get_by_test_id("to-bot-submit").click()
    expect(operator.get_by_test_id("conv-status")).to_have_text("bot")

    answered = bot(page).count()
    send_text(page, "/start")
    expect(bot(page)).not_to_have_count(answered)
    expect(bot(page).last).not_to_contain_text(REPLY)
    expect(page.locator(".msg--out", has_text="Покупатель ждёт курьера")).to_have_count(0)  # notes stay inside
    assert watched.dialogs == [] and watched.errors == []


def test_hostile_buyer_text_is_shown_literally(
    page: Page, admin_context: BrowserContext, live_server: LiveServer, watched: Watched
) -> None:
    ask_for_a_person(page, live_server)
    send_text(page, HOSTILE)
    operator = open_inbox(admin_context, live_server, "operator", watched)
    row = operator.get_by_test_id("conv-row")
    expect(row).to_contain_text("<script>alert(1)</script>")
    row.locator("a").click()
    message = operator.get_by_test_id("msg").filter(has_text="<b>жирный</b>")
    expect(message).to_have_count(1)
    expect(message).to_contain_text('<img src=x onerror="alert(2)">')
    expect(message.locator("b, img, script")).to_have_count(0)
    operator.wait_for_timeout(500)
    assert watched.dialogs == []


def test_an_analyst_sees_the_conversation_but_cannot_reply(
    page: Page, admin_context: BrowserContext, live_server: LiveServer, watched: Watched, screenshot: Shot
) -> None:
    ask_for_a_person(page, live_server)
    analyst = open_inbox(admin_context, live_server, "analyst", watched)
    analyst.get_by_test_id("conv-row").locator("a").click()
    expect(analyst.get_by_test_id("msg").filter(has_text=HANDOFF)).to_have_count(1)
    expect(analyst.get_by_test_id("read-only")).to_be_visible()
    expect(analyst.get_by_test_id("composer")).to_have_count(0)
    expect(analyst.get_by_test_id("to-bot")).to_have_count(0)
    screenshot(analyst, "inbox-analyst")
    conversation_id = analyst.get_by_test_id("conversation").get_attribute("data-id")
    status = analyst.evaluate(
        """async (id) => {
            const body = new FormData();
            body.append("text", "I should not be able to send this");
            return (await window.otklik.post(`/admin/inbox/c/${id}/reply`, body)).status;
        }""",
        conversation_id,
    )
    assert status == 403
    expect(bot(page, "I should not be able to send this")).to_have_count(0)
    assert re.match(r"^\d+$", conversation_id or "")
