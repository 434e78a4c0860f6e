"""The buyer's journey on the web chat with the fake WB server and real OCR: every case of the issue."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from otklik.adapters.db.models import Conversation, EventLog, Message, Timer
from otklik.adapters.wildberries.accounts import client_for, wb_accounts
from otklik.adapters.wildberries.ratelimit import FEEDBACKS
from otklik.capabilities.cashback import moderation, payouts
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.clock import utcnow
from tests.capabilities.cashback.conftest import (
    GEL,
    OTHER_TEXT,
    REVIEW_TEXT,
    Buyer,
    Shop,
    add_campaign,
    buttons,
    needs_ocr,
    review_day,
    ru_date,
)
from tests.capabilities.cashback.screens import big_jpeg, huge_png, pdf, recompressed, review_screenshot, truncated_jpeg

CARD = "4111 1111 1111 1111"  # passes Luhn
PHONE = "+7 926 555-12-34"


async def claims(shop: Shop) -> list[CashbackClaim]:
    async with shop.app.db.read() as session:
        return list((await session.execute(select(CashbackClaim).order_by(CashbackClaim.id))).scalars())


def anna_screenshot() -> bytes:
    return review_screenshot(REVIEW_TEXT, name="Анна", when=ru_date(review_day()))


async def to_screenshot_stage(shop: Shop, buyer: Buyer) -> None:
    terms = await buyer.reply_with("Бонус 150 ₽")
    await buyer.send(button=buttons(terms)["Согласен"])
    product = await buyer.reply_with("Какой товар")
    await buyer.send(button=buttons(product)["Гель-смазка 50 мл"])
    await buyer.reply_with("скриншот опубликованного отзыва")


async def new_buyer_at_screenshot(shop: Shop) -> Buyer:
    buyer = await Buyer.open(shop.http, start=f"cb_{shop.campaign_id}")
    await to_screenshot_stage(shop, buyer)
    return buyer


@needs_ocr
async def test_full_journey_auto_approved_paid_and_status(shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="otklik")
    buyer = await Buyer.open(shop.http, start=f"cb_{shop.campaign_id}")
    terms = await buyer.reply_with("Бонус 150 ₽")
    assert "не только за 5 звёзд" in terms["text"] and "удалим" in terms["text"]
    await buyer.send(button=buttons(terms)["Согласен"])
    product = await buyer.reply_with("Какой товар")
    assert set(buttons(product)) == {"Гель-смазка 50 мл", "Масло массажное"}
    await buyer.send(text="999")  # not an article of the campaign
    await buyer.reply_with("нет в акции")
    await buyer.send(text=f"https://www.wildberries.ru/catalog/{GEL}/detail.aspx")
    await buyer.reply_with("скриншот")
    assert (await buyer.upload(anna_screenshot())).status_code == 202
    await buyer.reply_with("Куда перечислить", timeout=40)
    assert any("одобрен" in m["text"] for m in buyer.seen)
    (claim,) = await claims(shop)
    assert claim.state == "approved" and claim.rewarded_feedback_id == "fb-anna" and claim.decided_by == "bot"
    assert {c["name"]: c["result"] for c in claim.checks["items"]} == {
        "image": "pass",
        "duplicate": "pass",
        "ocr": "pass",
        "wb_match": "pass",
        "condition": "pass",
        "once": "pass",
    }
    await buyer.send(text="4111 1111 1111 1112")  # a typo: Luhn fails
    await buyer.reply_with("не прошёл проверку")
    await buyer.send(text=f"{PHONE} Тинькофф")
    saved = await buyer.reply_with("Реквизиты сохранены")
    assert "Т-Банк" in saved["text"] and "926" not in saved["text"]
    await buyer.send(button=buttons(saved)["Статус заявки"])  # the status button works from anywhere
    status = await buyer.reply_with("Заявка №")
    assert "одобрен" in status["text"] and "Новая заявка" in buttons(status)
    paid = await payouts.mark_paid(shop.app.ctx, [claim.id], actor="user:moderator", now=utcnow())
    assert paid == [claim.id]
    assert "перечислен" in (await buyer.reply_with("перечислен"))["text"]
    await assert_details_never_unmasked(shop, "9265551234", caplog)


async def assert_details_never_unmasked(shop: Shop, digits: str, caplog: pytest.LogCaptureFixture) -> None:
    """Payout details live encrypted on the claim; everything else has them masked or not at all."""
    async with shop.app.db.read() as session:
        texts = [t for (t,) in (await session.execute(select(Message.text))).all()]
        events = [str(d) for (d,) in (await session.execute(select(EventLog.data))).all()]
        states = [
            str(s) + str(p)
            for s, p in (await session.execute(select(Conversation.state, Conversation.last_text))).all()
        ]
        claim_rows = [(c.payout_secret or "") + c.payout_masked + str(c.checks) for c in await claims(shop)]
    for blob in [*texts, *events, *states, *claim_rows, caplog.text]:
        assert digits not in blob.replace(" ", "").replace("-", ""), blob[:200]
    async with shop.app.db.read() as session:
        rows = await payouts.registry_rows(session, shop.app.vault)
    csv_text = payouts.registry_csv(rows).decode()
    assert all(r.phone.replace("+7", "") == digits or digits not in csv_text for r in rows)


@needs_ocr
async def test_a_duplicate_screenshot_from_another_buyer_is_flagged(shop: Shop) -> None:
    first = await new_buyer_at_screenshot(shop)
    await first.upload(anna_screenshot())
    await first.reply_with("Куда перечислить", timeout=40)
    second = await new_buyer_at_screenshot(shop)
    await second.upload(recompressed(anna_screenshot()))  # the same picture, re-saved smaller
    await second.reply_with("один отзыв — один бонус", timeout=40)  # it shows a review rewarded already
    one, two = await claims(shop)
    assert one.state == "approved" and two.state == "rejected"
    assert two.fraud_flag and "duplicate_other_buyer" in two.reasons["items"]
    duplicate = next(c for c in two.checks["items"] if c["name"] == "duplicate")
    assert duplicate["result"] == "fail" and one.id in duplicate["claims"]


@needs_ocr
async def test_the_same_wb_review_claimed_twice_the_second_is_rejected(shop: Shop) -> None:
    first = await new_buyer_at_screenshot(shop)
    await first.upload(anna_screenshot())
    await first.reply_with("Куда перечислить", timeout=40)
    second = await new_buyer_at_screenshot(shop)
    # Another picture of the same review (a different crop and colour): not a pixel duplicate.
    other_picture = review_screenshot(
        REVIEW_TEXT, name="Анна", when=ru_date(review_day()), accent=(40, 40, 160), width=1000
    )
    await second.upload(other_picture)
    refused = await second.reply_with("один отзыв — один бонус", timeout=40)
    assert "Куда перечислить" not in refused["text"]
    one, two = await claims(shop)
    assert (one.state, two.state, two.reject_reason) == ("approved", "rejected", "already_rewarded")
    assert two.rewarded_feedback_id is None and two.wb_feedback_id == "fb-anna"


async def test_budget_exhausted_polite_message_and_nothing_collected(shop: Shop) -> None:
    tiny = await add_campaign(shop.app, name="Мини", budget_kopecks=15000, reward_kopecks=15000)
    contact, conversation = await first_contact(shop), await first_conv(shop)
    async with shop.app.db.write() as session:
        session.add(
            CashbackClaim(
                campaign_id=tiny,
                contact_id=contact,
                conversation_id=conversation,
                channel_account_id=1,
                state="paid",
                amount_kopecks=15000,
                checks={},
                reasons={},
                matched={},
                nudges={},
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    before = len(await claims(shop))
    buyer = await Buyer.open(shop.http, start=f"cb_{tiny}")
    assert "исчерпан" in (await buyer.reply_with("исчерпан"))["text"]
    assert len(await claims(shop)) == before


async def test_campaign_ended_polite_message_and_nothing_collected(shop: Shop) -> None:
    async with shop.app.db.write() as session:
        await session.execute(
            update(CashbackCampaign).values(
                ends_at=utcnow() - timedelta(minutes=1), starts_at=utcnow() - timedelta(days=9)
            )
        )
    buyer = await Buyer.open(shop.http, start=f"cb_{shop.campaign_id}")
    assert "завершилась" in (await buyer.reply_with("завершилась"))["text"]
    assert await claims(shop) == []


async def first_contact(shop: Shop) -> int:
    buyer = await Buyer.open(shop.http)
    await buyer.until(lambda ms: len(ms) >= 1)
    async with shop.app.db.read() as session:
        return int(await session.scalar(select(Conversation.contact_id).order_by(Conversation.id.desc()).limit(1)) or 0)


async def first_conv(shop: Shop) -> int:
    async with shop.app.db.read() as session:
        return int(await session.scalar(select(Conversation.id).order_by(Conversation.id.desc()).limit(1)) or 0)


async def slow_then_payout(buyer: Buyer) -> list[dict[str, Any]]:
    """The step sends "it takes longer" and the payout question together: wait for both."""
    replies = await buyer.until(
        lambda ms: (
            any("займёт больше времени" in m["text"] for m in ms) and any("Куда перечислить" in m["text"] for m in ms)
        ),
        timeout=60,
    )
    assert "Wildberries" in next(m["text"] for m in replies if "займёт больше времени" in m["text"])
    return replies


@needs_ocr
async def test_wb_api_down_goes_to_moderation_and_the_buyer_is_told_it_takes_longer(shop: Shop) -> None:
    buyer = await new_buyer_at_screenshot(shop)
    shop.wb.fail_next(20, status=503)
    await buyer.upload(anna_screenshot())
    await slow_then_payout(buyer)  # payout details are still collected
    (claim,) = await claims(shop)
    assert claim.state == "moderation" and "wb_unavailable" in claim.reasons["items"]
    wb_match = next(c for c in claim.checks["items"] if c["name"] == "wb_match")
    assert wb_match["result"] == "skip" and "503" in wb_match["detail"]
    await buyer.send(text=CARD)
    await buyer.reply_with("Реквизиты сохранены")


@needs_ocr
async def test_a_long_rate_limit_pause_of_the_shared_bucket_does_not_hold_the_buyer(shop: Shop) -> None:
    """Another caller of the same WB account (the sync job) got a 429 asking to wait 80 s: every feedbacks
    call of the account now waits that long. The buyer must not: the claim goes to moderation at once."""
    buyer = await new_buyer_at_screenshot(shop)
    (account,) = await wb_accounts(shop.app.db, shop.app.vault)
    shop.wb.rate_limit_next(1, retry=80)
    # the sync job's client (default policy) on the app's buckets: the buyer's source shares them
    async with client_for(account, shop.app.settings, limiters=shop.app.ctx.wb_limiters) as sync_client:
        sync_call = asyncio.create_task(sync_client.count_unanswered_feedbacks())
        bucket = sync_client.limiters.bucket(FEEDBACKS)
        for _ in range(600):
            if bucket.blocked_for() > 60 or sync_call.done():
                break
            await asyncio.sleep(0.05)
        assert bucket.blocked_for() > 60, "the 429 paused the account's feedbacks bucket"
        try:
            await buyer.upload(anna_screenshot())
            await slow_then_payout(buyer)
        finally:
            sync_call.cancel()
    (claim,) = await claims(shop)
    assert claim.state == "moderation" and "wb_unavailable" in claim.reasons["items"]
    wb_match = next(c for c in claim.checks["items"] if c["name"] == "wb_match")
    assert "rate limit" in wb_match["detail"]


@pytest.mark.parametrize(
    ("upload", "expected"),
    [
        ((pdf(), "receipt.pdf", "application/pdf"), "а не картинка"),
        ((huge_png(), "big.png", "image/png"), "слишком большая"),
        ((truncated_jpeg(), "cut.jpg", "image/jpeg"), "повреждён или обрезан"),
    ],
    ids=["pdf", "20000x20000-png", "truncated-jpeg"],
)
async def test_bad_uploads_get_clear_replies_and_change_nothing(
    shop: Shop, upload: tuple[bytes, str, str], expected: str
) -> None:
    buyer = await new_buyer_at_screenshot(shop)
    (before,) = await claims(shop)
    response = await buyer.upload(upload[0], upload[1], upload[2])
    assert response.status_code == 202
    assert expected in (await buyer.reply_with(expected))["text"]
    (after,) = await claims(shop)
    assert (
        (after.state, after.screenshot_media_id, after.checks)
        == ("screenshot", None, {})
        == (before.state, before.screenshot_media_id, before.checks)
    )


async def test_text_instead_of_photo_and_a_30_mb_image(shop: Shop) -> None:
    buyer = await new_buyer_at_screenshot(shop)
    await buyer.send(text="вот мой отзыв, отличный товар")
    await buyer.reply_with("картинка (JPG или PNG), а не текст")
    response = await buyer.upload(big_jpeg(30), "huge.jpg", "image/jpeg")
    assert response.status_code == 413 and "MB" in response.json()["detail"]  # the web chat refuses it at the door
    (claim,) = await claims(shop)
    assert claim.state == "screenshot" and claim.screenshot_media_id is None
    await buyer.send(text="статус")
    assert "ждём скриншот" in (await buyer.reply_with("Заявка №"))["text"]


@needs_ocr
async def test_moderator_asks_for_a_better_screenshot_then_rejects_with_a_reason(shop: Shop) -> None:
    buyer = await new_buyer_at_screenshot(shop)
    await buyer.upload(review_screenshot("Норм", name="Кто-то"))  # too short to match for certain
    await buyer.reply_with("Менеджер проверит", timeout=40)
    await buyer.send(text=CARD)
    await buyer.reply_with("Реквизиты сохранены")
    (claim,) = await claims(shop)
    assert claim.state == "moderation" and claim.payout_masked.endswith("1111")
    await moderation.ask_screenshot(shop.app.ctx, claim.id, "Не видно даты", actor="user:moderator", now=utcnow())
    assert "Не видно даты" in (await buyer.reply_with("более чёткий"))["text"]
    await buyer.upload(review_screenshot(OTHER_TEXT, name="Ольга", when=ru_date(review_day())))
    await buyer.reply_with("одобрен", timeout=40)  # the better screenshot matches a WB review for certain
    await moderation.reject(shop.app.ctx, claim.id, "not_ours", actor="user:moderator", now=utcnow())
    assert "другого продавца" in (await buyer.reply_with("отклонена"))["text"]
    (claim,) = await claims(shop)
    assert claim.state == "rejected" and claim.payout_secret is None  # details erased with the rejection
    async with shop.app.db.read() as session:
        kinds = [
            k for (k,) in (await session.execute(select(EventLog.kind).where(EventLog.kind.like("claim.%")))).all()
        ]
    assert {"claim.to_moderation", "claim.payout_details", "claim.ask_screenshot", "claim.reject"} <= set(kinds)


async def test_the_48_hour_nudge_is_a_durable_timer(shop: Shop) -> None:
    buyer = await new_buyer_at_screenshot(shop)
    async with shop.app.db.write() as session:
        pending = (
            (await session.execute(select(Timer).where(Timer.status == "pending", Timer.kind == "timeout")))
            .scalars()
            .all()
        )
        assert pending and all(t.due_at - utcnow() > timedelta(hours=47) for t in pending)
        await session.execute(update(Timer).where(Timer.id.in_([t.id for t in pending])).values(due_at=utcnow()))
    nudge = await buyer.reply_with("Напоминаем")
    assert "скриншот" in nudge["text"]
    (claim,) = await claims(shop)
    assert "screenshot" in claim.nudges


async def test_no_campaign_and_the_menu_button_entry(shop: Shop) -> None:
    async with shop.app.db.write() as session:
        await session.execute(update(CashbackCampaign).values(status="paused"))
    buyer = await Buyer.open(shop.http)
    await buyer.until(lambda ms: len(ms) >= 2)
    await buyer.send(button="intent:cashback_request")
    assert "акций с бонусом за отзыв нет" in (await buyer.reply_with("нет"))["text"]
    assert await claims(shop) == []


async def test_status_typed_in_the_main_flow_shows_the_claim(shop: Shop) -> None:
    """Keywords mode (no classifier): "статус" outside the cashback flow still reaches the claim."""
    buyer = await Buyer.open(shop.http)
    await buyer.until(lambda ms: len(ms) >= 2)  # the main flow's greeting and menu
    contact, conversation = await first_contact_of_last(shop), await first_conv(shop)
    async with shop.app.db.write() as session:
        session.add(
            CashbackClaim(
                campaign_id=shop.campaign_id,
                contact_id=contact,
                conversation_id=conversation,
                channel_account_id=1,
                state="approved",
                nm_id=GEL,
                product_name="Гель-смазка 50 мл",
                amount_kopecks=15000,
                payout_secret="sealed",
                payout_method="card",
                payout_masked="карта •••• 1111",
                checks={},
                reasons={},
                matched={},
                nudges={},
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    await buyer.send(text="статус")
    status = await buyer.reply_with("Заявка №")
    assert "одобрен" in status["text"] and "Гель-смазка 50 мл" in status["text"]
    assert "Новая заявка" in buttons(status)


async def first_contact_of_last(shop: Shop) -> int:
    async with shop.app.db.read() as session:
        return int(await session.scalar(select(Conversation.contact_id).order_by(Conversation.id.desc()).limit(1)) or 0)


async def test_cancel_at_the_screenshot_closes_the_draft_claim_and_the_buyer_can_start_again(shop: Shop) -> None:
    buyer = await new_buyer_at_screenshot(shop)
    (claim,) = await claims(shop)
    assert claim.state == "screenshot"
    await buyer.send(text="передумала, отмена")
    assert "отменил" in (await buyer.reply_with("отменил"))["text"]
    (claim,) = await claims(shop)
    assert claim.state == "cancelled"  # nothing is left half-done
    async with shop.app.db.read() as session:
        (closed,) = (await session.execute(select(EventLog.data).where(EventLog.kind == "drafts_closed"))).scalars()
    assert closed["flow"] == "care.cashback" and closed["reason"] == "cancelled_by_buyer"
    await buyer.send(button="intent:cashback_request")  # a cancelled draft does not block a new claim
    terms = await buyer.reply_with("Бонус 150 ₽")
    await buyer.send(button=buttons(terms)["Согласен"])
    await buyer.reply_with("Какой товар")
    states = [c.state for c in await claims(shop)]
    assert states == ["cancelled", "product"]


async def test_cancel_after_moderation_keeps_the_submitted_claim(shop: Shop) -> None:
    buyer = await new_buyer_at_screenshot(shop)
    await buyer.upload(review_screenshot("Норм", name="Кто-то"))  # goes to moderation
    await buyer.reply_with("Менеджер проверит", timeout=40)
    await buyer.send(text="отмена")
    await buyer.reply_with("отменил")
    (claim,) = await claims(shop)
    assert claim.state == "moderation"  # submitted: not a draft, a moderator decides it
