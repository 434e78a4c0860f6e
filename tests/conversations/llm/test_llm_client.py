"""LLMClient: the official openai client against the fake server, every failure mapped to LLMUnavailable."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest

from otklik.conversations.llm import ChatMessage, LLMClient, LLMSettings, LLMUnavailable, UsageRecord
from otklik.core.errors import Unavailable
from otklik.testing.fake_openai import FakeOpenAI, FakeReply

HELLO: list[ChatMessage] = [{"role": "user", "content": "привет"}]


async def test_completion_returns_text_usage_and_reports_it(
    fake: FakeOpenAI, llm: LLMClient, usage: list[UsageRecord]
) -> None:
    fake.enqueue("Здравствуйте! Чем помочь?")
    result = await llm.complete(HELLO, purpose="greeting")
    assert result.text == "Здравствуйте! Чем помочь?"
    assert result.usage.prompt_tokens == 1 and result.usage.completion_tokens == 3
    assert result.model == "fake-model" and result.finish_reason == "stop"
    assert result.latency_ms >= 0 and result.data is None
    assert len(usage) == 1
    record = usage[0]
    assert (record.purpose, record.model, record.ok, record.error) == ("greeting", "fake-model", True, None)
    assert record.total_tokens == 4


async def test_request_has_the_documented_shape(fake: FakeOpenAI, make_llm: Callable[..., LLMClient]) -> None:
    client = make_llm(max_tokens=123, temperature=0.1, extra_headers={"x-data-logging-enabled": "false"})
    fake.enqueue(FakeReply.json({"ok": True}))
    result = await client.complete(HELLO, json_mode=True)
    assert result.data == {"ok": True}
    request = fake.chat_requests[-1]
    assert request.headers["authorization"] == "Bearer sk-test-not-a-real-key"
    assert request.headers["x-data-logging-enabled"] == "false"
    assert request.body["model"] == "fake-model"
    assert request.body["messages"] == [{"role": "user", "content": "привет"}]
    assert request.body["max_tokens"] == 123 and request.body["temperature"] == 0.1
    assert request.body["response_format"] == {"type": "json_object"}


async def test_json_mode_can_be_turned_off_for_providers_without_it(
    fake: FakeOpenAI, make_llm: Callable[..., LLMClient]
) -> None:
    client = make_llm(json_mode=False)
    fake.enqueue('```json\n{"intent": "defect"}\n```')  # fenced JSON is tolerated
    result = await client.complete(HELLO, json_mode=True)
    assert result.data == {"intent": "defect"}
    assert "response_format" not in fake.chat_requests[-1].body


async def test_timeout_ends_within_the_budget(
    fake: FakeOpenAI, make_llm: Callable[..., LLMClient], usage: list[UsageRecord]
) -> None:
    client = make_llm(timeout=0.5, max_retries=1)
    fake.enqueue(FakeReply.slow(10.0, "too late"), FakeReply.slow(10.0, "too late"))
    started = time.monotonic()
    with pytest.raises(LLMUnavailable) as caught:
        await client.complete(HELLO)
    elapsed = time.monotonic() - started
    assert caught.value.reason == "timeout"
    assert 0.4 <= elapsed < 1.0  # the budget includes retries
    assert usage[-1].ok is False and usage[-1].error == "timeout"
    assert isinstance(caught.value, Unavailable)  # one exception tree


async def test_rate_limit_is_retried_once_then_unavailable(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.enqueue(FakeReply.rate_limited(retry_after=0.2), FakeReply.rate_limited(retry_after=0.2))
    started = time.monotonic()
    with pytest.raises(LLMUnavailable) as caught:
        await llm.complete(HELLO)
    assert caught.value.reason == "rate_limited"
    assert "retry-after=0.2" in caught.value.detail
    assert len(fake.chat_requests) == 2  # max_retries=1, Retry-After honoured
    assert time.monotonic() - started >= 0.2


async def test_rate_limit_then_success(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.enqueue(FakeReply.rate_limited(retry_after=0.1), "готово")
    assert (await llm.complete(HELLO)).text == "готово"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(fake: FakeOpenAI, make_llm: Callable[..., LLMClient], status: int) -> None:
    client = make_llm(max_retries=0)
    fake.enqueue(FakeReply.server_error(status))
    with pytest.raises(LLMUnavailable) as caught:
        await client.complete(HELLO)
    assert caught.value.reason == "server_error"
    assert len(fake.chat_requests) == 1


async def test_malformed_body(fake: FakeOpenAI, llm: LLMClient, usage: list[UsageRecord]) -> None:
    fake.enqueue(FakeReply.malformed())
    with pytest.raises(LLMUnavailable) as caught:
        await llm.complete(HELLO)
    assert caught.value.reason == "malformed_response"
    assert usage[-1].error == "malformed_response"


@pytest.mark.parametrize(
    ("content", "reason"),
    [("Конечно! Вот ответ.", "invalid_json"), ("[1, 2]", "invalid_json"), ("", "empty_response")],
)
async def test_content_that_is_not_the_json_asked_for(
    fake: FakeOpenAI, llm: LLMClient, content: str, reason: str
) -> None:
    fake.enqueue(content)
    with pytest.raises(LLMUnavailable) as caught:
        await llm.complete(HELLO, json_mode=True)
    assert caught.value.reason == reason


@pytest.mark.parametrize(("finish", "reason"), [("length", "truncated"), ("content_filter", "content_filter")])
async def test_unfinished_replies(fake: FakeOpenAI, llm: LLMClient, finish: str, reason: str) -> None:
    fake.enqueue(FakeReply(content="обрезанный отв", finish_reason=finish))
    with pytest.raises(LLMUnavailable) as caught:
        await llm.complete(HELLO)
    assert caught.value.reason == reason


async def test_wrong_key(fake: FakeOpenAI, make_llm: Callable[..., LLMClient]) -> None:
    client = make_llm(api_key="sk-wrong")
    with pytest.raises(LLMUnavailable) as caught:
        await client.complete(HELLO)
    assert caught.value.reason == "auth"


async def test_nothing_listening() -> None:
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", api_key="k", model="m", timeout=2.0, max_retries=0)
    async with LLMClient(settings) as client:
        with pytest.raises(LLMUnavailable) as caught:
            await client.complete(HELLO)
    assert caught.value.reason == "connection"


async def test_a_failing_usage_sink_does_not_break_the_answer(fake: FakeOpenAI) -> None:
    def broken(record: UsageRecord) -> None:
        raise RuntimeError("database is down")

    settings = LLMSettings(base_url=fake.base_url, api_key="sk-test-not-a-real-key", model="fake-model")
    async with LLMClient(settings, usage_sink=broken) as client:
        fake.enqueue("ok")
        assert (await client.complete(HELLO)).text == "ok"


async def test_async_usage_sink_is_awaited(fake: FakeOpenAI) -> None:
    seen: list[UsageRecord] = []

    async def sink(record: UsageRecord) -> None:
        seen.append(record)

    settings = LLMSettings(base_url=fake.base_url, api_key="sk-test-not-a-real-key", model="fake-model")
    async with LLMClient(settings, usage_sink=sink) as client:
        fake.enqueue("ok")
        await client.complete(HELLO, purpose="x")
    assert [r.purpose for r in seen] == ["x"]


async def test_unscripted_request_fails_loudly(fake: FakeOpenAI, make_llm: Callable[..., LLMClient]) -> None:
    with pytest.raises(LLMUnavailable) as caught:
        await make_llm(max_retries=0).complete(HELLO)
    assert caught.value.reason == "server_error"


async def test_fake_serves_models_and_checks_the_key(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test-not-a-real-key") as client:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["fake-model"]
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="nope", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()


async def test_fake_responder_sees_the_request(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.responder = lambda request: "эхо: " + request.message("user")
    assert (await llm.complete(HELLO)).text == "эхо: привет"


def test_settings_hide_the_key() -> None:
    settings = LLMSettings(base_url="http://x/v1", api_key="sk-secret-value", model="m")
    assert "sk-secret-value" not in repr(settings)
    assert settings.timeout == 8.0
