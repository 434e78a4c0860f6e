"""care-ru on WhatsApp: a buyer writes, picks "Брак" from the list, sends a photo of the barcode (fetched by
media id from the Graph API into the media store), rates the answer; receipts arrive out of order and are
applied monotonically with Meta's times; a click-to-WhatsApp referral is kept as the lead source."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from otklik.adapters.db.models import Contact, Message
from tests.channels.whatsapp.conftest import USER, WA, body_text, choices, png, wait_for


async def _message(wa: WA, wamid: str) -> Message:
    async with wa.app.db.read() as session:
        row = await session.scalar(select(Message).where(Message.external_id == wamid))
    assert row is not None, wamid
    return row


async def test_care_ru_with_a_photo_of_the_barcode(wa: WA) -> None:
    fake = wa.fake
    await wa.post(fake.text_message(USER, "/start", name="Ирина"))
    hello, menu = await wa.replies(USER, 0, 2)
    assert "помощник магазина" in body_text(hello)
    assert menu["interactive"]["type"] == "list"  # five choices: a list (reply buttons take three)
    rows = choices(menu)
    defect = next(title for title in rows if "Брак" in title)

    await wa.post(fake.button_reply(USER, rows[defect], defect))  # a list reply comes back by its row id
    (ask,) = await wa.replies(USER, 2, 1)
    assert "фото" in body_text(ask)

    photo = png()
    await wa.post(fake.image_message(USER, photo, caption="штрихкод", mime="image/png"))
    answer, rate = await wa.replies(USER, 3, 2)
    assert "Wildberries" in body_text(answer) and "Оцените" in body_text(rate)
    async with wa.app.db.read() as session:
        inbound = await session.scalar(select(Message).where(Message.kind == "photo"))
    assert inbound is not None
    [attachment] = inbound.payload["attachments"]
    assert await wa.app.ctx.media.read(attachment["media_id"]) == photo  # fetched by id into the media store
    assert attachment["content_type"] == "image/png"

    await wa.post(fake.list_reply(USER, "5", "5"))
    (thanks,) = await wa.replies(USER, 5, 1)
    assert body_text(thanks).startswith("Спасибо за оценку")
    await wait_for(lambda: len(fake.state.reads) >= 4)  # each buyer message marked read (blue ticks)

    async with wa.app.db.read() as session:
        contact = await session.scalar(select(Contact))
    assert contact is not None and contact.display_name == "Ирина"


async def test_receipts_out_of_order_never_go_back(wa: WA) -> None:
    fake = wa.fake
    await wa.post(fake.text_message(USER, "/start"))
    await wa.replies(USER, 0, 2)
    wamid = fake.sent_ids(USER)[-1]
    await wait_for(lambda: True)
    t0 = int(fake.now()) - 50
    # read first, then the delayed delivered and sent (Meta promises no order), then a redelivered read
    await wa.post(fake.status(wamid, "read", USER, ts=t0 + 30))
    await wa.post(fake.status(wamid, "delivered", USER, ts=t0 + 10))
    await wa.post(fake.status(wamid, "sent", USER, ts=t0 + 5))
    await wa.post(fake.status(wamid, "read", USER, ts=t0 + 40))
    row = await _message(wa, wamid)
    assert row.status == "read"
    assert row.read_at == datetime.fromtimestamp(t0 + 30, UTC)  # Meta's time of the first read receipt
    assert row.delivered_at == datetime.fromtimestamp(t0 + 10, UTC)  # filled by "delivered", not moved back

    other = fake.sent_ids(USER)[0]
    await wa.post(fake.status(other, "delivered", USER, ts=t0 + 20))
    await wa.post(fake.status(other, "failed", USER, ts=t0 + 21, error_code=131026))  # after delivery: ignored
    row = await _message(wa, other)
    assert row.status == "delivered" and row.error is None


async def test_a_failed_receipt_records_metas_error(wa: WA) -> None:
    fake = wa.fake
    await wa.post(fake.text_message(USER, "/start"))
    await wa.replies(USER, 0, 2)
    wamid = fake.sent_ids(USER)[0]
    await wa.post(fake.status(wamid, "failed", USER, error_code=131026))
    row = await _message(wa, wamid)
    assert row.status == "failed" and row.failed_at is not None
    assert row.error is not None and "131026" in row.error


async def test_a_click_to_whatsapp_referral_is_kept_as_the_lead_source(wa: WA) -> None:
    fake = wa.fake
    referral = {"source_url": "https://fb.me/ad1", "source_id": "120210", "source_type": "ad", "headline": "Скидка 20%",
                "ctwa_clid": "ARAkLk"}  # fmt: skip
    await wa.post(fake.text_message(USER, "Здравствуйте", extra={"referral": referral}))
    await wa.replies(USER, 0, 2)
    await wa.post(fake.text_message(USER, "ещё вопрос", extra={"referral": {"source_id": "other"}}))
    async with wa.app.db.read() as session:
        contact = await session.scalar(select(Contact))
    assert contact is not None
    assert contact.fields["lead_source"]["source_id"] == "120210"  # the first referral stays
    assert contact.fields["lead_source"]["headline"] == "Скидка 20%"
