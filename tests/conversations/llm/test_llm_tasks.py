"""The LLM's uses against the fake server: classification, grounded answers, review reply drafts,
and the question-answering path with its fallback to the article text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from otklik.conversations.knowledge import KnowledgeBase
from otklik.conversations.llm import (
    LLMClient,
    UsageRecord,
    answer_question,
    classify_with_llm,
    draft_review_reply,
    grounded_answer,
)
from otklik.testing.fake_openai import FakeOpenAI, FakeReply

INTENTS = {
    "defect": "the item is broken, leaking or does not work",
    "wrong_item": "the buyer received a different item",
    "side_effect": "burning, redness or another reaction after using the product",
}

# --- classification ---------------------------------------------------------------------------------------


async def test_classify_returns_an_allowed_intent(fake: FakeOpenAI, llm: LLMClient, usage: list[UsageRecord]) -> None:
    fake.enqueue(FakeReply.json({"intent": "side_effect", "confidence": 0.92}))
    result = await classify_with_llm(llm, "после геля всё горит", INTENTS, "ru")
    assert result == ("side_effect", 0.92)
    request = fake.chat_requests[-1]
    assert request.body["response_format"] == {"type": "json_object"}
    system = request.message("system")
    for name, description in INTENTS.items():
        assert f"- {name}: {description}" in system
    assert request.message("user") == "<buyer_message>\nпосле геля всё горит\n</buyer_message>"
    assert usage[-1].purpose == "classify" and usage[-1].ok


@pytest.mark.parametrize(
    "reply",
    [
        FakeReply.json({"intent": "refund_now", "confidence": 0.99}),  # not an allowed intent
        FakeReply.json({"intent": "none", "confidence": 0.9}),
        FakeReply.json({"intent": "DEFECT", "confidence": 0.9}),
        FakeReply.json({"intent": "defect", "confidence": 1.7}),
        FakeReply.json({"intent": "defect", "confidence": "high"}),
        FakeReply.json({"intent": "defect", "confidence": True}),
        FakeReply.json({"label": "defect"}),
        FakeReply.text("Это дефект товара."),  # not the JSON asked for
        FakeReply.malformed(),
        FakeReply.server_error(500),
    ],
)
async def test_classify_falls_back_on_anything_else(
    fake: FakeOpenAI, make_llm: Callable[..., LLMClient], reply: FakeReply, rejections: Any
) -> None:
    fake.enqueue(reply)
    assert await classify_with_llm(make_llm(max_retries=0), "сломался", INTENTS, "ru", on_reject=rejections) is None
    assert rejections.items, "every fallback is reported"


async def test_classify_times_out_to_none(
    fake: FakeOpenAI, make_llm: Callable[..., LLMClient], rejections: Any
) -> None:
    fake.enqueue(FakeReply.slow(5.0), FakeReply.slow(5.0))
    client = make_llm(timeout=0.3)
    assert await classify_with_llm(client, "сломался", INTENTS, "ru", on_reject=rejections) is None
    assert rejections.reasons == ["unavailable:timeout"]


# --- grounded answers -------------------------------------------------------------------------------------

DEFECT_ANSWER = (
    "Нам жаль, что товар пришёл с браком. Если заказ ещё в пункте выдачи, осмотрите товар и откажитесь от "
    "него. Если товар уже у вас, оформите заявку на возврат брака в приложении Wildberries и приложите фото."
)


async def test_grounded_answer_passes_with_a_good_citation(
    fake: FakeOpenAI, llm: LLMClient, care: KnowledgeBase
) -> None:
    defect, delivery = care.get("defect-return"), care.get("delivery")
    assert defect and delivery
    fake.enqueue(FakeReply.json({"answer": DEFECT_ANSWER, "sources": ["defect-return"]}))
    result = await grounded_answer(llm, "товар сломан, что делать?", [defect, delivery], "ru", True)
    assert result is not None
    assert result.text == DEFECT_ANSWER and result.cited_ids == ("defect-return",)
    request = fake.chat_requests[-1]
    roles = [m["role"] for m in request.messages]
    assert roles == ["system", "system", "user"]
    assert '<article id="defect-return">' in request.messages[1]["content"]
    assert '<article id="delivery">' in request.messages[1]["content"]
    assert "Для оператора" not in request.messages[1]["content"]  # operator notes stay out of the prompt
    assert "never write links" in request.message("system")  # the marketplace rule is stated


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"answer": DEFECT_ANSWER, "sources": []}, "grounding:no_citation"),
        ({"answer": DEFECT_ANSWER}, "grounding:no_citation"),
        ({"answer": DEFECT_ANSWER, "sources": ["refund-policy"]}, "grounding:unknown_citation:refund-policy"),
        ({"answer": DEFECT_ANSWER, "sources": ["delivery"]}, "grounding:low_support"),
        ({"answer": "", "sources": ["defect-return"]}, "no_answer"),
        (
            {"answer": DEFECT_ANSWER + " Напишите нам в телеграм.", "sources": ["defect-return"]},
            "contact:messenger",
        ),
    ],
)
async def test_grounded_answer_rejections(
    fake: FakeOpenAI, llm: LLMClient, care: KnowledgeBase, payload: dict[str, object], reason: str, rejections: Any
) -> None:
    hits = [care.get("defect-return"), care.get("delivery")]
    fake.enqueue(FakeReply.json(payload))
    assert await grounded_answer(llm, "товар сломан", hits, "ru", True, on_reject=rejections) is None  # type: ignore[arg-type]
    assert any(r.startswith(reason) for r in rejections.reasons), rejections.reasons


async def test_grounded_answer_with_no_articles_does_not_call_the_model(fake: FakeOpenAI, llm: LLMClient) -> None:
    assert await grounded_answer(llm, "вопрос", [], "ru", True) is None
    assert fake.chat_requests == []


# --- review reply drafts ----------------------------------------------------------------------------------


async def test_review_reply_draft(fake: FakeOpenAI, llm: LLMClient) -> None:
    reply = "Спасибо за отзыв! Нам жаль, что товар пришёл с дефектом, мы передали замечание на склад."
    fake.enqueue(FakeReply.json({"reply": reply}))
    draft = await draft_review_reply(llm, "Пришёл с трещиной", 2, "defect", "ru")
    assert draft == reply
    user = fake.chat_requests[-1].message("user")
    assert '"rating": 2' in user and '"category": "defect"' in user
    assert "<review>\nПришёл с трещиной\n</review>" in user


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("Спасибо! Вернём деньги за брак.", "promise:refund"),
        ("Спасибо за отзыв! Напишите нам в вотсап, решим вопрос.", "contact:messenger"),
        ("Спасибо за отзыв, у вас аллергия на компоненты.", "medical:diagnosis:allergy"),
        ("Спасибо!", "review:too_short"),
        ("Спасибо за отзыв! " * 80, "review:too_long"),
    ],
)
async def test_review_reply_rejections(
    fake: FakeOpenAI, llm: LLMClient, reply: str, reason: str, rejections: Any
) -> None:
    fake.enqueue(FakeReply.json({"reply": reply}))
    assert await draft_review_reply(llm, "Плохо", 1, "defect", "ru", on_reject=rejections) is None
    assert reason in rejections.reasons


# --- answering a question: LLM optional, the article text is the fallback ----------------------------------


async def test_without_llm_the_article_text_is_sent(care: KnowledgeBase) -> None:
    reply = await answer_question("товар сломан, хочу вернуть", care, "ru", channel_is_marketplace=True)
    assert reply is not None and reply.source == "article"
    assert reply.article_ids == ("defect-return",)
    assert reply.text == care.get("defect-return").answer_text  # type: ignore[union-attr]


async def test_with_llm_the_checked_answer_is_sent(fake: FakeOpenAI, llm: LLMClient, care: KnowledgeBase) -> None:
    fake.enqueue(FakeReply.json({"answer": DEFECT_ANSWER, "sources": ["defect-return"]}))
    reply = await answer_question("товар сломан, хочу вернуть", care, "ru", channel_is_marketplace=True, llm=llm)
    assert reply is not None and reply.source == "llm" and reply.text == DEFECT_ANSWER


@pytest.mark.parametrize(
    "reply",
    [FakeReply.slow(5.0), FakeReply.server_error(503), FakeReply.text("не JSON"), FakeReply.malformed()],
)
async def test_llm_failure_falls_back_to_the_article(
    fake: FakeOpenAI, make_llm: Callable[..., LLMClient], care: KnowledgeBase, reply: FakeReply
) -> None:
    fake.enqueue(reply)
    client = make_llm(timeout=0.3, max_retries=0)
    answer = await answer_question("товар сломан, хочу вернуть", care, "ru", channel_is_marketplace=True, llm=client)
    assert answer is not None and answer.source == "article" and answer.article_ids == ("defect-return",)


async def test_off_topic_question_gets_none_and_no_llm_call(
    fake: FakeOpenAI, llm: LLMClient, care: KnowledgeBase
) -> None:
    assert await answer_question("как приготовить борщ", care, "ru", channel_is_marketplace=True, llm=llm) is None
    assert fake.chat_requests == []


async def test_side_effect_articles_are_sent_verbatim(fake: FakeOpenAI, llm: LLMClient, care: KnowledgeBase) -> None:
    reply = await answer_question(
        "после смазки покраснела кожа и горит", care, "ru", channel_is_marketplace=True, llm=llm, product="warming-gel"
    )
    assert reply is not None and reply.source == "article" and reply.article_ids == ("warming-gel-sensation",)
    assert fake.chat_requests == []


async def test_spanish_answer_through_the_llm(fake: FakeOpenAI, llm: LLMClient, sales: KnowledgeBase) -> None:
    text = "¡Hola! Podés financiar la compra en cuotas con tarjeta de crédito; cuantas más cuotas, mayor el recargo."
    fake.enqueue(FakeReply.json({"answer": text, "sources": ["financiacion"]}))
    reply = await answer_question("¿se puede pagar en cuotas?", sales, "es", channel_is_marketplace=False, llm=llm)
    assert reply is not None and reply.source == "llm" and reply.text == text
    assert "Argentina" in fake.chat_requests[-1].message("system")
