"""TelegramSender: the real aiogram Bot against the fake Bot API on loopback."""

from __future__ import annotations

import pytest
from aiogram import Bot

from otklik.adapters.media import MediaStore
from otklik.channels.telegram.adapter import (
    InMemoryCallbackStore,
    TelegramSender,
    TelegramTokenRevoked,
    make_bot,
)
from otklik.core.channel import ChannelSender, SendError
from otklik.core.messages import Attachment, Button, OutboundMessage
from otklik.testing.fake_telegram import FakeTelegramServer

from .conftest import png_bytes

CHAT = 385102944


@pytest.fixture
def sender(bot: Bot, media: MediaStore) -> TelegramSender:
    return TelegramSender(bot, media=media, retry_base_delay=0.01, close_bot=False)


async def send(sender: TelegramSender, message: OutboundMessage, chat: int = CHAT) -> str | None:
    result = await sender.send(str(chat), message, idempotency_key="row-1")
    return result.external_id


def paragraphs(total: int) -> str:
    """Numbered paragraphs of ~300 chars, `total` characters in all."""
    parts, size, number = [], 0, 0
    while size < total:
        number += 1
        paragraph = f"Абзац {number:03d}. " + "Текст про возврат товара на Wildberries. " * 7
        parts.append(paragraph.strip())
        size += len(paragraph) + 2
    return "\n\n".join(parts)[:total].rstrip()


def test_sender_declares_telegram_limits(sender: TelegramSender) -> None:
    as_protocol: ChannelSender = sender  # mypy checks the protocol
    assert as_protocol.kind == "telegram"
    assert sender.supports_idempotency is False
    assert sender.limits.per_second == 30
    assert sender.limits.per_chat_interval == 1.0


async def test_text_arrives_as_the_buyer_should_see_it(sender: TelegramSender, fake: FakeTelegramServer) -> None:
    text = "Цена <b>100</b> & скидка 5 < 10 — это не тег"
    external_id = await send(sender, OutboundMessage(text=text))

    (shown,) = fake.sent_messages(CHAT)
    assert shown["text"] == text  # Telegram parsed our HTML: no bold entity, literal brackets
    assert "entities" not in shown
    assert external_id == str(shown["message_id"])
    (call,) = fake.calls_of("sendMessage")
    assert call.params["parse_mode"] == "HTML"
    assert call.params["text"] == "Цена &lt;b&gt;100&lt;/b&gt; &amp; скидка 5 &lt; 10 — это не тег"


async def test_long_text_is_split_into_ordered_messages(sender: TelegramSender, fake: FakeTelegramServer) -> None:
    text = paragraphs(9000)
    external_id = await send(sender, OutboundMessage(text=text))

    shown = fake.sent_messages(CHAT)
    assert len(shown) == 3
    assert all(len(m["text"]) <= 4096 for m in shown)
    assert [m["message_id"] for m in shown] == sorted(m["message_id"] for m in shown)
    assert "\n\n".join(m["text"] for m in shown) == text  # cut on paragraph boundaries, nothing lost
    assert all(m["text"].startswith("Абзац") for m in shown)
    assert external_id == str(shown[-1]["message_id"])


async def test_split_counts_visible_characters_not_escaped_ones(
    sender: TelegramSender, fake: FakeTelegramServer
) -> None:
    text = "&" * 4000  # 20 000 characters once escaped, 4000 on screen
    await send(sender, OutboundMessage(text=text))
    (shown,) = fake.sent_messages(CHAT)
    assert shown["text"] == text


async def test_inline_keyboard_keeps_short_payloads_and_stores_long_ones(bot: Bot, fake: FakeTelegramServer) -> None:
    store = InMemoryCallbackStore()
    sender = TelegramSender(bot, callbacks=store, close_bot=False)
    long_payload = "claim:" + "x" * 94  # 100 bytes
    cyrillic = "ответ:" + "д" * 30  # 36 characters, 66 bytes
    message = OutboundMessage(
        text="Что случилось?",
        buttons=(Button("Не тот товар", "care:wrong"), Button("Брак", long_payload), Button("Другое", cyrillic)),
    )
    await send(sender, message)

    (shown,) = fake.sent_messages(CHAT)
    rows = shown["reply_markup"]["inline_keyboard"]
    assert [row[0]["text"] for row in rows] == ["Не тот товар", "Брак", "Другое"]
    data = [row[0]["callback_data"] for row in rows]
    assert data[0] == "care:wrong"
    assert all(len(d.encode()) <= 64 for d in data)
    assert await store.get(data[1].removeprefix("~")) == long_payload
    assert await store.get(data[2].removeprefix("~")) == cyrillic


async def test_request_contact_shows_a_reply_keyboard(sender: TelegramSender, fake: FakeTelegramServer) -> None:
    message = OutboundMessage(
        text="Поделитесь номером, чтобы мы нашли заказ",
        buttons=(Button("Не хочу", "no_phone"),),
        request_contact=True,
    )
    await send(sender, message)

    (call,) = fake.calls_of("sendMessage")
    keyboard = call.params["reply_markup"]["keyboard"]
    assert keyboard[0][0]["request_contact"] is True
    assert keyboard[1][0]["text"] == "Не хочу"
    assert call.params["reply_markup"]["one_time_keyboard"] is True
    assert "reply_markup" not in fake.sent_messages(CHAT)[0]  # Telegram echoes inline keyboards only


async def test_photo_from_media_store_is_uploaded_with_caption(
    sender: TelegramSender, fake: FakeTelegramServer, media: MediaStore
) -> None:
    data = png_bytes()
    stored = await media.save(data, "image/png", "label.png")
    message = OutboundMessage(
        text="Сверьте <штрихкод>",
        attachments=(Attachment(kind="photo", media_id=stored.media_id, filename="label.png"),),
        buttons=(Button("Совпадает", "match"),),
    )
    await send(sender, message)

    (call,) = fake.calls_of("sendPhoto")
    (upload,) = call.files.values()
    assert upload.data == data
    assert upload.filename == "label.png"
    (shown,) = fake.sent_messages(CHAT)
    assert shown["caption"] == "Сверьте <штрихкод>"
    assert shown["photo"][-1]["width"] == 640
    assert shown["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "match"
    assert not fake.calls_of("sendMessage")


async def test_document_then_text_when_the_text_is_too_long_for_a_caption(
    sender: TelegramSender, fake: FakeTelegramServer, media: MediaStore
) -> None:
    data = b"%PDF-1.4 instruction"
    stored = await media.save(data, "application/pdf", "instruction.pdf")
    text = "Инструкция по возврату. " * 60  # ~1440 characters: over the 1024 caption limit
    message = OutboundMessage(
        text=text,
        attachments=(Attachment(kind="file", media_id=stored.media_id, filename="instruction.pdf"),),
    )
    await send(sender, message)

    shown = fake.sent_messages(CHAT)
    assert [("text" in m, "document" in m) for m in shown] == [(True, False), (False, True)]
    assert shown[1]["document"]["file_name"] == "instruction.pdf"
    (call,) = fake.calls_of("sendDocument")
    assert next(iter(call.files.values())).data == data


async def test_photo_by_url_and_by_telegram_file_id(sender: TelegramSender, fake: FakeTelegramServer) -> None:
    url = "https://cdn.example.com/size-chart.png"
    fake.url_files[url] = (png_bytes((200, 100)), "image/png")
    known = fake.store_file(png_bytes((50, 50)), folder="photos", extension="jpg")
    message = OutboundMessage(
        attachments=(Attachment(kind="photo", url=url), Attachment(kind="photo", url=f"tg-file:{known.file_id}"))
    )
    await send(sender, message)

    first, second = fake.calls_of("sendPhoto")
    assert first.params["photo"] == url and not first.files
    assert second.params["photo"] == known.file_id and not second.files
    assert [m["photo"][-1]["width"] for m in fake.sent_messages(CHAT)] == [200, 50]


async def test_empty_message_is_a_permanent_error(sender: TelegramSender) -> None:
    with pytest.raises(SendError) as error:
        await send(sender, OutboundMessage(text="   "))
    assert error.value.permanent


async def test_missing_media_is_a_permanent_error(sender: TelegramSender) -> None:
    with pytest.raises(SendError) as error:
        await send(sender, OutboundMessage(attachments=(Attachment(kind="photo", media_id="0" * 64),)))
    assert error.value.permanent and not error.value.unreachable


# --- errors --------------------------------------------------------------------------------------


async def test_429_carries_retry_after(sender: TelegramSender, fake: FakeTelegramServer) -> None:
    fake.rate_limit("sendMessage", retry_after=7)
    with pytest.raises(SendError) as error:
        await send(sender, OutboundMessage(text="привет"))
    assert error.value.retry_after == 7
    assert not error.value.permanent
    assert fake.sent_messages(CHAT) == []


async def test_blocked_buyer_is_unreachable(sender: TelegramSender, fake: FakeTelegramServer) -> None:
    fake.block_chat(CHAT)
    with pytest.raises(SendError) as error:
        await send(sender, OutboundMessage(text="привет"))
    assert error.value.unreachable and error.value.permanent
    assert "blocked by the user" in str(error.value)
    await send(sender, OutboundMessage(text="другому"), chat=CHAT + 1)  # only that chat is affected


@pytest.mark.parametrize("html", [False, True])
async def test_server_errors_are_transient(sender: TelegramSender, fake: FakeTelegramServer, html: bool) -> None:
    fake.server_error("sendMessage", status=502, html=html)
    with pytest.raises(SendError) as error:
        await send(sender, OutboundMessage(text="привет"))
    assert not error.value.permanent and error.value.retry_after is None
    await send(sender, OutboundMessage(text="привет"))  # the next attempt goes through
    assert len(fake.sent_messages(CHAT)) == 1


async def test_bad_request_is_permanent(sender: TelegramSender, fake: FakeTelegramServer) -> None:
    fake.chat_not_found(CHAT)
    with pytest.raises(SendError) as error:
        await send(sender, OutboundMessage(text="привет"))
    assert error.value.permanent and not error.value.unreachable
    assert "chat not found" in str(error.value)


async def test_timeout_is_transient(fake: FakeTelegramServer) -> None:
    bot = make_bot(fake.default_token, fake.base_url, timeout=0.3)
    sender = TelegramSender(bot)
    fake.slow("sendMessage", 1.0)
    try:
        with pytest.raises(SendError) as error:
            await send(sender, OutboundMessage(text="привет"))
        assert not error.value.permanent and error.value.retry_after is None
    finally:
        await sender.aclose()


async def test_revoked_token(fake: FakeTelegramServer) -> None:
    sender = TelegramSender(make_bot("999:revoked-token", fake.base_url))
    try:
        with pytest.raises(TelegramTokenRevoked) as error:
            await send(sender, OutboundMessage(text="привет"))
        assert error.value.permanent
    finally:
        await sender.aclose()


async def test_later_part_of_a_long_message_is_retried_in_place(
    sender: TelegramSender, fake: FakeTelegramServer
) -> None:
    fake.server_error("sendMessage", after=1)  # part 2 fails once
    await send(sender, OutboundMessage(text=paragraphs(9000)))
    assert len(fake.sent_messages(CHAT)) == 3  # no part sent twice, none lost
    assert [c.status for c in fake.calls_of("sendMessage")] == [200, 500, 200, 200]


async def test_permanent_failure_of_a_later_part_says_what_was_sent(
    sender: TelegramSender, fake: FakeTelegramServer
) -> None:
    fake.fail("sendMessage", 400, description="Bad Request: something odd", after=1)
    with pytest.raises(SendError) as error:
        await send(sender, OutboundMessage(text=paragraphs(9000)))
    assert error.value.permanent
    assert "after 1 of 3 parts" in str(error.value)
