"""A thin wrapper around the official `openai.AsyncOpenAI` client for any OpenAI-compatible provider
(OpenAI, YandexGPT, GigaChat via gpt2giga, Ollama, vLLM).

Every failure — timeout, connection error, 429, 5xx, an unusable or malformed response — becomes one
`LLMUnavailable` with a short machine-readable `reason`; callers fall back to the offline path. Each
attempt (successful or not) is reported to the injected `usage_sink`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast

import openai
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from otklik.core.errors import Unavailable

__all__ = [
    "ChatMessage",
    "LLMClient",
    "LLMResult",
    "LLMSettings",
    "LLMUnavailable",
    "Usage",
    "UsageRecord",
    "UsageSink",
]

log = logging.getLogger(__name__)

_FENCE = re.compile(r"\A```(?:json)?\s*(.*?)\s*```\Z", re.DOTALL | re.IGNORECASE)


class LLMSettings(BaseModel):
    """How to reach an OpenAI-compatible chat-completions endpoint. The LLM is optional: without
    these settings the bot works offline."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="Up to /v1, e.g. http://localhost:11434/v1 (Ollama).")
    api_key: SecretStr = Field(description="Sent as 'Authorization: Bearer'; local servers ignore it.")
    model: str = Field(description="Model name, e.g. gpt-4o-mini or gpt://<folder>/yandexgpt/latest.")
    timeout: float = Field(8.0, gt=0.0, le=120.0, description="Total time budget of one call, retries included.")
    max_tokens: int = Field(400, ge=16, le=8192, description="Upper bound of the reply length in tokens.")
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_retries: int = Field(1, ge=0, le=3, description="Retries of the openai client on 429/5xx/connection.")
    json_mode: bool = Field(True, description="Send response_format json_object; turn off for providers without it.")
    extra_headers: dict[str, str] = Field(
        default_factory=dict, description="E.g. {'x-data-logging-enabled': 'false'} for Yandex AI Studio."
    )


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class LLMResult:
    """A completed call. `data` holds the parsed JSON object when json_mode was asked for."""

    text: str
    usage: Usage
    latency_ms: int
    model: str = ""
    finish_reason: str | None = None
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One attempt, for the usage log: what it was for, what it cost, how it ended."""

    purpose: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    ok: bool
    error: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


UsageSink = Callable[[UsageRecord], Awaitable[None] | None]


class LLMUnavailable(Unavailable):
    """The LLM gave no usable answer. `reason`: timeout, connection, rate_limited, server_error, auth,
    http_<status>, malformed_response, empty_response, invalid_json, truncated, content_filter."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__("The language model is unavailable.", details={"reason": reason, "detail": detail})
        self.reason, self.detail = reason, detail

    def __str__(self) -> str:
        return f"LLM unavailable: {self.reason}" + (f" ({self.detail})" if self.detail else "")


class LLMClient:
    """`complete()` one chat; use as an async context manager or call `aclose()`."""

    def __init__(
        self,
        settings: LLMSettings,
        *,
        usage_sink: UsageSink | None = None,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self.settings = settings
        self._usage_sink = usage_sink
        self._client = client or openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value(),
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            default_headers=settings.extra_headers or None,
        )

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(
        self, messages: Sequence[ChatMessage], *, json_mode: bool = False, purpose: str = "chat"
    ) -> LLMResult:
        """One chat completion within `settings.timeout` (retries included) or `LLMUnavailable`.

        With `json_mode` the reply must be one JSON object (code fences are tolerated); it is parsed
        into `LLMResult.data`.
        """
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.timeout):
                response = await self._client.chat.completions.create(**self._request(messages, json_mode))
            result = self._result(response, started, json_mode)
        except LLMUnavailable as exc:
            await self._report(purpose, started, None, exc.reason)
            raise
        except Exception as exc:
            error = _map_error(exc)
            await self._report(purpose, started, None, error.reason)
            unexpected = not isinstance(exc, openai.OpenAIError | TimeoutError)
            log.log(logging.WARNING if unexpected else logging.INFO, "llm %s failed: %s", purpose, error)
            raise error from exc
        await self._report(purpose, started, result.usage, None)
        return result

    def _request(self, messages: Sequence[ChatMessage], json_mode: bool) -> dict[str, Any]:
        s = self.settings
        request: dict[str, Any] = {
            "model": s.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
        }
        if json_mode and s.json_mode:
            request["response_format"] = {"type": "json_object"}
        return request

    def _result(self, response: Any, started: float, json_mode: bool) -> LLMResult:
        latency_ms = int((time.monotonic() - started) * 1000)
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            raise LLMUnavailable("malformed_response", f"unexpected response type {type(response).__name__}")
        if not choices:
            raise LLMUnavailable("empty_response", "no choices")
        choice = choices[0]
        finish = getattr(choice, "finish_reason", None)
        content = getattr(getattr(choice, "message", None), "content", None)
        if finish == "content_filter":
            raise LLMUnavailable("content_filter")
        if not isinstance(content, str) or not content.strip():
            raise LLMUnavailable("empty_response", f"finish_reason={finish}")
        if finish == "length":
            raise LLMUnavailable("truncated", "the reply hit max_tokens")
        raw_usage = getattr(response, "usage", None)
        usage = Usage(
            int(getattr(raw_usage, "prompt_tokens", 0) or 0), int(getattr(raw_usage, "completion_tokens", 0) or 0)
        )
        data = _parse_json_object(content) if json_mode else None
        model = str(getattr(response, "model", "") or self.settings.model)
        return LLMResult(content.strip(), usage, latency_ms, model, finish, data)

    async def _report(self, purpose: str, started: float, usage: Usage | None, error: str | None) -> None:
        if self._usage_sink is None:
            return
        usage = usage or Usage()
        record = UsageRecord(
            purpose=purpose,
            model=self.settings.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_ms=int((time.monotonic() - started) * 1000),
            ok=error is None,
            error=error,
        )
        try:
            outcome = self._usage_sink(record)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            # Usage logging must never break answering the buyer.
            log.exception("llm usage sink failed")


def _parse_json_object(content: str) -> dict[str, Any]:
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LLMUnavailable("invalid_json", f"content is not JSON: {text[:80]!r}") from exc
    if not isinstance(data, dict):
        raise LLMUnavailable("invalid_json", f"expected a JSON object, got {type(data).__name__}")
    return cast(dict[str, Any], data)


def _map_error(exc: Exception) -> LLMUnavailable:
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return LLMUnavailable("timeout")
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable("connection", str(exc))
    if isinstance(exc, openai.RateLimitError):
        return LLMUnavailable("rate_limited", _header(exc, "retry-after"))
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMUnavailable("auth", f"HTTP {exc.status_code}")
    if isinstance(exc, openai.APIStatusError):
        reason = "server_error" if exc.status_code >= 500 else f"http_{exc.status_code}"
        return LLMUnavailable(reason, f"HTTP {exc.status_code}")
    # APIResponseValidationError, a body that is not JSON, a shape the SDK could not read...
    return LLMUnavailable("malformed_response", f"{type(exc).__name__}: {exc}")


def _header(exc: openai.APIStatusError, name: str) -> str:
    headers: Mapping[str, str] = getattr(exc.response, "headers", {}) or {}
    value = headers.get(name)
    return f"{name}={value}" if value else ""
