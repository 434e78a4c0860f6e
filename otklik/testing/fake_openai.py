"""A fake OpenAI-compatible chat-completions server on loopback, for tests and demos.

It speaks the documented wire format (`POST /v1/chat/completions`, `GET /v1/models`, Bearer auth,
OpenAI error objects), records every request and answers from a script::

    async with FakeOpenAI(api_key="test-key") as fake:
        fake.enqueue(FakeReply.json({"intent": "defect"}), FakeReply.rate_limited(retry_after=1))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test-key")

Scripted replies are used first (FIFO); when the queue is empty `responder(request)` is asked; without
either the server answers 500 "no scripted reply", so a test that forgot to script a reply fails loudly.
Faults: `delay` (to trip the client's timeout), 429 with Retry-After, 5xx, a body that is not JSON,
content that is not the JSON asked for (just script that text).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["FakeOpenAI", "FakeReply", "RecordedRequest"]


@dataclass
class FakeReply:
    """One scripted answer. `content` goes to `choices[0].message.content` of a 200 response."""

    content: str | None = ""
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: str | None = None  # sent verbatim as an application/json body (for malformed JSON)
    finish_reason: str = "stop"
    error_message: str = ""

    @classmethod
    def text(cls, content: str, *, delay: float = 0.0) -> FakeReply:
        return cls(content=content, delay=delay)

    @classmethod
    def json(cls, payload: Any, *, delay: float = 0.0) -> FakeReply:
        return cls(content=json.dumps(payload, ensure_ascii=False), delay=delay)

    @classmethod
    def slow(cls, delay: float, content: str = "") -> FakeReply:
        return cls(content=content, delay=delay)

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0) -> FakeReply:
        return cls(status=429, headers={"retry-after": f"{retry_after:g}"}, error_message="Rate limit reached")

    @classmethod
    def server_error(cls, status: int = 500) -> FakeReply:
        return cls(status=status, error_message="The server had an error while processing your request")

    @classmethod
    def malformed(cls) -> FakeReply:
        return cls(raw_body='{"id": "chatcmpl-broken", "choices": [{"message": ')


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        body = self.body if isinstance(self.body, dict) else {}
        messages = body.get("messages", [])
        return messages if isinstance(messages, list) else []

    def message(self, role: str) -> str:
        """The content of the first message with `role` ("" when absent)."""
        return next((str(m.get("content") or "") for m in self.messages if m.get("role") == role), "")


class FakeOpenAI:
    """Starlette app served by uvicorn on 127.0.0.1 with a random port; an async context manager."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        models: tuple[str, ...] = ("fake-model",),
        responder: Callable[[RecordedRequest], FakeReply | str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.models = models
        self.responder = responder
        self.requests: list[RecordedRequest] = []
        self._queue: deque[FakeReply] = deque()
        self._closing = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def enqueue(self, *replies: FakeReply | str) -> None:
        """Script the next replies; a plain string is a 200 reply with that content."""
        self._queue.extend(FakeReply.text(r) if isinstance(r, str) else r for r in replies)

    async def __aenter__(self) -> FakeOpenAI:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        config.load()
        # startup()/shutdown() without serve(): no signal handlers in the test process, no 0.1 s polling loop.
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server, self._socket = server, sock
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()  # wakes up replies still sleeping in a `delay`
        if self._server is not None:
            await self._server.shutdown(sockets=[self._socket] if self._socket else None)
            self._server = None

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        recorded = RecordedRequest(request.method, request.url.path, dict(request.headers), body)
        self.requests.append(recorded)
        return recorded

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {self.api_key}"

    async def _models(self, request: Request) -> Response:
        await self._record(request)
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "otklik-fake"} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        recorded = await self._record(request)
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
        body = recorded.body if isinstance(recorded.body, dict) else None
        if body is None or not isinstance(body.get("messages"), list) or not body.get("model"):
            return _error(400, "'model' and 'messages' are required", "invalid_request_error", None)
        reply = self._next(recorded)
        if reply.delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=reply.delay)
        if reply.raw_body is not None:
            return Response(reply.raw_body, status_code=reply.status, media_type="application/json")
        if reply.status != 200:
            kind = "requests" if reply.status == 429 else "server_error"
            return _error(reply.status, reply.error_message or "error", kind, None, reply.headers)
        return JSONResponse(_completion(body, reply), headers=reply.headers)

    def _next(self, request: RecordedRequest) -> FakeReply:
        if self._queue:
            return self._queue.popleft()
        if self.responder is not None:
            reply = self.responder(request)
            return FakeReply.text(reply) if isinstance(reply, str) else reply
        return FakeReply(status=500, error_message="fake server: no scripted reply for this request")


def _completion(body: dict[str, Any], reply: FakeReply) -> dict[str, Any]:
    prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"] if isinstance(m, dict))
    completion_tokens = len((reply.content or "").split())
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content, "refusal": None},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _error(
    status: int, message: str, kind: str, code: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(payload, status_code=status, headers=headers)
