"""Review insights: import with paging and 429s, classification, reply drafts, approval and posting with
the confirming re-read, failures and retries (real database, fake WB server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from otklik.adapters.wildberries import RateLimit, RetryPolicy, WBClient, WBHosts, WBUnavailable
from otklik.adapters.wildberries.accounts import wb_accounts
from otklik.adapters.wildberries.ratelimit import CONTENT, FEEDBACKS, PING
from otklik.capabilities.care.classify import ReviewClassifier, review_text
from otklik.capabilities.care.incidents import Period
from otklik.capabilities.care.models import WBFeedback, WBReviewReply
from otklik.capabilities.care.replies import approve_reply, create_drafts, list_replies, post_approved, retry_reply
from otklik.capabilities.care.reviews import import_feedbacks, reclassify, review_insights, reviews_csv
from otklik.capabilities.care.sync import SyncOptions, sync_account
from otklik.capabilities.care.syncstate import load_state
from otklik.core.errors import Conflict, InvalidInput
from otklik.testing.fake_wb import FakeFeedback, sample_feedbacks
from tests.capabilities.care.conftest import Care

PACK = Path(__file__).resolve().parents[3] / "otklik" / "packs" / "care-ru"
HELDOUT = Path(__file__).parent / "data" / "reviews_heldout.yaml"
FAST = RetryPolicy(max_attempts=5, backoff_base=0.02, backoff_max=0.05, max_retry_after=2)
UNLIMITED = {g: RateLimit(rate=10_000, burst=10_000) for g in (FEEDBACKS, CONTENT, PING)}


@pytest.fixture(scope="module")
def classifier() -> ReviewClassifier:
    return ReviewClassifier.for_pack(PACK)


def client(care: Care, **kw: object) -> WBClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("limits", UNLIMITED)
    return WBClient(care.wb.token, hosts=WBHosts.single(care.wb.url), timeout=5.0, **kw)  # type: ignore[arg-type]


async def stored(care: Care) -> int:
    async with care.app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(WBFeedback)) or 0)


def feedback(fid: str, stars: int, text: str, *, cons: str = "", days_ago: float = 1, **kw: object) -> FakeFeedback:
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    return FakeFeedback(id=fid, nm_id=123456789, text=text, cons=cons, product_valuation=stars,
                        created_date=created, product_name="Гель разогревающий", **kw)  # type: ignore[arg-type]  # fmt: skip


def test_the_classifier_on_a_held_out_labelled_set(classifier: ReviewClassifier) -> None:
    """66 review texts written apart from reviews.yaml and never tuned on (see docs/care.md for the figures)."""
    rows = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))["reviews"]
    right = negativity = 0
    for rating, expected, text in rows:
        label = classifier.classify(text, rating)
        got = label.category if label.negative else "none"
        right += got == expected
        negativity += label.negative == (expected != "none")
    accuracy = right / len(rows)
    print(f"held-out: {right}/{len(rows)} categories right ({accuracy:.1%}), negativity {negativity}/{len(rows)}")
    assert len(rows) >= 60
    assert accuracy >= 0.85
    assert negativity / len(rows) >= 0.95


def test_low_ratings_are_negative_even_without_text(classifier: ReviewClassifier) -> None:
    assert classifier.classify("", 2).negative and classifier.classify("", 2).category == "other"
    assert not classifier.classify("", 5).negative
    assert not classifier.classify("!!! ??? 123", 5).negative


async def test_reclassify_rewrites_every_stored_label(care: Care, classifier: ReviewClassifier) -> None:
    care.wb.add_feedbacks(sample_feedbacks(12, seed=5))
    async with client(care) as wb:
        await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier, page_size=50)
    async with care.app.db.write() as session:  # as if the seller's old examples had labelled everything wrongly
        for row in (await session.execute(select(WBFeedback))).scalars():
            row.category, row.negative, row.classified_by = "price", False, "stale"
    assert await reclassify(care.app.db, classifier, account_id=care.account_id) == 12
    async with care.app.db.read() as session:
        rows = list((await session.execute(select(WBFeedback))).scalars())
    assert all(r.classified_by == "offline" for r in rows)
    for row in rows:
        expected = classifier.classify(review_text(row.text, row.cons), row.rating)
        assert (row.category, row.negative) == (expected.category, expected.negative)


async def test_import_pages_through_429s_and_is_incremental(care: Care, classifier: ReviewClassifier) -> None:
    care.wb.add_feedbacks(sample_feedbacks(40, seed=3))
    care.wb.rate_limit_next(3, retry=0.1, path="/api/v1/feedbacks")
    async with client(care) as wb:
        first = await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier, page_size=7)
        assert first.new == first.fetched == 40  # rating-only reviews come from the "processed" list
        assert await stored(care) == first.new
        pages = [c for c in care.wb.calls_to("/api/v1/feedbacks") if c.status == 200]
        assert len(pages) >= 6 and {c.query["take"] for c in pages} == {"7"}
        assert sum(1 for c in care.wb.calls_to("/api/v1/feedbacks") if c.status == 429) == 3
        again = await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier, page_size=7)
        assert (again.new, again.updated) == (0, 0)
        target = next(f for f in care.wb.feedbacks.values() if f.answer is None and f.text)
        target.answer = "Спасибо за отзыв, разберёмся!"
        third = await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier, page_size=7)
        assert (third.new, third.updated) == (0, 1)
    async with care.app.db.read() as session:
        rows = list((await session.execute(select(WBFeedback))).scalars())
    assert len({r.feedback_id for r in rows}) == len(rows)
    burns = [r for r in rows if "жжение" in r.text]
    assert burns and all(r.negative and r.category == "side_effect" for r in burns)


class OutageAfter(httpx.AsyncBaseTransport):
    """A real transport that answers 502 to feedback-list calls number `first`..`last` (WB goes down mid-import)."""

    def __init__(self, first: int, last: int) -> None:
        self.real, self.first, self.last, self.seen = httpx.AsyncHTTPTransport(), first, last, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/feedbacks":
            self.seen += 1
            if self.first <= self.seen <= self.last:
                return httpx.Response(502, json={"title": "bad gateway"})
        return await self.real.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_an_interrupted_import_keeps_its_pages_and_resumes(care: Care, classifier: ReviewClassifier) -> None:
    care.wb.add_feedbacks(sample_feedbacks(30, seed=4, answered_share=0.0))
    flaky = OutageAfter(3, 10)
    retry = RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_max=0.02)
    async with client(care, retry=retry, transport=flaky) as wb:
        with pytest.raises(WBUnavailable):
            await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier, page_size=7)
        assert await stored(care) == 14  # the two pages read before the outage are kept
        flaky.last = 0
        resumed = await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier, page_size=7)
    assert (resumed.new, await stored(care)) == (30 - 14, 30)


async def test_a_sync_run_reports_wb_errors_instead_of_raising(care: Care) -> None:
    (account,) = await wb_accounts(care.app.db, care.app.vault)
    care.wb.fail_next(20, status=503, path="/api/v1/feedbacks")
    options = SyncOptions(cards=False, replies=False)
    report = await sync_account(care.app.db, care.app.settings, account, options, limiters=care.app.ctx.wb_limiters)
    assert report.error and "Wildberries" in report.error
    state = await load_state(care.app.db, account.id)
    assert state["last_error"] and "feedbacks_newest" not in state


async def test_drafts_approval_and_posting_with_the_confirming_reread(care: Care, classifier: ReviewClassifier) -> None:
    care.wb.add_feedbacks(
        [
            feedback("fb-wrong", 1, "Пришёл не тот цвет, заказывала красный", days_ago=3),
            feedback("fb-smell", 2, "ужасный запах химии", days_ago=2),
            feedback("fb-happy", 5, "Всё отлично, спасибо", days_ago=1),
            feedback("fb-done", 1, "брак", answer="Уже ответили"),
        ]
    )
    async with client(care) as wb:
        await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier)
        drafts = await create_drafts(care.app.db, account_id=care.account_id)
        assert [d.feedback_id for d in drafts] == ["fb-wrong", "fb-smell", "fb-happy"]  # oldest first, unanswered
        wrong, smell, happy = drafts
        assert wrong.category == "wrong_item" and "Не тот товар" in wrong.text and wrong.status == "draft"
        assert await create_drafts(care.app.db) == []  # one reply per review
        for hostile in ("Пишите в WhatsApp +7 999 123-45-67", "Вернём вам 500 рублей!", "ок", "x" * 6000):
            with pytest.raises(InvalidInput):
                await approve_reply(care.app.db, wrong.id, user_id=7, user_name="Оля", text=hostile)
        edited = "Здравствуйте! Жаль, что пришёл не тот цвет. Оформите возврат в приложении Wildberries."
        approved = await approve_reply(care.app.db, wrong.id, user_id=7, user_name="Оля", text=edited)
        assert (approved.status, approved.approved_by, approved.source) == ("approved", "Оля", "operator")
        await approve_reply(care.app.db, happy.id, user_id=7, user_name="Оля")
        report = await post_approved(care.app.db, wb, care.account_id)
        assert (report.posted, report.failed) == (2, 0)
    assert care.wb.feedbacks["fb-wrong"].answer == edited
    assert care.wb.calls_to("/api/v1/feedback")  # re-read to confirm
    posted = await list_replies(care.app.db, status="posted")
    assert {r.feedback_id for r in posted} == {"fb-wrong", "fb-happy"} and all(r.answer_state == "wbRu" for r in posted)
    assert [r.feedback_id for r in await list_replies(care.app.db, status="draft")] == ["fb-smell"]
    with pytest.raises(Conflict):
        await approve_reply(care.app.db, wrong.id, user_id=7, user_name="Оля")


async def test_failures_are_visible_and_retryable(care: Care, classifier: ReviewClassifier) -> None:
    care.wb.add_feedbacks([feedback("fb-a", 1, "брак, крышка сломана"), feedback("fb-b", 2, "маломерит на размер")])
    async with client(care) as wb:
        await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier)
        a, b = await create_drafts(care.app.db)
        for reply in (a, b):
            await approve_reply(care.app.db, reply.id, user_id=1, user_name="Админ")
        lost = care.wb.feedbacks.pop("fb-a")  # WB accepts an answer to an unknown id: only the re-read tells
        care.wb.fail_next(1, status=502, path="/api/v1/feedbacks/answer", after=True)  # b: applied, reply lost
        report = await post_approved(care.app.db, wb, care.account_id)
        assert (report.posted, report.failed) == (1, 1)
        (failed,) = await list_replies(care.app.db, status="failed")
        assert failed.feedback_id == "fb-a" and failed.error and "fb-a" in failed.error
        assert care.wb.feedbacks["fb-b"].answer == b.text  # posted exactly once despite the lost response
        care.wb.feedbacks["fb-a"] = lost
        again = await retry_reply(care.app.db, failed.id, user_id=2, user_name="Оператор")
        assert again.status == "approved" and again.error is None
        assert (await post_approved(care.app.db, wb, care.account_id)).posted == 1
    assert care.wb.feedbacks["fb-a"].answer == a.text
    async with care.app.db.read() as session:
        attempts = dict((await session.execute(select(WBReviewReply.id, WBReviewReply.attempts))).all())
    assert attempts[failed.id] == 2


async def test_insights_group_negative_reviews_by_product_and_category(
    care: Care, classifier: ReviewClassifier
) -> None:
    care.wb.add_feedbacks(
        [
            feedback("r1", 1, '=HYPERLINK("x") брак, флакон треснул', days_ago=10),
            feedback("r2", 2, "флакон протёк, всё в масле", days_ago=3),
            feedback("r3", 4, "хороший гель, но коробка пришла мятая", days_ago=2),
            feedback("r4", 5, "Всё супер, рекомендую", days_ago=1),
        ]
    )
    async with client(care) as wb:
        await import_feedbacks(care.app.db, wb, care.account_id, classifier=classifier)
    insights = await review_insights(care.app.db, Period.last(30), bucket="week")
    assert (insights.total, insights.negative) == (4, 3)
    assert insights.by_category == {"defective_item": 2, "packaging": 1}
    assert list(insights.by_product) == ["123456789 · Гель разогревающий"]
    assert sum(sum(c.values()) for _, c in insights.series) == 3
    assert insights.examples["defective_item"][0].feedback_id == "r2"  # newest first
    csv_text = await reviews_csv(care.app.db, Period.last(30))
    assert csv_text.splitlines()[0].startswith("feedback_id,") and len(csv_text.splitlines()) == 4
    assert "'=HYPERLINK" in csv_text  # formulas neutralised
    await asyncio.sleep(0)
