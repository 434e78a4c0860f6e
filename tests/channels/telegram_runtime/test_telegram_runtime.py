"""Telegram through the whole runtime: the real aiogram client against the fake Bot API on loopback,
webhook and long polling, exactly-once replies, 429 bursts, blocked buyers."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from otklik.adapters.db.models import Contact, InboundEventRow, OutboxRow
from otklik.bootstrap import Otklik
from otklik.channels.telegram.adapter import SECRET_HEADER
from otklik.platform.channel_accounts import add_account
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from otklik.web.app import create_app
from tests.conftest import make_settings

SECRET = "fake-webhook-secret-for-tests"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def bot_app(tmp_path: Path, db_url: str, fake: FakeTelegramServer) -> AsyncIterator[tuple[Otklik, int]]:
    app = Otklik.build(make_settings(tmp_path, db_url, telegram_api_url=fake.base_url))
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
    await app.reload()
    try:
        yield app, account
    finally:
        await app.close()


@pytest.fixture
async def webhook(bot_app: tuple[Otklik, int]) -> AsyncIterator[Callable[..., Any]]:
    app, account = bot_app
    web = create_app(app, worker=False, manage_lifecycle=False)
    app.start_worker()  # public_url is unset, so polling starts too: it sees no queued updates here
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:

        async def post(update: Any, secret: str | None = SECRET, raw: bytes | None = None) -> httpx.Response:
            headers = {"Content-Type": "application/json"}
            if secret is not None:
                headers[SECRET_HEADER] = secret
            body = raw if raw is not None else json.dumps(update).encode()
            return await http.post(f"/webhooks/telegram/{account}", content=body, headers=headers)

        yield post


async def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def texts(fake: FakeTelegramServer, chat: int) -> list[str]:
    return [m.get("text") or m.get("caption") or "" for m in fake.sent_messages(chat)]


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_a_buyer_walks_the_demo_flow_via_webhook(fake: FakeTelegramServer, webhook: Any) -> None:
    chat = 501
    assert (await webhook(fake.text_update(chat, "/start"))).status_code == 200
    await wait_for(lambda: len(fake.sent_messages(chat)) == 2)
    menu = fake.sent_messages(chat)[1]
    buttons = [b for row in menu["reply_markup"]["inline_keyboard"] for b in row]
    defect = next(b for b in buttons if "Брак" in b["text"])
    await webhook(fake.callback_update(chat, defect["callback_data"], message_id=menu["message_id"]))
    await wait_for(lambda: len(fake.sent_messages(chat)) == 3)
    assert "фото" in texts(fake, chat)[2]
    assert fake.calls_of("answerCallbackQuery"), "button presses must be answered"
    await webhook(fake.photo_update(chat, png()))
    await wait_for(lambda: len(fake.sent_messages(chat)) == 5)
    assert "Wildberries" in texts(fake, chat)[3] and "Оцените" in texts(fake, chat)[4]
    await webhook(fake.text_update(chat, "5"))
    await wait_for(lambda: len(fake.sent_messages(chat)) == 6)
    assert texts(fake, chat)[5].startswith("Спасибо за оценку")


async def test_a_duplicate_update_id_gets_one_reply(
    fake: FakeTelegramServer,
    webhook: Any,
    bot_app: tuple[Otklik, int],
) -> None:
    update = fake.text_update(502, "/start")
    assert (await webhook(update)).status_code == 200
    assert (await webhook(update)).status_code == 200
    await wait_for(lambda: len(fake.sent_messages(502)) >= 2)
    await asyncio.sleep(0.3)
    assert len(fake.sent_messages(502)) == 2
    app, _ = bot_app
    async with app.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(InboundEventRow)) == 1


@pytest.mark.parametrize(
    ("secret", "raw", "status"),
    [
        ("wrong", None, 401),
        (None, None, 401),
        (SECRET, b"{not json", 400),
        (SECRET, b"[1,2]", 400),
        (SECRET, b'{"message": {}}', 400),
    ],
)
async def test_forged_or_malformed_webhooks_store_nothing(
    fake: FakeTelegramServer,
    webhook: Any,
    bot_app: tuple[Otklik, int],
    secret: str | None,
    raw: bytes | None,
    status: int,
) -> None:
    response = await webhook(fake.text_update(503, "/start"), secret=secret, raw=raw)
    assert response.status_code == status
    app, _ = bot_app
    async with app.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(InboundEventRow)) == 0
    assert fake.sent_messages(503) == []


async def test_long_polling_delivers_updates_once(fake: FakeTelegramServer, bot_app: tuple[Otklik, int]) -> None:
    app, _ = bot_app
    fake.queue_update(fake.text_update(504, "/start"))
    app.start_worker()
    await wait_for(lambda: len(fake.sent_messages(504)) == 2)
    fake.queue_update(fake.text_update(504, "оператор"))
    await wait_for(lambda: len(fake.sent_messages(504)) == 3)
    assert "менеджер" in texts(fake, 504)[2]
    await asyncio.sleep(0.5)
    assert len(fake.sent_messages(504)) == 3


async def test_a_burst_of_429s_still_delivers_every_message_once_in_order(
    fake: FakeTelegramServer,
    webhook: Any,
) -> None:
    fake.rate_limit("sendMessage", retry_after=1, times=4)
    chats = [601, 602, 603]
    for chat in chats:
        await webhook(fake.text_update(chat, "/start"))
    await wait_for(lambda: all(len(fake.sent_messages(c)) >= 2 for c in chats), timeout=20)
    await asyncio.sleep(0.5)
    for chat in chats:
        assert [t.split("!")[0] for t in texts(fake, chat)] == [
            "Здравствуйте",
            "Напишите, что случилось, или выберите вариант:",
        ]
    assert sum(1 for c in fake.calls_of("sendMessage") if c.status == 429) == 4


async def test_a_blocked_buyer_is_marked_unreachable(
    fake: FakeTelegramServer,
    webhook: Any,
    bot_app: tuple[Otklik, int],
) -> None:
    app, _ = bot_app
    fake.block_chat(505)
    await webhook(fake.text_update(505, "/start"))

    async def failed() -> int:
        async with app.db.read() as session:
            return int(
                await session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "failed"))
                or 0
            )

    for _ in range(100):
        if await failed() >= 1:
            break
        await asyncio.sleep(0.05)
    async with app.db.read() as session:
        assert await session.scalar(select(Contact.reachable)) is False
    sends = len(fake.calls_of("sendMessage"))
    await asyncio.sleep(0.5)
    assert len(fake.calls_of("sendMessage")) == sends  # not retried
    fake.unblock_chat(505)
    await webhook(fake.member_update(505, blocked=False))
    async with app.db.read() as session:
        assert await session.scalar(select(Contact.reachable)) is True


async def test_bots_listed_in_settings_are_connected_once_and_bad_ones_are_skipped(
    tmp_path: Path,
    sqlite_url: str,
    fake: FakeTelegramServer,
) -> None:
    settings = make_settings(
        tmp_path, sqlite_url, telegram_api_url=fake.base_url, telegram_tokens=(DEFAULT_TOKEN, "999:REFUSED-token")
    )
    for _ in range(2):  # a restart does not add the bot again
        app = Otklik.build(settings)
        await app.start()
        kinds = [a.kind for a in app.ctx.accounts.values()]
        await app.close()
        assert kinds.count("telegram") == 1
