"""The cashback journey on Telegram: the real aiogram client against the fake Bot API, the fake WB server,
real OCR; bad uploads (PDF document, 30 MB photo) get clear replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from otklik.bootstrap import Otklik
from otklik.capabilities.cashback.models import CashbackClaim
from otklik.channels.telegram.adapter import SECRET_HEADER
from otklik.channels.wildberries.accounts import add_wb_account
from otklik.platform.channel_accounts import add_account
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from otklik.testing.fake_wb import FakeWB
from otklik.web.app import create_app
from tests.capabilities.cashback.conftest import REVIEW_TEXT, add_campaign, needs_ocr, review_day, ru_date
from tests.capabilities.cashback.screens import big_jpeg, pdf, review_screenshot
from tests.conftest import make_settings

SECRET = "fake-webhook-secret-for-cashback-tests"


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def bot(
    tmp_path: Path, db_url: str, telegram: FakeTelegramServer, fake_wb: FakeWB
) -> AsyncIterator[tuple[Otklik, Callable[..., Any], int]]:
    app = Otklik.build(make_settings(tmp_path, db_url, telegram_api_url=telegram.base_url, wb_api_url=fake_wb.url))
    await app.start()
    account = await add_account(
        app.db,
        app.vault,
        kind="telegram",
        name="shop_bot",
        pack="care-ru",
        secret=DEFAULT_TOKEN,
        config={"username": "otklik_test_bot", "webhook_secret": app.vault.encrypt(SECRET)},
    )
    await add_wb_account(app.db, app.vault, fake_wb.token)
    await app.reload()
    campaign = await add_campaign(app)
    web = create_app(app, worker=False, manage_lifecycle=False)
    app.start_worker()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:

            async def post(update: Any) -> None:
                headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
                response = await http.post(f"/webhooks/telegram/{account}", content=json.dumps(update), headers=headers)
                assert response.status_code == 200

            yield app, post, campaign
    finally:
        await app.close()


async def said(fake: FakeTelegramServer, chat: int, fragment: str, timeout: float = 40.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for message in fake.sent_messages(chat):
            if fragment in (message.get("text") or ""):
                return message
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {fragment!r} in {[m.get('text') for m in fake.sent_messages(chat)]}")
        await asyncio.sleep(0.05)


def callback(message: dict[str, Any], title: str) -> str:
    keyboard = message["reply_markup"]["inline_keyboard"]
    return next(b["callback_data"] for row in keyboard for b in row if b["text"] == title)


@needs_ocr
async def test_full_journey_on_telegram(telegram: FakeTelegramServer, bot: tuple[Otklik, Any, int]) -> None:
    app, post, campaign = bot
    chat = 7001
    await post(telegram.text_update(chat, f"/start cb_{campaign}"))
    terms = await said(telegram, chat, "Бонус 150 ₽")
    await post(telegram.callback_update(chat, callback(terms, "Согласен"), message_id=terms["message_id"]))
    product = await said(telegram, chat, "Какой товар")
    await post(telegram.callback_update(chat, callback(product, "Гель-смазка 50 мл"), message_id=product["message_id"]))
    await said(telegram, chat, "скриншот опубликованного")
    await post(telegram.document_update(chat, pdf(), file_name="review.pdf", mime_type="application/pdf"))
    await said(telegram, chat, "а не картинка")
    await post(telegram.photo_update(chat, big_jpeg(30), declared_size=30 * 1024 * 1024))
    await said(telegram, chat, "слишком большой")
    async with app.db.read() as session:
        (claim,) = (await session.execute(select(CashbackClaim))).scalars().all()
    assert claim.state == "screenshot" and claim.screenshot_media_id is None
    await post(telegram.photo_update(chat, review_screenshot(REVIEW_TEXT, name="Анна", when=ru_date(review_day()))))
    await said(telegram, chat, "одобрен")
    await said(telegram, chat, "Куда перечислить")
    await post(telegram.text_update(chat, "4111 1111 1111 1111"))
    saved = await said(telegram, chat, "Реквизиты сохранены")
    assert "•••• 1111" in saved["text"] and "4111 1111" not in saved["text"]
    async with app.db.read() as session:
        (claim,) = (await session.execute(select(CashbackClaim))).scalars().all()
    assert (
        claim.state == "approved"
        and claim.payout_method == "card"
        and "4111111111111111" not in (claim.payout_secret or "")
    )
