"""The visual flow builder in a real browser: a three-node chain built with the mouse is published and
answers in the web chat; a moved card is stored beside the flow (the YAML and versions unchanged); an edit
a marketplace forbids is marked on its node and publishing is refused; the channel previews render."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import LiveServer, sign_in

pytestmark = pytest.mark.browser
Shot = Callable[[Page, str], None]
SLOW = 20_000
FIRST = "Это первый узел, собранный мышкой."
LAST = "И последний узел. До встречи!"


def versions(server: LiveServer) -> list[tuple[int, int]]:
    with sqlite3.connect(server.db_path) as db:
        return db.execute(
            "SELECT version, active FROM flow_versions WHERE flow_key = 'care.main' ORDER BY version"
        ).fetchall()


def layout(server: LiveServer) -> dict[str, list[int]]:
    with sqlite3.connect(server.db_path) as db:
        row = db.execute("SELECT positions FROM flow_layouts WHERE flow_key = 'care.main'").fetchone()
    return json.loads(row[0]) if row else {}


def center(page: Page, selector: str) -> tuple[float, float]:
    target = page.locator(selector)
    target.wait_for(state="visible")  # the canvas may still be laying out on a loaded machine
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page: Page, source: str, target: tuple[float, float]) -> None:
    x, y = center(page, source)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move((x + target[0]) / 2, (y + target[1]) / 2, steps=4)
    page.mouse.move(*target, steps=4)
    page.mouse.up()


def open_canvas(admin: Page, server: LiveServer) -> None:
    admin.goto(f"{server.url}/admin/flows/care.main")
    if admin.get_by_test_id("view-canvas").get_attribute("aria-selected") != "true":  # the choice is remembered
        admin.get_by_test_id("view-canvas").click()
    expect(admin.locator("[data-node='hello']")).to_be_visible(timeout=SLOW)


def test_a_three_node_chain_built_with_the_mouse_answers_in_the_web_chat(
    admin_context: BrowserContext, live_server: LiveServer, page: Page, screenshot: Shot
) -> None:
    admin = sign_in(admin_context, live_server, "admin")
    admin.set_viewport_size({"width": 1280, "height": 800})
    open_canvas(admin, live_server)
    admin.select_option("#builder-type", "message")
    admin.get_by_test_id("builder-add").click()
    expect(admin.locator("[data-node='message_1']")).to_be_visible()
    admin.locator("#builder-panel textarea").first.fill(FIRST)
    expect(admin.locator("#flow-source")).to_have_value(re.compile(re.escape(FIRST)), timeout=SLOW)
    admin.locator("[data-node='hello']").click()  # select hello: the next node added is not linked to it
    admin.select_option("#builder-type", "end")
    admin.get_by_test_id("builder-add").click()
    expect(admin.locator("[data-node='end_1']")).to_be_visible()
    admin.locator("#builder-panel textarea").first.fill(LAST)
    expect(admin.locator("#flow-source")).to_have_value(re.compile(re.escape(LAST)), timeout=SLOW)
    # connect with the mouse: hello -> message_1 -> end_1
    admin.locator("#builder-fit").click()  # fits the drawing and brings the whole canvas on screen
    drag(admin, "[data-port='hello']", center(admin, "[data-node='message_1'] rect"))
    expect(admin.locator("#flow-source")).to_have_value(re.compile("next: message_1"), timeout=SLOW)
    drag(admin, "[data-port='message_1']", center(admin, "[data-node='end_1'] rect"))
    expect(admin.locator("#flow-source")).to_have_value(re.compile("next: end_1"), timeout=SLOW)
    expect(admin.locator(".edge[data-from='message_1'][data-to='end_1']")).to_have_count(1)
    admin.locator("[data-node='message_1']").click()
    screenshot(admin, "admin-flows-builder")
    admin.get_by_test_id("save-publish").click()
    expect(admin).to_have_url(f"{live_server.url}/admin/flows/care.main?version=2", timeout=SLOW)
    assert versions(live_server) == [(1, 0), (2, 1)]
    source = admin.locator("#flow-source").input_value()
    assert "  message_1:\n    type: message\n" in source and "# in a marketplace's own chat" in source

    page.goto(f"{live_server.url}/chat")
    expect(page.locator(".msg--out", has_text=FIRST)).to_be_visible(timeout=SLOW)
    expect(page.locator(".msg--out", has_text=LAST)).to_be_visible(timeout=SLOW)


def test_a_moved_card_is_stored_beside_the_flow_and_bad_edits_are_refused(
    admin_context: BrowserContext, live_server: LiveServer, screenshot: Shot
) -> None:
    admin = sign_in(admin_context, live_server, "admin")
    admin.set_viewport_size({"width": 1280, "height": 800})
    open_canvas(admin, live_server)
    original = admin.locator("#flow-source").input_value()
    before = admin.locator("[data-node='thanks']").get_attribute("transform")
    x, y = center(admin, "[data-node='thanks'] rect")
    drag(admin, "[data-node='thanks'] rect", (x + 60, y + 40))
    admin.locator("[data-node='thanks']").focus()
    admin.keyboard.press("ArrowRight")  # keyboard: the focused card moves too
    expect(admin.locator("[data-node='thanks']")).not_to_have_attribute("transform", before or "")
    admin.wait_for_timeout(900)  # the layout is stored 0.4 s after the last move (debounced request)
    stored = layout(live_server)
    assert "thanks" in stored
    admin.get_by_test_id("save-publish").click()  # the YAML is unchanged: no new version
    expect(admin).to_have_url(f"{live_server.url}/admin/flows/care.main?version=1", timeout=SLOW)
    expect(admin.locator("#flow-source")).to_have_value(original)
    assert versions(live_server) == [(1, 1)]
    open_canvas(admin, live_server)
    moved = admin.locator("[data-node='thanks']").get_attribute("transform")
    assert moved == f"translate({stored['thanks'][0]} {stored['thanks'][1]})"

    # previews of a node with five buttons
    admin.locator("[data-node='menu']").click()
    expect(admin.locator(".preview[data-channel='whatsapp']")).to_have_attribute("data-mode", "list")
    expect(admin.locator(".preview[data-channel='wb'] .bubble.current")).to_contain_text("1. 🎁 Бонус за отзыв")
    expect(admin.locator(".preview[data-channel='web'] .bubble").first).to_contain_text("Здравствуйте")  # the path
    expect(admin.locator(".preview[data-channel='telegram'] .p-button")).to_have_count(5)
    expect(admin.locator(".preview[data-channel='web'] .p-button")).to_have_count(5)

    # a text a marketplace chat forbids: marked on the node, publishing refused
    admin.locator("[data-node='hello']").click()
    admin.locator("#builder-panel textarea").first.fill("Пишите нам в телеграм @shop_help")
    expect(admin.locator("[data-node='hello']")).to_have_class(has_class("error"), timeout=SLOW)
    expect(admin.get_by_test_id("node-checks")).to_contain_text("marketplace")
    expect(admin.get_by_test_id("builder-count")).not_to_be_empty()
    admin.get_by_test_id("save-publish").click()
    expect(admin.locator("#flow-errors li").first).to_contain_text("marketplace", timeout=SLOW)
    screenshot(admin, "admin-flows-builder-error")
    assert versions(live_server) == [(1, 1)]


def has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"\b{name}\b")
