"""The Wildberries buyer chat through the whole runtime: the real WB client polling the fake WB API on
loopback, the kernel, the care-ru pack, the dispatcher sending back through `POST /api/v1/seller/message`
— on SQLite and PostgreSQL. Care flows end to end with the order card, marketplace notices, stale
signatures, files in moderation, 429 and outages, malformed and oversized events, a restart mid-poll."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from otklik.adapters.db.models import Conversation, InboundEventRow, Message, OutboxRow
from otklik.adapters.wildberries.accounts import CHAT_OFF, WBAccount, check_token
from otklik.bootstrap import Otklik
from otklik.channels.wildberries import store
from otklik.channels.wildberries.accounts import add_wb_account
from otklik.channels.wildberries.chat import ChatPoller, WBChatSender, split_message
from otklik.core.messages import Button, OutboundMessage
from otklik.testing.fake_wb import FakeChat, FakeWB, ean13, good_card, make_token, sample_cards
from tests.conftest import make_settings

CARDS = sample_cards(3)  # nm 101000001..3, sizes S/M/L = wbSize 42/44/46, one EAN-13 per size
NM1, NM2 = CARDS[0].nm_id, CARDS[1].nm_id
REWARD_WORDS = ("бонус", "кэшб", "кешб")


def barcode(nm_id: int, size_index: int = 0) -> str:
    return ean13(f"20{nm_id:09d}{size_index}")


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
async def fake() -> AsyncIterator[FakeWB]:
    async with FakeWB() as server:
        server.add_cards(CARDS)
        yield server


async def build(tmp_path: Path, db_url: str, fake: FakeWB, *, worker: bool = True) -> Otklik:
    app = Otklik.build(make_settings(tmp_path, db_url, wb_api_url=fake.url, wb_chat_poll_seconds=0.05))
    await app.start()
    if worker:
        app.start_worker()
    return app


@pytest.fixture
async def wb(tmp_path: Path, db_url: str, fake: FakeWB) -> AsyncIterator[tuple[Otklik, int]]:
    app = await build(tmp_path, db_url, fake, worker=False)
    account_id, _ = await add_wb_account(app.db, app.vault, fake.token, name="shop", pack="care-ru")
    await app.reload()
    app.start_worker()
    try:
        yield app, account_id
    finally:
        await app.close()


async def wait_for(check: Callable[[], Any], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def replied(fake: FakeWB, chat: FakeChat, part: str) -> Callable[[], bool]:
    return lambda: any(part in t for t in fake.sent_to(chat.chat_id))


async def conversation_vars(app: Otklik) -> dict[str, Any]:
    async with app.db.read() as session:
        conv = (await session.execute(select(Conversation))).scalars().one()
        return dict(conv.state.get("vars", {}))


async def count(app: Otklik, model: Any, *where: Any) -> int:
    async with app.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


def no_rewards(fake: FakeWB) -> None:
    for chat in fake.chats.values():
        for text in fake.sent_to(chat.chat_id):
            assert not any(w in text.lower() for w in REWARD_WORDS), text


# --- care flows end to end --------------------------------------------------------------------------


async def test_wrong_item_the_card_tells_the_order_and_the_label_another_product(
    wb: tuple[Otklik, int], fake: FakeWB
) -> None:
    app, _ = wb
    chat = fake.open_chat(client_name="Ира", card=good_card(NM1, rid="srid-777", size="42"))
    fake.buyer_writes(chat, "Пришёл не тот товар, это не мой заказ")
    await wait_for(replied(fake, chat, "штрихкод"))
    assert (await conversation_vars(app))["wb_card"] == {
        "nm_id": NM1,
        "price": 1490,
        "currency": "RUB",
        "order_id": "srid-777",
        "size": "42",
    }
    fake.buyer_writes(chat, barcode(NM2))  # a label of another of our products
    await wait_for(replied(fake, chat, "перепутали товар"))
    assert not any("Вы заказывали именно его" in t for t in fake.sent_to(chat.chat_id))  # the card told
    assert all(len(t) <= 1000 for t in fake.sent_to(chat.chat_id))
    no_rewards(fake)


async def test_wrong_item_the_label_is_the_ordered_product(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    chat = fake.open_chat(card=good_card(NM1, size="42"))
    fake.buyer_writes(chat, "Пришёл не тот товар")
    await wait_for(replied(fake, chat, "штрихкод"))
    fake.buyer_writes(chat, barcode(NM1, 0))
    await wait_for(replied(fake, chat, "что именно отличается"))


async def test_defect_photo_then_the_wb_return_procedure_and_who_decides(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    app, _ = wb
    chat = fake.open_chat(card=good_card(NM1))
    fake.buyer_writes(chat, "Товар с браком, не работает")
    await wait_for(replied(fake, chat, "фото повреждения"))
    photo = fake.add_chat_file(jpeg(), pending=1, retry_seconds=1)  # first in moderation (202), then served
    fake.buyer_writes(chat, "", files=[photo])
    await wait_for(replied(fake, chat, "Заявку рассматривает продавец"), timeout=20)
    text = next(t for t in fake.sent_to(chat.chat_id) if "Заявку" in t)
    assert "«Вернуть товар»" in text and "Wildberries" in text
    async with app.db.read() as session:
        photos = (await session.execute(select(Message).where(Message.kind == "photo"))).scalars().all()
    assert len(photos) == 1 and photos[0].payload["attachments"][0]["media_id"]


async def test_side_effect_knows_the_product_from_the_card(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    app, _ = wb
    chat = fake.open_chat(card=good_card(NM2))
    fake.buyer_writes(chat, "После геля жжёт кожу и покраснение")
    await wait_for(lambda: len(fake.sent_to(chat.chat_id)) >= 1)
    await wait_for(lambda: conversation_vars(app))
    variables = await conversation_vars(app)
    assert variables.get("product") == str(NM2) or variables.get("category") == "side_effect"
    await wait_for(lambda: _product_known(app, NM2))


async def _product_known(app: Otklik, nm_id: int) -> bool:
    return (await conversation_vars(app)).get("product") == str(nm_id)


async def test_delivery(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    chat = fake.open_chat(card=good_card(NM1))
    fake.buyer_writes(chat, "Где мой заказ? Не пришёл до пвз")
    await wait_for(replied(fake, chat, "Доставкой заказов занимается Wildberries"))
    no_rewards(fake)


async def test_a_reward_is_never_offered_in_wb_chat(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    chat = fake.open_chat()
    fake.buyer_writes(chat, "")  # the chat opened from the order card, no text yet: the menu
    await wait_for(lambda: len(fake.sent_to(chat.chat_id)) >= 2)
    fake.buyer_writes(chat, "Хочу бонус за отзыв")
    await wait_for(replied(fake, chat, "В этом чате маркетплейса"))
    menu = "\n".join(fake.sent_to(chat.chat_id))
    assert "1. 📦 Пришёл не тот товар" in menu  # buttons degrade to numbered text
    no_rewards(fake)


# --- what is not the buyer's -----------------------------------------------------------------------


async def test_wb_notices_and_portal_replies_are_shown_not_answered(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    app, _ = wb
    chat = fake.open_chat()
    fake.buyer_writes(chat, "Где мой заказ? Не пришёл")
    await wait_for(replied(fake, chat, "Доставкой"))
    answered = len(fake.sent_to(chat.chat_id))
    fake.buyer_writes(chat, "Wildberries: заказ передан в доставку", sender="wb", source="seller-portal")
    fake.buyer_writes(chat, "Это менеджер, посмотрю заказ", sender="seller", source="seller-portal")
    await wait_for(lambda: count(app, Message, Message.author == "marketplace"))
    await wait_for(lambda: count(app, Message, Message.author == "operator"))
    await asyncio.sleep(0.3)  # a few more polls: nothing is answered
    assert len(fake.sent_to(chat.chat_id)) == answered
    async with app.db.read() as session:
        notice = (await session.execute(select(Message).where(Message.author == "marketplace"))).scalar_one()
        mine = (await session.execute(select(Message).where(Message.author == "bot"))).scalars().all()
    assert notice.direction == "in" and notice.payload["notice"] == "marketplace"
    # our own messages come back as `seller-public-api` events: never stored a second time
    assert await count(app, Message) == 1 + len(mine) + 2


# --- sending ---------------------------------------------------------------------------------------


async def test_a_stale_signature_is_refreshed_once_and_the_reply_goes(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    app, account_id = wb
    chat = fake.open_chat()
    fake.buyer_writes(chat, "Где мой заказ? Не пришёл")
    await wait_for(replied(fake, chat, "Доставкой"))
    fake.rotate_sign(chat.chat_id)  # WB changed the signature: ours is stale
    chats_calls = len(fake.calls_to("/api/v1/seller/chats"))
    fake.buyer_writes(chat, "Позовите менеджера")
    await wait_for(lambda: len([c for c in fake.calls_to("/api/v1/seller/message") if c.status == 200]) >= 3)
    assert len(fake.calls_to("/api/v1/seller/chats")) > chats_calls
    assert [c.status for c in fake.calls_to("/api/v1/seller/message")].count(400) == 1
    row = await store.chat_row(app.db, account_id, chat.chat_id)
    assert row is not None and row.reply_sign == chat.reply_sign  # the fresh sign is kept
    assert await count(app, OutboxRow, OutboxRow.status == "failed") == 0


async def test_long_texts_split_at_sentences_buttons_numbered_files_checked(
    wb: tuple[Otklik, int], fake: FakeWB
) -> None:
    app, account_id = wb
    chat = fake.open_chat()
    await store.save_chats(app.db, account_id, [(chat.chat_id, chat.reply_sign, None)])
    sentence = "Это одно предложение о возврате через приложение Wildberries. "
    text = sentence * 40  # ~2 500 characters
    sender = WBChatSender(WBAccount(account_id, "shop", fake.token), app.ctx, enabled=True)
    try:
        stored = await app.ctx.media.save(jpeg(), "image/jpeg", "label.jpg")
        from otklik.core.messages import Attachment

        msg = OutboundMessage(
            text=text,
            buttons=(Button("Да", "yes"), Button("Нет", "no")),
            attachments=(Attachment(kind="photo", media_id=stored.media_id, content_type="image/jpeg"),),
        )
        await sender.send(chat.chat_id, msg, idempotency_key="k1")
        parts = fake.sent_to(chat.chat_id)
        assert len(parts) == 3 and all(len(p) <= 1000 for p in parts)
        assert all(p.endswith(".") for p in parts[:-1])  # cut at sentence ends
        assert parts[-1].endswith("1. Да\n2. Нет")
        assert [bool(m["files"]) for m in chat.sent] == [False, False, True]
        gif = await app.ctx.media.save(b"GIF89a", "image/gif", "a.gif")
        from otklik.core.channel import SendError

        with pytest.raises(SendError, match="JPEG, PNG and PDF") as info:
            await sender.send(
                chat.chat_id, OutboundMessage(attachments=(Attachment("photo", gif.media_id),)), idempotency_key="k2"
            )
        assert info.value.permanent
    finally:
        await sender.aclose()


def test_split_message_prefers_paragraphs_then_sentences_then_words() -> None:
    assert split_message("короткий") == ["короткий"]
    para = "а" * 600 + "\n\n" + "б" * 600
    assert split_message(para) == ["а" * 600, "б" * 600]
    words = " ".join(["слово"] * 400)
    assert all(len(c) <= 1000 for c in split_message(words)) and " ".join(split_message(words)) == words
    assert split_message("я" * 2500) == ["я" * 1000, "я" * 1000, "я" * 500]


# --- resilience --------------------------------------------------------------------------------------


async def test_429_and_outages_are_waited_out(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    chat = fake.open_chat()
    fake.rate_limit_next(2, retry=0.2, path="/api/v1/seller/events")
    fake.fail_next(3, status=503, path="/api/v1/seller/events")
    fake.buyer_writes(chat, "Где мой заказ? Не пришёл")
    await wait_for(replied(fake, chat, "Доставкой"), timeout=30)
    statuses = [c.status for c in fake.calls_to("/api/v1/seller/events")]
    assert 429 in statuses and 503 in statuses and statuses[-1] == 200


async def test_malformed_unknown_and_oversized_events(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    app, _ = wb
    chat = fake.open_chat()
    base = fake.buyer_writes(chat, "Где мой заказ? Не пришёл")
    stamp = base["addTimestamp"]
    fake.chat_events[-1:] = [
        {"_raw": "not an object", "addTimestamp": stamp},
        {"eventID": "no-chat", "addTimestamp": stamp},
        {**base, "eventID": "x" * 500},
        {**base, "eventType": "refund", "eventID": "refund-1"},
        {**base, "sender": "robot", "eventID": "robot-1"},
        {**base, "message": {"text": ["not", "text"]}, "eventID": "bad-text"},
        {**base, "eventID": "huge", "message": {"text": "длинно " * 5000}, "newField": {"x": 1}},  # unknown: kept
        base,
    ]
    for n, event in enumerate(fake.chat_events):
        event["addTimestamp"] = stamp + n
    await wait_for(replied(fake, chat, "Доставкой"))
    await wait_for(lambda: count(app, InboundEventRow))
    await asyncio.sleep(0.3)
    async with app.db.read() as session:
        ids = set((await session.execute(select(InboundEventRow.external_id))).scalars())
        huge = (await session.execute(select(Message).where(Message.external_id == "huge"))).scalar_one()
    assert ids == {"huge", base["eventID"]}
    assert len(huge.text) <= 8192
    state = await store.load_state(app.db, wb[1])
    assert state["next"] >= stamp + 7  # the cursor moved past the bad ones


async def test_a_file_refused_by_moderation_reaches_the_flow_as_an_upload_error(
    wb: tuple[Otklik, int], fake: FakeWB
) -> None:
    app, _ = wb
    chat = fake.open_chat()
    fake.buyer_writes(chat, "Товар с браком, не работает")
    await wait_for(replied(fake, chat, "фото повреждения"))
    refused = fake.add_chat_file(jpeg(), rejected=True)
    fake.buyer_writes(chat, "", files=[refused])
    await wait_for(replied(fake, chat, "Нужна именно фотография"))
    async with app.db.read() as session:
        [msg] = (await session.execute(select(Message).where(Message.kind == "photo"))).scalars().all()
    assert msg.payload["upload_error"] == "rejected_by_moderation" and "attachments" not in msg.payload


# --- restart ------------------------------------------------------------------------------------------


async def test_restart_mid_poll_loses_nothing_and_answers_nothing_twice(
    tmp_path: Path, db_url: str, fake: FakeWB, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await build(tmp_path, db_url, fake, worker=False)
    account_id, _ = await add_wb_account(app.db, app.vault, fake.token, name="shop", pack="care-ru")
    await app.reload()
    chats = [fake.open_chat(client_name=f"B{n}") for n in range(3)]
    for chat in chats:
        fake.buyer_writes(chat, "Где мой заказ? Не пришёл")
    # the process dies after the page's events were ingested, before the cursor was stored
    poller = ChatPoller(app.ctx, app.ingest, WBAccount(account_id, "shop", fake.token))
    real_save = store.save_state

    async def crash(*_: object) -> None:
        raise OSError("killed")

    monkeypatch.setattr(store, "save_state", crash)
    with pytest.raises(OSError):
        await poller.poll_once()
    await poller.client.aclose()
    assert await count(app, InboundEventRow) == 3
    await app.close()

    monkeypatch.setattr(store, "save_state", real_save)
    fake.buyer_writes(chats[0], "Позовите менеджера")  # written while we were down
    written = fake.chat_events[-1]["addTimestamp"]
    app = await _restart(tmp_path, db_url, fake)
    try:
        await wait_for(lambda: all(replied(fake, c, "Доставкой")() for c in chats))
        await wait_for(lambda: count(app, InboundEventRow))
        await wait_for(lambda: _cursor_at(app, account_id, written), timeout=20)
        assert await count(app, InboundEventRow) == 4  # every buyer event once
        for chat in chats:  # each question answered once
            assert sum("Доставкой" in t for t in fake.sent_to(chat.chat_id)) == 1
        assert await count(app, OutboxRow, OutboxRow.status == "failed") == 0
        # later polls resume from the stored cursor, not from the start
        await asyncio.sleep(0.2)
        last = fake.calls_to("/api/v1/seller/events")[-1]
        assert int(last.query["next"]) >= written
    finally:
        await app.close()


async def _restart(tmp_path: Path, db_url: str, fake: FakeWB) -> Otklik:
    app = Otklik.build(make_settings(tmp_path, db_url, wb_api_url=fake.url, wb_chat_poll_seconds=0.05))
    await app.start()
    app.start_worker()
    return app


async def _cursor_at(app: Otklik, account_id: int, stamp: int) -> bool:
    return int((await store.load_state(app.db, account_id)).get("next") or 0) >= stamp


async def test_a_redelivered_event_is_not_answered_twice(wb: tuple[Otklik, int], fake: FakeWB) -> None:
    app, _ = wb
    chat = fake.open_chat()
    fake.buyer_writes(chat, "Где мой заказ? Не пришёл")
    await wait_for(replied(fake, chat, "Доставкой"))
    fake.replay_last_event = 3  # WB hands the event at the cursor out again
    await asyncio.sleep(0.5)
    assert sum("Доставкой" in t for t in fake.sent_to(chat.chat_id)) == 1
    assert await count(app, InboundEventRow) == 1


# --- connecting ---------------------------------------------------------------------------------------


async def test_without_the_buyers_chat_category_the_chat_stays_off_and_says_why(
    tmp_path: Path, db_url: str, fake: FakeWB
) -> None:
    token = fake.allow(make_token(categories=["feedbacks", "content"]))
    problems = check_token(token)
    assert CHAT_OFF in problems and not CHAT_OFF.blocking
    assert "Чат с покупателями" in CHAT_OFF.ru and "Buyers chat" in CHAT_OFF.en
    app = await build(tmp_path, db_url, fake, worker=False)
    try:
        await add_wb_account(app.db, app.vault, token, name="reviews-only", pack="care-ru")
        await app.reload()
        app.start_worker()
        assert app.runtime_of("wildberries").accounts == {}
        await asyncio.sleep(0.3)
        assert not fake.calls_to("/api/v1/seller/events")
    finally:
        await app.close()
