"""The fake Bot API itself: envelopes, limits and long-poll semantics the adapter relies on."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from otklik.testing.fake_telegram import FakeTelegramServer

CHAT = 42


async def test_unknown_token_and_method(fake: FakeTelegramServer) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        unknown = await client.get("/bot999:nope/getMe")
        missing = await client.post(f"/bot{fake.default_token}/sendTelepathy")
        me = await client.get(f"/bot{fake.default_token}/GETME")  # method names are case-insensitive
    assert (unknown.status_code, unknown.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert missing.status_code == 404 and missing.json()["ok"] is False
    assert me.json()["result"]["username"] == "otklik_test_bot"


async def test_json_and_query_bodies_are_understood(fake: FakeTelegramServer) -> None:
    url = f"/bot{fake.default_token}/sendMessage"
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        by_json = await client.post(
            url, json={"chat_id": CHAT, "text": "json", "reply_markup": {"remove_keyboard": True}}
        )
        by_query = await client.get(url, params={"chat_id": CHAT, "text": "query"})
        by_form = await client.post(url, data={"chat_id": str(CHAT), "text": "form"})
    assert [r.json()["result"]["text"] for r in (by_json, by_query, by_form)] == ["json", "query", "form"]
    assert [r.json()["result"]["message_id"] for r in (by_json, by_query, by_form)] == [1, 2, 3]
    assert fake.calls_of("sendMessage")[0].params["reply_markup"] == {"remove_keyboard": True}


async def test_limits_are_enforced(bot: Bot, fake: FakeTelegramServer) -> None:
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "я" * 4097)
    await bot.send_message(CHAT, "<b>" + "я" * 4096 + "</b>", parse_mode="HTML")  # tags do not count
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "😀" * 2049)  # 4098 UTF-16 units
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="д" * 33)]])
        await bot.send_message(CHAT, "кнопка", reply_markup=keyboard)
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(CHAT, photo=fake.store_file(b"", folder="photos").file_id, caption="c" * 1025)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(CHAT, "a < b <b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, " ")
    assert len(fake.sent_messages(CHAT)) == 1


async def test_long_poll_waits_for_an_update_and_offset_confirms(bot: Bot, fake: FakeTelegramServer) -> None:
    async def later() -> None:
        await asyncio.sleep(0.2)
        fake.queue_update(fake.text_update(CHAT, "наконец"))

    started = time.monotonic()
    _, updates = await asyncio.gather(later(), bot.get_updates(timeout=5))
    assert 0.15 < time.monotonic() - started < 2
    assert [u.message.text for u in updates if u.message] == ["наконец"]
    assert len(await bot.get_updates()) == 1  # not confirmed yet: delivered again
    assert await bot.get_updates(offset=updates[0].update_id + 1) == []
    assert fake.pending_updates() == []

    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []  # an empty long poll lasts `timeout`
    assert time.monotonic() - started >= 0.9


async def test_negative_offset_keeps_the_last_updates(bot: Bot, fake: FakeTelegramServer) -> None:
    for text in ("1", "2", "3"):
        fake.queue_update(fake.text_update(CHAT, text))
    updates = await bot.get_updates(offset=-1)
    assert [u.message.text for u in updates if u.message] == ["3"]
    assert len(fake.pending_updates()) == 1


async def test_edit_reply_markup_and_not_modified(bot: Bot, fake: FakeTelegramServer) -> None:
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="a")]])
    sent = await bot.send_message(CHAT, "?", reply_markup=keyboard)
    edited = await bot.edit_message_reply_markup(chat_id=CHAT, message_id=sent.message_id)
    assert not isinstance(edited, bool) and edited.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_reply_markup(chat_id=CHAT, message_id=999)


async def test_get_file_and_download(bot: Bot, fake: FakeTelegramServer) -> None:
    stored = fake.store_file(b"hello", extension="txt")
    file = await bot.get_file(stored.file_id)
    assert (file.file_size, file.file_path) == (5, stored.file_path)
    downloaded = await bot.download_file(file.file_path or "")
    assert downloaded is not None and downloaded.read() == b"hello"
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")
    big = fake.store_file(b"x", declared_size=21 * 1024 * 1024)
    with pytest.raises(TelegramBadRequest, match="file is too big"):
        await bot.get_file(big.file_id)


async def test_photo_upload_must_be_an_image(bot: Bot) -> None:
    from aiogram.types import BufferedInputFile

    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(CHAT, BufferedInputFile(b"not an image", filename="x.jpg"))


async def test_second_token(fake: FakeTelegramServer) -> None:
    fake.add_bot("777:second-token", username="second_bot")
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        me = await client.get("/bot777:second-token/getMe")
    assert me.json()["result"]["username"] == "second_bot"
