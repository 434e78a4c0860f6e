"""parse_update: every update kind from realistic Telegram JSON, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram.types import Update

from otklik.channels.telegram.adapter import parse_update
from otklik.core.messages import EventKind

ACCOUNT = 7
BUYER = "385102944"


def one(update: dict[str, Any]) -> Any:
    events = parse_update(update, ACCOUNT)
    assert len(events) == 1
    return events[0]


def test_text_message(updates: dict[str, Any]) -> None:
    event = one(updates["text"])
    assert event.kind is EventKind.TEXT
    assert event.text == "Здравствуйте, пришёл не тот цвет"
    assert event.external_id == "u894117301"
    assert event.channel_account_id == ACCOUNT
    assert event.sender_id == BUYER
    assert event.sender_name == "Анна Петрова"
    assert event.language == "ru"
    assert event.payload is None
    assert event.data["message_id"] == 17


def test_start_with_payload(updates: dict[str, Any]) -> None:
    event = one(updates["start_with_payload"])
    assert event.kind is EventKind.TEXT
    assert event.text == "/start card_SKU-123"
    assert event.payload == "card_SKU-123"
    assert event.data["command"] == "start"


def test_start_with_invalid_payload_keeps_text_and_drops_payload(updates: dict[str, Any]) -> None:
    event = one(updates["start_with_bad_payload"])
    assert event.text == "/start card 123!"
    assert event.payload is None
    assert event.data["command"] == "start"


@pytest.mark.parametrize(
    ("text", "payload"),
    [
        ("/start", None),
        ("/start@otklik_shop_bot abc", "abc"),
        ("/start " + "a" * 64, "a" * 64),
        ("/start " + "a" * 65, None),
        ("/start кириллица", None),
        ("/starter abc", None),
    ],
)
def test_start_payload_rules(updates: dict[str, Any], text: str, payload: str | None) -> None:
    update = {**updates["start_with_payload"], "message": {**updates["start_with_payload"]["message"], "text": text}}
    assert one(update).payload == payload


def test_callback_query_with_plain_data(updates: dict[str, Any]) -> None:
    event = one(updates["callback_query"])
    assert event.kind is EventKind.BUTTON
    assert event.payload == "care:wrong_item"
    assert event.sender_id == BUYER
    assert event.data["callback_query_id"] == "1654002873916250231"
    assert event.data["message_id"] == 18
    assert "callback_key" not in event.data


def test_callback_query_with_store_key_is_left_for_resolution(updates: dict[str, Any]) -> None:
    raw = {**updates["callback_query"]}
    raw["callback_query"] = {**raw["callback_query"], "data": "~AbCdEfGhIjKlMnOpQrStUv"}
    event = one(raw)
    assert event.payload is None
    assert event.data["callback_key"] == "AbCdEfGhIjKlMnOpQrStUv"


def test_photo_takes_the_largest_size_and_keeps_caption(updates: dict[str, Any]) -> None:
    event = one(updates["photo"])
    assert event.kind is EventKind.PHOTO
    assert event.text == "Вот отзыв"
    (attachment,) = event.attachments
    assert attachment.kind == "photo"
    assert attachment.url == "tg-file:AgACAgIAAxkBAAMTZmBlargeAAA"
    assert attachment.size == 101234
    assert attachment.media_id is None
    assert event.data["media_group_id"] == "13712345678901234"


def test_document(updates: dict[str, Any]) -> None:
    event = one(updates["document"])
    assert event.kind is EventKind.FILE
    (attachment,) = event.attachments
    assert attachment.kind == "file"
    assert attachment.url == "tg-file:BQACAgIAAxkBAAMUZmBdocAAA"
    assert attachment.filename == "чек.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.size == 48213


def test_image_sent_as_file_counts_as_photo(updates: dict[str, Any]) -> None:
    event = one(updates["document_image"])
    assert event.kind is EventKind.PHOTO
    assert event.attachments[0].url == "tg-file:BQACAgIAAxkBAAMVZmBscreenA"  # the file, not its thumbnail
    assert event.attachments[0].content_type == "image/png"


def test_voice_note_is_a_file(updates: dict[str, Any]) -> None:
    event = one(updates["voice"])
    assert event.kind is EventKind.FILE
    assert event.attachments[0].content_type == "audio/ogg"


def test_own_contact(updates: dict[str, Any]) -> None:
    event = one(updates["contact"])
    assert event.kind is EventKind.CONTACT
    assert event.phone == "+79161234567"
    assert event.data["own_contact"] is True


def test_someone_elses_contact_is_flagged(updates: dict[str, Any]) -> None:
    event = one(updates["foreign_contact"])
    assert event.phone == "+79167654321"
    assert event.data["own_contact"] is False


def test_edited_message(updates: dict[str, Any]) -> None:
    event = one(updates["edited_message"])
    assert event.kind is EventKind.EDITED
    assert event.text == "Здравствуйте, пришёл не тот размер"
    assert event.external_id == "u894117310"  # not the original message's event
    assert event.data == {"message_id": 17, "edit_date": 1717581660}


@pytest.mark.parametrize(
    ("name", "payload"), [("my_chat_member_blocked", "blocked"), ("my_chat_member_unblocked", "unblocked")]
)
def test_reachability(updates: dict[str, Any], name: str, payload: str) -> None:
    event = one(updates[name])
    assert event.kind is EventKind.REACHABILITY
    assert event.payload == payload
    assert event.sender_id == BUYER


def test_unsupported_message_is_passed_with_a_marker(updates: dict[str, Any]) -> None:
    event = one(updates["sticker"])
    assert event.kind is EventKind.TEXT
    assert event.text is None
    assert event.data["unsupported"] == "sticker"


@pytest.mark.parametrize("name", ["group_message", "channel_post"])
def test_groups_and_channels_are_ignored(updates: dict[str, Any], name: str) -> None:
    assert parse_update(updates[name], ACCOUNT) == []


def test_aiogram_update_object_parses_like_the_dict(updates: dict[str, Any]) -> None:
    for name in ("text", "photo", "callback_query", "contact", "my_chat_member_blocked"):
        model = Update.model_validate(updates[name])
        assert parse_update(model, ACCOUNT) == parse_update(updates[name], ACCOUNT), name


def test_update_without_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="update_id"):
        parse_update({"message": {}}, ACCOUNT)
