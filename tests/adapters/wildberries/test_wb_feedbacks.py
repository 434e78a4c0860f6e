"""Feedbacks against the fake WB server with the real client: paging, filters, counters, answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from otklik.adapters.wildberries import (
    WBAnswerNotConfirmed,
    WBBadRequest,
    WBClient,
    WBError,
    WBForbidden,
    WBNotFound,
    WBUnavailable,
)
from otklik.testing.fake_wb import FakeFeedback, FakeWB, make_token, sample_feedbacks

MakeClient = Callable[..., WBClient]

START = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def unanswered(count: int, *, per_second: int = 1, nm_id: int = 555) -> list[FakeFeedback]:
    """`count` open feedbacks, `per_second` of them sharing each createdDate second."""
    return [
        FakeFeedback(
            id=f"id{i:05d}", nm_id=nm_id, text=f"отзыв {i}", created_date=START + timedelta(seconds=i // per_second)
        )
        for i in range(count)
    ]


async def test_paging_2500_feedbacks_with_take_skip_returns_each_once(fake: FakeWB, client: WBClient) -> None:
    fake.add_feedbacks(unanswered(2500))
    ids = [fb.id async for fb in client.iter_feedbacks(is_answered=False, page_size=100)]
    assert len(ids) == 2500 and set(ids) == set(fake.feedbacks)
    assert ids == sorted(ids)  # dateAsc, oldest first
    lists = fake.calls_to("/api/v1/feedbacks")
    assert [int(c.query["skip"]) for c in lists] == list(range(0, 2600, 100))
    assert {c.query["take"] for c in lists} == {"100"} and {c.query["isAnswered"] for c in lists} == {"false"}


async def test_paging_past_the_skip_cap_narrows_the_date_window(fake: FakeWB, make_client: MakeClient) -> None:
    # WB caps skip at 199 990; the fake and the client use a cap of 300 so 2 500 feedbacks need many windows.
    fake.max_skip = 300
    fake.add_feedbacks(unanswered(2500, per_second=7))
    client = make_client(feedbacks_max_skip=300)
    for order in ("dateAsc", "dateDesc"):
        fake.calls.clear()
        ids = [fb.id async for fb in client.iter_feedbacks(is_answered=False, page_size=100, order=order)]
        assert Counter(ids) == Counter(list(fake.feedbacks)), order
        calls = fake.calls_to("/api/v1/feedbacks")
        assert all(int(c.query["skip"]) <= 300 for c in calls) and all(c.status == 200 for c in calls)
        assert any("dateFrom" in c.query or "dateTo" in c.query for c in calls)


async def test_more_feedbacks_in_one_second_than_the_skip_cap_is_a_clear_error(
    fake: FakeWB, make_client: MakeClient
) -> None:
    fake.max_skip = 100
    fake.add_feedbacks(unanswered(400, per_second=400))
    client = make_client(feedbacks_max_skip=100)
    with pytest.raises(WBError, match="too many feedbacks within one second"):
        [fb.id async for fb in client.iter_feedbacks(is_answered=False, page_size=50)]


async def test_filters_are_sent_as_documented(fake: FakeWB, client: WBClient) -> None:
    fake.add_feedbacks(unanswered(10, nm_id=1) + [FakeFeedback(id="other", nm_id=2, text="x", created_date=START)])
    date_from, date_to = START + timedelta(seconds=2), START + timedelta(seconds=5)
    page = await client.list_feedbacks(
        is_answered=False, take=50, nm_id=1, order="dateDesc", date_from=date_from, date_to=date_to
    )
    assert [fb.id for fb in page.feedbacks] == ["id00005", "id00004", "id00003", "id00002"]
    query = fake.calls[-1].query
    assert query == {
        "isAnswered": "false",
        "take": "50",
        "skip": "0",
        "nmId": "1",
        "order": "dateDesc",
        "dateFrom": str(int(date_from.timestamp())),
        "dateTo": str(int(date_to.timestamp())),
    }


async def test_take_and_skip_limits_are_checked_before_sending(fake: FakeWB, client: WBClient) -> None:
    with pytest.raises(ValueError, match="take"):
        await client.list_feedbacks(is_answered=False, take=5001)
    with pytest.raises(ValueError, match="skip"):
        await client.list_feedbacks(is_answered=False, take=10, skip=199_991)
    assert fake.calls == []


async def test_feedback_fields_are_typed(fake: FakeWB, client: WBClient) -> None:
    fb = FakeFeedback(
        id="abc",
        nm_id=987654321,
        text="Пришёл не тот размер",
        pros="",
        cons="Пересорт",
        product_valuation=2,
        created_date=START,
        user_name="Николай",
        photo_links=[{"fullSize": "https://x/fs.webp", "miniSize": "https://x/ms.webp"}],
        size="M",
        bables=["размер"],
    )
    fake.add_feedbacks([fb])
    got = await client.get_feedback("abc")
    assert (got.nm_id, got.product_valuation, got.user_name, got.cons) == (987654321, 2, "Николай", "Пересорт")
    assert got.created_date == START and got.product_details.size == "M"
    assert got.photo_links[0].full_size == "https://x/fs.webp"
    assert not got.is_answered and got.answer is None and got.bables == ["размер"]


async def test_counters_and_new_check(fake: FakeWB, client: WBClient) -> None:
    fake.add_feedbacks(sample_feedbacks(40, seed=3))
    expected_open = sum(1 for fb in fake.feedbacks.values() if not fb.is_answered)
    counts = await client.count_unanswered_feedbacks()
    assert counts.count_unanswered == expected_open
    assert await client.count_feedbacks(is_answered=False) == expected_open
    # isAnswered omitted: WB's spec defaults it to true, so only the answered ones are counted
    assert await client.count_feedbacks() == 40 - expected_open
    assert await client.count_feedbacks(is_answered=True) == 40 - expected_open
    assert (await client.has_new_feedbacks_or_questions()).has_new_feedbacks is True


async def test_rating_only_feedback_counts_as_processed(fake: FakeWB, client: WBClient) -> None:
    fake.add_feedbacks([FakeFeedback(id="stars-only", nm_id=1, product_valuation=5, created_date=START)])
    assert [fb.id async for fb in client.iter_feedbacks(is_answered=False)] == []
    assert [fb.id async for fb in client.iter_feedbacks(is_answered=True)] == ["stars-only"]


async def test_answer_then_reread_confirms(fake: FakeWB, client: WBClient) -> None:
    fake.add_feedbacks(unanswered(1))
    await client.answer_feedback("id00000", "  Спасибо за отзыв!  ")
    post = fake.calls_to("/api/v1/feedbacks/answer", "POST")[0]
    assert post.body == {"id": "id00000", "text": "Спасибо за отзыв!"} and post.status == 204
    again = await client.get_feedback("id00000")
    assert again.is_answered and again.answer is not None and again.answer.state == "wbRu"
    assert again.answer_text == "Спасибо за отзыв!"


async def test_answer_confirmed_returns_the_reread_feedback_in_moderation(fake: FakeWB, client: WBClient) -> None:
    fake.answer_state = "reviewRequired"
    fake.add_feedbacks(unanswered(1))
    feedback = await client.answer_feedback_confirmed("id00000", "Спасибо!", delay=0.01)
    assert feedback.answer is not None and feedback.answer.state == "reviewRequired"
    assert [c.method for c in fake.calls] == ["POST", "GET"]


async def test_answer_to_a_wrong_id_gets_204_but_is_not_confirmed(fake: FakeWB, client: WBClient) -> None:
    await client.answer_feedback("no-such-id", "Спасибо!")  # WB does not validate the id
    assert fake.answers_to_unknown_ids == [{"id": "no-such-id", "text": "Спасибо!"}]
    with pytest.raises(WBAnswerNotConfirmed, match="does not exist"):
        await client.answer_feedback_confirmed("no-such-id", "Спасибо!", delay=0.01)


async def test_answer_not_shown_after_reread_is_not_confirmed(fake: FakeWB, client: WBClient) -> None:
    fake.add_feedbacks(unanswered(1))
    fake.fail_next(1, status=503, path="/api/v1/feedbacks/answer")  # not applied, and not retried
    with pytest.raises(WBUnavailable) as info:
        await client.answer_feedback_confirmed("id00000", "Спасибо!", attempts=2, delay=0.01)
    assert info.value.maybe_applied
    assert fake.feedbacks["id00000"].answer is None
    assert len(fake.calls_to("/api/v1/feedbacks/answer")) == 1


async def test_answer_applied_but_response_lost_is_confirmed_by_rereading(fake: FakeWB, client: WBClient) -> None:
    fake.add_feedbacks(unanswered(1))
    fake.fail_next(1, status=502, path="/api/v1/feedbacks/answer", after=True)
    feedback = await client.answer_feedback_confirmed("id00000", "Спасибо!", delay=0.01)
    assert feedback.answer_text == "Спасибо!"
    assert len(fake.calls_to("/api/v1/feedbacks/answer")) == 1  # never posted twice


async def test_someone_elses_answer_is_not_taken_as_ours(fake: FakeWB, client: WBClient) -> None:
    # Our send failed ambiguously, and meanwhile an operator answered in the seller portal.
    fake.add_feedbacks([FakeFeedback(id="x", nm_id=1, text="t", created_date=START, answer="Ответ из кабинета")])
    fake.fail_next(1, status=503, path="/api/v1/feedbacks/answer")
    with pytest.raises(WBAnswerNotConfirmed, match="another answer"):
        await client.answer_feedback_confirmed("x", "Наш ответ", attempts=1)


async def test_second_answer_is_refused_by_the_fake(fake: FakeWB, client: WBClient) -> None:
    # Not documented by WB; the fake assumes a second POST is an error (edits go through PATCH).
    fake.add_feedbacks([FakeFeedback(id="x", nm_id=1, text="t", created_date=START, answer="Первый ответ")])
    with pytest.raises(WBBadRequest, match="already has an answer"):
        await client.answer_feedback("x", "Второй ответ")
    assert fake.feedbacks["x"].answer == "Первый ответ"


@pytest.mark.parametrize("text", ["", " ", "a", "я" * 5001])
async def test_answer_length_is_checked_locally(fake: FakeWB, client: WBClient, text: str) -> None:
    with pytest.raises(WBBadRequest, match="2–5000"):
        await client.answer_feedback("id", text)
    assert fake.calls == []


async def test_unknown_feedback_is_not_found(fake: FakeWB, client: WBClient) -> None:
    with pytest.raises(WBNotFound, match="Невозможно получить отзыв"):
        await client.get_feedback("missing")


async def test_read_only_token_cannot_answer(fake: FakeWB, make_client: MakeClient) -> None:
    fake.add_feedbacks(unanswered(1))
    client = make_client(fake.allow(make_token(read_only=True)))
    assert (await client.get_feedback("id00000")).id == "id00000"  # reading works
    with pytest.raises(WBForbidden) as info:
        await client.answer_feedback("id00000", "Спасибо!")
    assert "not allowed" in info.value.reason
    assert fake.feedbacks["id00000"].answer is None
