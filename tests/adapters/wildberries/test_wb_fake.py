"""The fake WB server itself: wire formats and request validation as documented (raw HTTP, no client)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from otklik.testing.fake_wb import FakeFeedback, FakeWB, ean13, make_token, sample_cards, sample_feedbacks


@pytest.fixture
async def http(fake: FakeWB) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": f"Bearer {fake.token}"}) as client:
        yield client


async def test_feedbacks_list_uses_the_documented_envelope(fake: FakeWB, http: httpx.AsyncClient) -> None:
    fake.add_feedbacks(sample_feedbacks(5, answered_share=0))
    resp = await http.get("/api/v1/feedbacks", params={"isAnswered": "false", "take": 2, "skip": 0})
    body = resp.json()
    assert resp.status_code == 200 and set(body) == {"data", "error", "errorText", "additionalErrors"}
    assert body["error"] is False and body["errorText"] == "" and body["additionalErrors"] is None
    assert set(body["data"]) == {"countUnanswered", "countArchive", "feedbacks"} and len(body["data"]["feedbacks"]) == 2
    assert "X-Ratelimit-Remaining" in resp.headers


def test_feedback_payload_has_every_documented_key() -> None:
    payload = FakeFeedback(id="k", nm_id=1, text="t").to_wb()
    documented = {
        "id", "text", "pros", "cons", "productValuation", "createdDate", "answer", "state", "productDetails",
        "video", "wasViewed", "photoLinks", "userName", "matchingSize", "bables",
        "lastOrderShkId", "lastOrderCreatedAt", "subjectId", "subjectName", "parentFeedbackId", "childFeedbackId",
    }  # fmt: skip
    assert documented <= set(payload)
    assert "orderStatus" not in payload  # not in WB's feedback schema
    assert set(payload["productDetails"]) == {
        "imtId", "nmId", "productName", "supplierArticle", "supplierName", "brandName", "size"
    }  # fmt: skip


async def test_cards_list_shape(fake: FakeWB, http: httpx.AsyncClient) -> None:
    fake.add_cards(sample_cards(3))
    body = {"settings": {"sort": {"ascending": True}, "filter": {"withPhoto": -1}, "cursor": {"limit": 2}}}
    resp = await http.post("/content/v2/get/cards/list", params={"locale": "ru"}, json=body)
    data = resp.json()
    assert set(data) == {"cards", "cursor"} and set(data["cursor"]) == {"updatedAt", "nmID", "total"}
    assert data["cursor"]["total"] == 2 and data["cursor"]["nmID"] == data["cards"][-1]["nmID"]
    size = data["cards"][0]["sizes"][0]
    assert set(size) == {"chrtID", "techSize", "wbSize", "skus"} and size["skus"][0] == ean13(size["skus"][0][:12])


async def test_429_headers_are_the_documented_ones(fake: FakeWB, http: httpx.AsyncClient) -> None:
    fake.rate_limit_next(1, retry=2, reset=5, limit=6)
    resp = await http.get("/api/v1/feedbacks/count-unanswered")
    assert resp.status_code == 429
    assert (resp.headers["X-Ratelimit-Retry"], resp.headers["X-Ratelimit-Reset"]) == ("2", "5")
    assert resp.headers["X-Ratelimit-Limit"] == "6"
    assert resp.headers["content-type"].startswith("application/json")  # WB's files: 429 is application/json
    assert resp.json()["title"] == "too many requests"
    assert (await http.get("/api/v1/feedbacks/count-unanswered")).status_code == 200  # only the next call


async def test_fake_validates_requests_like_wb(fake: FakeWB, http: httpx.AsyncClient) -> None:
    bad_take = await http.get("/api/v1/feedbacks", params={"isAnswered": "false", "take": 5001, "skip": 0})
    bad_skip = await http.get("/api/v1/feedbacks", params={"isAnswered": "false", "take": 1, "skip": 199_991})
    no_flag = await http.get("/api/v1/feedbacks", params={"take": 1, "skip": 0})
    bad_body = await http.post("/content/v2/get/cards/list", content=b"{")
    big_limit = await http.post("/content/v2/get/cards/list", json={"settings": {"cursor": {"limit": 101}}})
    bad_answer = await http.post("/api/v1/feedbacks/answer", json={"id": "x", "text": "a"})
    no_auth = await http.get("/ping", headers={"Authorization": ""})
    assert bad_take.status_code == bad_skip.status_code == 400 and bad_take.json()["error"] is True
    assert no_flag.status_code == 400 and "isAnswered" in no_flag.json()["errorText"]
    assert bad_body.status_code == 400 and bad_body.text == "Request body can not be decoded"
    assert big_limit.status_code == 400 and bad_answer.status_code == 400
    assert no_auth.status_code == 401
    assert no_auth.headers["content-type"].startswith("application/json")  # WB's files: 401 is application/json
    assert set(no_auth.json()) >= {"title", "detail", "code", "requestId", "origin", "status", "statusText"}


async def test_raw_token_without_bearer_is_accepted(fake: FakeWB) -> None:
    async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": fake.token}) as raw:
        assert (await raw.get("/ping")).json()["Status"] == "OK"


async def test_service_token_claims(fake: FakeWB) -> None:
    token = make_token(kind="service")
    assert token.count(".") == 2
    from otklik.adapters.wildberries import inspect_token

    info = inspect_token(token)
    assert info.issued_for is not None and info.issued_for.startswith("asid:")
