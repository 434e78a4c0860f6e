"""Every response the fake WB serves validates against the strict models of WB's published OpenAPI files
(`otklik.adapters.wildberries.spec`, unknown fields refused): the tests run against the API WB describes,
not against one the fake made up. The models themselves refuse what the files do not describe."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from otklik.adapters.wildberries import spec
from otklik.testing.fake_wb import FakeCard, FakeSize, FakeWB, good_card, make_token, sample_cards, sample_feedbacks


def _model_for(method: str, path: str, status: int, content_type: str) -> type[BaseModel] | None:
    """Which documented schema a response must match; None for a bodiless 204 or a binary file."""
    if status == 204:
        return None
    if status == 401 or status == 429:
        return spec.GatewayError
    if path == "/api/v1/feedbacks/answer":
        return spec.FQError if status == 400 else spec.GatewayError
    if status == 403:
        return spec.GatewayError if "problem+json" in content_type else spec.EnvelopeError
    if path.startswith("/api/v1/seller/"):
        if path.startswith("/api/v1/seller/download/"):
            return {200: None, 202: spec.DownloadPending}.get(status, spec.GatewayError)
        if status >= 400:
            return spec.GatewayError
        return {
            "/api/v1/seller/chats": spec.ChatsResponse,
            "/api/v1/seller/events": spec.EventsResponse,
            "/api/v1/seller/message": spec.MessageResponse,
        }[path]
    if status >= 400:
        return spec.ContentError if path.startswith("/content/") else spec.EnvelopeError
    return {
        "/ping": spec.Ping,
        "/api/v1/new-feedbacks-questions": spec.NewFeedbacksQuestions,
        "/api/v1/feedbacks/count-unanswered": spec.CountUnanswered,
        "/api/v1/feedbacks/count": spec.FeedbacksCount,
        "/api/v1/feedbacks": spec.FeedbacksList,
        "/api/v1/feedback": spec.FeedbackOne,
        "/content/v2/get/cards/list": spec.CardsList,
    }[path]


class Recorder:
    """An httpx client to the fake that validates every response as it comes."""

    def __init__(self, fake: FakeWB) -> None:
        self.fake = fake
        self.checked: list[tuple[str, int]] = []
        self.http = httpx.AsyncClient(base_url=fake.url, headers={"Authorization": fake.token})

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        resp = await self.http.request(method, path, **kw)
        model = _model_for(method, path.split("?")[0], resp.status_code, resp.headers.get("content-type", ""))
        if model is not None:
            assert resp.headers["content-type"].split(";")[0] in ("application/json", "application/problem+json")
            try:
                model.model_validate(resp.json())
            except ValidationError as exc:  # pragma: no cover - the message is the point
                raise AssertionError(f"{method} {path} {resp.status_code}: {exc}\n{resp.text[:500]}") from exc
        self.checked.append((path.split("?")[0], resp.status_code))
        return resp


async def test_every_fake_response_matches_wbs_published_schemas() -> None:
    async with FakeWB() as fake:
        fake.add_feedbacks(sample_feedbacks(12, seed=4))
        cards = sample_cards(3)
        cards[0].photos = [{k: f"https://x/{k}.webp" for k in ("big", "c246x328", "c516x688", "square", "tm")}]
        fake.add_cards(cards)
        some_id = next(iter(fake.feedbacks))
        chat = fake.open_chat(client_name="Ира", card=good_card(cards[0].nm_id, size="44"))
        photo = fake.add_chat_file(b"\xff\xd8jpeg", pending=1)
        rejected = fake.add_chat_file(b"%PDF", content_type="application/pdf", name="a.pdf", rejected=True)
        fake.buyer_writes(chat, "Пришёл не тот товар", files=[photo, rejected])
        fake.buyer_writes(chat, "Здравствуйте, это Wildberries", sender="wb", source="seller-portal")
        rec = Recorder(fake)
        try:
            await rec.call("GET", "/ping")
            await rec.call("GET", "/api/v1/new-feedbacks-questions")
            await rec.call("GET", "/api/v1/feedbacks/count-unanswered")
            await rec.call("GET", "/api/v1/feedbacks/count")
            await rec.call("GET", "/api/v1/feedbacks/count?isAnswered=nope")
            await rec.call("GET", "/api/v1/feedbacks?isAnswered=false&take=5&skip=0")
            await rec.call("GET", "/api/v1/feedbacks?isAnswered=true&take=0&skip=0")
            await rec.call("GET", f"/api/v1/feedback?id={some_id}")
            await rec.call("GET", "/api/v1/feedback?id=missing")
            ok = await rec.call("POST", "/api/v1/feedbacks/answer", json={"id": some_id, "text": "Спасибо!"})
            await rec.call("POST", "/api/v1/feedbacks/answer", json={"id": some_id, "text": "x"})
            await rec.call(
                "POST", "/api/v1/feedbacks/answer", content=b"{", headers={"Content-Type": "application/json"}
            )
            body = {"settings": {"cursor": {"limit": 10}, "filter": {"withPhoto": -1}}}
            await rec.call("POST", "/content/v2/get/cards/list", json=body)
            await rec.call("POST", "/content/v2/get/cards/list", json={"settings": {"cursor": {"limit": 500}}})
            await rec.call("GET", "/api/v1/seller/chats")
            events = await rec.call("GET", "/api/v1/seller/events")
            nxt = events.json()["result"]["next"]
            await rec.call("GET", f"/api/v1/seller/events?next={nxt}")  # nothing newer: an empty page
            await rec.call("GET", "/api/v1/seller/events?next=0")

            def form(sign: str, message: str, **files: tuple[str, bytes, str]) -> dict[str, Any]:
                return {"replySign": (None, sign), "message": (None, message), **files}

            sent = await rec.call("POST", "/api/v1/seller/message", files=form(chat.reply_sign, "Сожалею!"))
            await rec.call("POST", "/api/v1/seller/message", files=form("stale", "x"))
            await rec.call("POST", "/api/v1/seller/message", files=form(chat.reply_sign, "я" * 1001))
            gif = ("a.gif", b"GIF89a", "image/gif")
            await rec.call("POST", "/api/v1/seller/message", files=form(chat.reply_sign, "x", file=gif))
            await rec.call("POST", "/api/v1/seller/message", data={"replySign": chat.reply_sign})  # not multipart
            echoed = await rec.call("GET", f"/api/v1/seller/events?next={nxt}")  # our own message comes back
            for _ in range(2):  # 202 in moderation, then the file
                await rec.call("GET", f"/api/v1/seller/download/{photo.download_id}")
            await rec.call("GET", f"/api/v1/seller/download/{rejected.download_id}")
            fake.rate_limit_next(1, path="/api/v1/seller/events")
            await rec.call("GET", "/api/v1/seller/events")
            no_chat = fake.allow(make_token(categories=["content"]))
            for path in ("/api/v1/feedbacks/count-unanswered", "/api/v1/seller/chats"):
                resp = await rec.http.get(path, headers={"Authorization": no_chat})
                assert resp.status_code == 403
                model = _model_for("GET", path, 403, resp.headers["content-type"])
                assert model is not None
                model.model_validate(resp.json())
            unauthorized = await rec.http.get("/ping", headers={"Authorization": "garbage"})
            spec.GatewayError.model_validate(unauthorized.json())
        finally:
            await rec.http.aclose()
        assert ok.status_code == 204 and sent.status_code == 200
        [echo] = echoed.json()["result"]["events"]
        assert (echo["sender"], echo["source"]) == ("seller", "seller-public-api")
        statuses = {status for _, status in rec.checked}
        assert {200, 202, 204, 400, 422, 429, 451} <= statuses  # every documented outcome was exercised
        assert len({path for path, _ in rec.checked}) >= 13


def test_the_models_refuse_what_wbs_files_do_not_describe() -> None:
    feedback = FakeCard(nm_id=1, vendor_code="A", sizes=[FakeSize(chrt_id=1, skus=["1"])]).to_wb()
    spec.Card.model_validate(feedback)
    with pytest.raises(ValidationError, match="Extra inputs"):
        spec.Card.model_validate({**feedback, "colors": []})
    fb = sample_feedbacks(1)[0].to_wb()
    spec.Feedback.model_validate(fb)
    with pytest.raises(ValidationError, match="Extra inputs"):
        spec.Feedback.model_validate({**fb, "orderStatus": "buyout"})  # not in WB's feedback schema
    with pytest.raises(ValidationError):
        spec.Feedback.model_validate({**fb, "productValuation": "5"})  # strict: a string is not an integer
    event = {
        "chatID": "1:a",
        "eventID": "e",
        "eventType": "message",
        "isNewChat": False,
        "message": {"text": "hi"},
        "source": "ios",
        "addTimestamp": 1,
        "addTime": "2026-01-01T00:00:00Z",
        "sender": "client",
        "clientName": "Ира",
    }
    spec.Event.model_validate(event)
    for bad in ({"eventType": "refund"}, {"sender": "bot"}, {"clientID": "7"}, {"addTimestamp": "1"}):
        with pytest.raises(ValidationError):
            spec.Event.model_validate({**event, **bad})
    assert json.loads(json.dumps(event)) == event
