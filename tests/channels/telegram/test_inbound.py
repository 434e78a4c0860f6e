"""TelegramInbound: button answers, CallbackStore round trip, downloads into the MediaStore."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Bot

from otklik.adapters.media import MediaStore
from otklik.channels.telegram.adapter import InMemoryCallbackStore, TelegramInbound, TelegramSender
from otklik.core.messages import Button, EventKind, InboundEvent, OutboundMessage
from otklik.testing.fake_telegram import FakeTelegramServer

from .conftest import png_bytes

CHAT = 385102944
MB = 1024 * 1024


class Recorder:
    def __init__(self) -> None:
        self.events: list[InboundEvent] = []

    async def __call__(self, event: InboundEvent) -> object:
        self.events.append(event)
        return None


def inbound(bot: Bot, media: MediaStore, recorder: Recorder, **kwargs: Any) -> TelegramInbound:
    return TelegramInbound(channel_account_id=3, bot=bot, on_event=recorder, media=media, **kwargs)


async def test_long_button_payload_round_trips_through_the_callback_store(
    bot: Bot, fake: FakeTelegramServer, media: MediaStore
) -> None:
    store = InMemoryCallbackStore()
    payload = "cashback:claim=8812;sku=ABC-123;step=confirm_payout_details;" + "z" * 40  # 100 bytes
    sender = TelegramSender(bot, callbacks=store, close_bot=False)
    await sender.send(
        str(CHAT), OutboundMessage(text="Подтвердите", buttons=(Button("Да", payload),)), idempotency_key="k"
    )
    data = fake.sent_messages(CHAT)[0]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    update = fake.callback_update(CHAT, data)

    recorder = Recorder()
    await inbound(bot, media, recorder, callbacks=store).handle_update(update)

    (event,) = recorder.events
    assert event.kind is EventKind.BUTTON
    assert event.payload == payload
    query_id = update["callback_query"]["id"]
    assert event.data["callback_query_id"] == query_id
    assert fake.bot().callback_queries[query_id] is True  # answered: the spinner stops
    assert [c.params["callback_query_id"] for c in fake.calls_of("answerCallbackQuery")] == [query_id]


async def test_unknown_callback_key_is_flagged_not_dropped(
    bot: Bot, fake: FakeTelegramServer, media: MediaStore
) -> None:
    recorder = Recorder()
    await inbound(bot, media, recorder).handle_update(fake.callback_update(CHAT, "~forgottenKey123"))
    (event,) = recorder.events
    assert event.payload is None
    assert event.data["callback_unresolved"] is True
    assert len(fake.calls_of("answerCallbackQuery")) == 1


async def test_stale_callback_answer_does_not_lose_the_press(
    bot: Bot, fake: FakeTelegramServer, media: MediaStore
) -> None:
    update = fake.callback_update(CHAT, "care:defect")
    fake.bot().callback_queries[update["callback_query"]["id"]] = True  # answered long ago
    recorder = Recorder()
    await inbound(bot, media, recorder).handle_update(update)
    assert [e.payload for e in recorder.events] == ["care:defect"]
    assert fake.calls_of("answerCallbackQuery")[0].status == 400


async def test_keyboard_can_be_cleared_after_a_press(bot: Bot, fake: FakeTelegramServer, media: MediaStore) -> None:
    sender = TelegramSender(bot, close_bot=False)
    await sender.send(str(CHAT), OutboundMessage(text="?", buttons=(Button("A", "a"),)), idempotency_key="k")
    recorder = Recorder()
    await inbound(bot, media, recorder, clear_keyboard_on_press=True).handle_update(fake.callback_update(CHAT, "a"))
    assert "reply_markup" not in fake.sent_messages(CHAT)[0]
    assert recorder.events[0].payload == "a"


async def test_photo_is_downloaded_into_the_media_store(bot: Bot, fake: FakeTelegramServer, media: MediaStore) -> None:
    data = png_bytes((800, 600), "blue")
    update = fake.photo_update(CHAT, data, caption="Скрин отзыва")
    recorder = Recorder()
    await inbound(bot, media, recorder).handle_update(update)

    (event,) = recorder.events
    assert event.kind is EventKind.PHOTO
    assert event.text == "Скрин отзыва"
    (attachment,) = event.attachments
    assert attachment.url is None
    assert attachment.media_id is not None
    assert await media.read(attachment.media_id) == data  # the largest size, not the thumbnail
    assert attachment.size == len(data)
    largest = update["message"]["photo"][-1]["file_id"]
    assert [c.params["file_id"] for c in fake.calls_of("getFile")] == [largest]
    assert len(fake.calls_of("file")) == 1
    assert "upload_error" not in event.data


async def test_document_keeps_name_and_type(bot: Bot, fake: FakeTelegramServer, media: MediaStore) -> None:
    update = fake.document_update(CHAT, b"%PDF-1.7 receipt", file_name="чек.pdf", mime_type="application/pdf")
    recorder = Recorder()
    await inbound(bot, media, recorder).handle_update(update)
    (attachment,) = recorder.events[0].attachments
    assert (attachment.filename, attachment.content_type) == ("чек.pdf", "application/pdf")
    assert await media.read(attachment.media_id or "") == b"%PDF-1.7 receipt"


async def test_oversized_file_is_refused_before_downloading(
    bot: Bot, fake: FakeTelegramServer, media: MediaStore
) -> None:
    update = fake.photo_update(CHAT, png_bytes(), declared_size=15 * MB)
    recorder = Recorder()
    await inbound(bot, media, recorder, max_file_bytes=1 * MB).handle_update(update)

    (event,) = recorder.events
    assert event.kind is EventKind.PHOTO
    assert event.attachments == ()
    assert event.data["upload_error"] == "too_large"
    assert event.data["max_file_bytes"] == 1 * MB
    assert fake.calls_of("getFile") == [] and fake.calls_of("file") == []


async def test_size_from_getfile_is_checked_when_the_message_has_none(
    bot: Bot, fake: FakeTelegramServer, media: MediaStore
) -> None:
    update = fake.document_update(CHAT, b"x" * 2048, file_name="big.zip", mime_type="application/zip")
    del update["message"]["document"]["file_size"]
    recorder = Recorder()
    await inbound(bot, media, recorder, max_file_bytes=1024).handle_update(update)
    assert recorder.events[0].data["upload_error"] == "too_large"
    assert len(fake.calls_of("getFile")) == 1 and fake.calls_of("file") == []


async def test_download_is_capped_even_when_the_size_was_understated(
    bot: Bot, fake: FakeTelegramServer, media: MediaStore
) -> None:
    update = fake.document_update(
        CHAT, b"y" * (300 * 1024), file_name="a.bin", mime_type="application/octet-stream", declared_size=10
    )
    recorder = Recorder()
    await inbound(bot, media, recorder, max_file_bytes=100 * 1024).handle_update(update)
    assert recorder.events[0].data["upload_error"] == "too_large"
    assert len(fake.calls_of("file")) == 1


async def test_failed_download_passes_the_event_on(bot: Bot, fake: FakeTelegramServer, media: MediaStore) -> None:
    fake.server_error("getFile")
    recorder = Recorder()
    await inbound(bot, media, recorder).handle_update(fake.photo_update(CHAT, png_bytes()))
    (event,) = recorder.events
    assert event.data["upload_error"] == "download_failed"
    assert event.attachments == ()


async def test_text_passes_through_and_handler_errors_propagate(
    bot: Bot, fake: FakeTelegramServer, media: MediaStore
) -> None:
    recorder = Recorder()
    handler = inbound(bot, media, recorder)
    update = fake.text_update(CHAT, "/start card_42")
    await handler.handle_update(update)
    assert (recorder.events[0].text, recorder.events[0].payload) == ("/start card_42", "card_42")
    assert fake.calls == []  # nothing to answer or download

    async def broken(event: InboundEvent) -> object:
        raise RuntimeError("database is down")

    with pytest.raises(RuntimeError, match="database is down"):
        await TelegramInbound(channel_account_id=3, bot=bot, on_event=broken, media=media).handle_update(update)
