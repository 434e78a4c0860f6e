"""The buyer chat methods of the WB client against the fake: chats, events with the `next` cursor, the
multipart message (limits, stale signature), file downloads in moderation (202) or refused (451), 429s;
and `filter.withPhoto` on the cards list."""

from __future__ import annotations

import pytest

from otklik.adapters.wildberries import (
    WBBadRequest,
    WBClient,
    WBFilePending,
    WBFileRejected,
    WBForbidden,
    WBInvalidSignature,
)
from otklik.adapters.wildberries.schemas import ChatEvent
from otklik.testing.fake_wb import FakeWB, good_card, make_token, sample_cards
from tests.adapters.wildberries.conftest import MakeClient


async def test_events_page_with_the_cursor_and_chats_carry_the_sign_and_card(fake: FakeWB, client: WBClient) -> None:
    fake.events_page = 2
    chat = fake.open_chat(client_name="Ира", card=good_card(101, rid="order-1", size="44"))
    for text in ("Здравствуйте", "Пришёл не тот размер", "Что делать?"):
        fake.buyer_writes(chat, text)
    first = await client.chat_events()
    assert "next" not in fake.calls[-1].query  # the first call has no cursor
    events = [ChatEvent.model_validate(e) for e in first.events]
    assert [e.message.text for e in events if e.message] == ["Здравствуйте", "Пришёл не тот размер"]
    assert events[0].is_new_chat and events[0].reply_sign == chat.reply_sign and not events[1].reply_sign
    card = events[0].message.attachments.good_card if events[0].message and events[0].message.attachments else None
    assert card is not None and card.as_context() == {
        "nm_id": 101,
        "price": 1490,
        "currency": "RUB",
        "order_id": "order-1",
        "size": "44",
    }
    second = await client.chat_events(first.next)
    assert fake.calls[-1].query["next"] == str(first.next)
    assert [e["message"]["text"] for e in second.events] == ["Что делать?"]
    empty = await client.chat_events(second.next)
    assert empty.total_events == 0 and empty.events == [] and empty.next == second.next
    with pytest.raises(ValueError, match="refuses 0"):
        await client.chat_events(0)
    [listed] = await client.list_chats()
    assert listed.reply_sign == chat.reply_sign and listed.good_card is not None and listed.good_card.rid == "order-1"


async def test_message_is_multipart_and_a_stale_sign_is_its_own_error(fake: FakeWB, client: WBClient) -> None:
    chat = fake.open_chat()
    sent = await client.send_chat_message(chat.reply_sign, "Здравствуйте!", [("label.png", b"\x89PNG", "image/png")])
    assert sent.chat_id == chat.chat_id and sent.add_time
    call = fake.calls_to("/api/v1/seller/message")[-1]
    assert call.authorization == fake.token  # the bare token
    assert fake.sent_to(chat.chat_id) == ["Здравствуйте!"] and chat.sent[0]["files"][0]["name"] == "label.png"
    old = chat.reply_sign
    fake.rotate_sign(chat.chat_id)
    with pytest.raises(WBInvalidSignature):
        await client.send_chat_message(old, "ещё раз")
    assert fake.sent_to(chat.chat_id) == ["Здравствуйте!"]


@pytest.mark.parametrize(
    ("text", "files", "match"),
    [
        ("я" * 1001, [], "1000"),
        ("", [], "nothing to send"),
        ("фото", [("a.gif", b"GIF89a", "image/gif")], "JPEG, PNG and PDF"),
        ("фото", [("big.jpg", b"\0" * (5 * 1024 * 1024 + 1), "image/jpeg")], "5 MB"),
        ("фото", [(f"{n}.pdf", b"\0" * (5 * 1024 * 1024), "application/pdf") for n in range(7)], "30 MB"),
    ],
)
async def test_what_wb_refuses_is_refused_before_sending(
    fake: FakeWB, client: WBClient, text: str, files: list[tuple[str, bytes, str]], match: str
) -> None:
    chat = fake.open_chat()
    with pytest.raises(WBBadRequest, match=match):
        await client.send_chat_message(chat.reply_sign, text, files)
    assert not fake.calls_to("/api/v1/seller/message")


async def test_downloads_in_moderation_refused_and_served(fake: FakeWB, client: WBClient) -> None:
    pending = fake.add_chat_file(b"\xff\xd8photo", pending=1, retry_seconds=45)
    refused = fake.add_chat_file(b"%PDF", content_type="application/pdf", rejected=True)
    with pytest.raises(WBFilePending) as info:
        await client.download_chat_file(pending.download_id)
    assert info.value.retry_after == 45
    assert await client.download_chat_file(pending.download_id) == (b"\xff\xd8photo", "image/jpeg")
    with pytest.raises(WBFileRejected):
        await client.download_chat_file(refused.download_id)
    with pytest.raises(WBBadRequest, match="invalid download id"):
        await client.download_chat_file("../../etc/passwd")
    big = fake.add_chat_file(b"\0" * 2048)
    with pytest.raises(WBBadRequest, match="larger than"):
        await client.download_chat_file(big.download_id, max_bytes=1024)


async def test_a_429_on_events_is_waited_out(fake: FakeWB, client: WBClient) -> None:
    chat = fake.open_chat()
    fake.buyer_writes(chat, "Алло")
    fake.rate_limit_next(1, retry=0.05, path="/api/v1/seller/events")
    page = await client.chat_events()
    assert [e["message"]["text"] for e in page.events] == ["Алло"]
    assert [c.status for c in fake.calls_to("/api/v1/seller/events")] == [429, 200]


async def test_the_chat_needs_the_buyers_chat_category(fake: FakeWB, make_client: MakeClient) -> None:
    client = make_client(fake.allow(make_token(categories=["feedbacks", "content"])))
    with pytest.raises(WBForbidden):
        await client.chat_events()


async def test_the_fake_honours_with_photo_like_wb(fake: FakeWB, client: WBClient) -> None:
    cards = sample_cards(3)
    cards[0].photos = [{"big": "https://x/1.webp"}]
    fake.add_cards(cards)
    assert len((await client.list_cards(with_photo=-1)).cards) == 3  # the client asks for all
    assert [c.nm_id for c in (await client.list_cards(with_photo=1)).cards] == [cards[0].nm_id]
    assert len((await client.list_cards(with_photo=0)).cards) == 2
    body = {"settings": {"cursor": {"limit": 10}}}  # withPhoto omitted: WB's default 0, without photo
    import httpx

    async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": fake.token}) as http:
        resp = await http.post("/content/v2/get/cards/list", json=body)
        bad = await http.post(
            "/content/v2/get/cards/list", json={"settings": {**body["settings"], "filter": {"withPhoto": 7}}}
        )
    assert len(resp.json()["cards"]) == 2 and bad.status_code == 400
