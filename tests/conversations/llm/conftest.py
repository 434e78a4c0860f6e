"""The real `openai` client against the fake OpenAI-compatible server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from otklik.conversations.knowledge import KnowledgeBase
from otklik.conversations.llm import LLMClient, LLMSettings, UsageRecord
from otklik.testing.fake_openai import FakeOpenAI

API_KEY = "sk-test-not-a-real-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def usage() -> list[UsageRecord]:
    return []


def _settings(fake: FakeOpenAI, **overrides: object) -> LLMSettings:
    values: dict[str, object] = {
        "base_url": fake.base_url,
        "api_key": API_KEY,
        "model": "fake-model",
        "timeout": 3.0,
        "max_retries": 1,
    }
    values.update(overrides)
    return LLMSettings.model_validate(values)


@pytest.fixture
async def make_llm(fake: FakeOpenAI, usage: list[UsageRecord]) -> AsyncIterator[Callable[..., LLMClient]]:
    """Build clients with other settings (timeout, retries, key...); they are closed after the test."""
    clients: list[LLMClient] = []

    def build(**overrides: object) -> LLMClient:
        client = LLMClient(_settings(fake, **overrides), usage_sink=usage.append)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
async def llm(make_llm: Callable[..., LLMClient]) -> LLMClient:
    return make_llm()


@pytest.fixture(scope="session")
def care() -> KnowledgeBase:
    return KnowledgeBase.from_pack("care-ru")


@pytest.fixture(scope="session")
def sales() -> KnowledgeBase:
    return KnowledgeBase.from_pack("sales-es")


class Rejections:
    """Collects what the LLM uses threw away (an `on_reject` sink)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, list[str], str]] = []

    def __call__(self, purpose: str, reasons: list[str], raw: str) -> None:
        self.items.append((purpose, reasons, raw))

    @property
    def reasons(self) -> list[str]:
        return [r for _, reasons, _ in self.items for r in reasons]


@pytest.fixture
def rejections() -> Rejections:
    return Rejections()
