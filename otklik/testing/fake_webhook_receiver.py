"""A fake receiver of otklik's signed event webhooks on loopback: what an ERP or n8n would be, for tests.

    async with FakeWebhookReceiver(secret) as receiver:
        await add_endpoint(db, vault, receiver.url, "order.*", secret=secret, actor="test")
        receiver.fail(500, times=2)          # the next two POSTs answer 500
        receiver.fail(429, retry_after=1)    # then one 429 with Retry-After: 1
        receiver.delay(30)                   # then one answer after 30 s (a timeout for the sender)
        receiver.accept_then_fail(502)       # then one POST is processed but answered 502: a duplicate follows
        await receiver.down()                # refuse connections (the port is closed) ...
        await receiver.up()                  # ... and listen again on the same port
        await receiver.wait_for(3)           # three distinct events accepted

Every POST is checked with `otklik.platform.webhooks.verify_signature` (the helper the docs show): a bad or
missing signature is answered 401 and counted. Accepted events are deduplicated by `X-Otklik-Event-Id`
as a receiver must: `accepted` keeps the first copy, `duplicates` counts the repeats (answered 200).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otklik.platform.webhooks.signing import EVENT_ID, SignatureError, verify_signature
from otklik.testing.loopback import serve_on_loopback


@dataclass
class Received:
    """One POST as it arrived, and what the receiver answered."""

    headers: dict[str, str]
    body: bytes
    event_id: str | None
    signature_ok: bool
    answered: int | None = None  # None: the sender gave up waiting (a timeout)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Behaviour:
    status: int = 200
    delay: float = 0.0
    retry_after: float | None = None
    record_first: bool = False  # process the event, then answer `status` (a duplicate will follow)


@dataclass
class FakeWebhookReceiver:
    secret: str
    path: str = "/hooks/otklik"
    tolerance: float = 300.0
    requests: list[Received] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> envelope, first copy
    order: list[str] = field(default_factory=list)  # event ids in the order they were first accepted
    duplicates: int = 0
    bad_signatures: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._script: deque[_Behaviour] = deque()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()

    # --- scripting -------------------------------------------------------------------------------
    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        self._script.extend(_Behaviour(status=status, retry_after=retry_after) for _ in range(times))

    def delay(self, seconds: float, *, times: int = 1, status: int = 200) -> None:
        """Answer after `seconds` (longer than the sender's timeout: a timeout; shorter: a slow answer)."""
        self._script.extend(_Behaviour(status=status, delay=seconds) for _ in range(times))

    def accept_then_fail(self, status: int = 500, *, times: int = 1) -> None:
        """Process the event (it counts as accepted), then answer an error: the sender will send it again."""
        self._script.extend(_Behaviour(status=status, record_first=True) for _ in range(times))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    # --- the app ------------------------------------------------------------------------------------
    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            record = Received(headers, body, headers.get(EVENT_ID.lower()), False)
            self.requests.append(record)
            try:
                verify_signature(self.secret, headers, body, self.tolerance)
            except SignatureError as exc:
                self.bad_signatures += 1
                record.answered = 401
                self._changed.set()
                return JSONResponse({"error": str(exc)}, status_code=401)
            record.signature_ok = True
            step = self._script.popleft() if self._script else _Behaviour()
            if step.record_first or 200 <= step.status < 300:
                self._accept(record)
            if step.delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), step.delay)
            record.answered = step.status
            self._changed.set()
            if 200 <= step.status < 300:
                return JSONResponse({"ok": True, "id": record.event_id}, status_code=step.status)
            extra = {"Retry-After": f"{step.retry_after:g}"} if step.retry_after is not None else {}
            return JSONResponse({"error": f"scripted {step.status}"}, status_code=step.status, headers=extra)

        return Starlette(routes=[Route(self.path, receive, methods=["POST"])])

    def _accept(self, record: Received) -> None:
        event_id = record.event_id or ""
        if event_id in self.accepted:
            self.duplicates += 1
            return
        self.accepted[event_id] = record.json()
        self.order.append(event_id)

    # --- life cycle -------------------------------------------------------------------------------
    async def up(self) -> None:
        """Listen (on the same port as before, once there was one)."""
        if self._server is not None:
            return
        self._closing.clear()
        served = await serve_on_loopback(self.app(), self.port)
        self._server, self._task, self._sock, self.port = served.server, served.task, served.sock, served.port

    async def down(self) -> None:
        """Stop listening: connections are refused until `up`."""
        if self._server is None:
            return
        self._closing.set()
        self._server.should_exit = True
        assert self._task is not None
        await self._task
        self._sock.close()
        self._server = None

    async def __aenter__(self) -> FakeWebhookReceiver:
        await self.up()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.down()

    async def wait_for(self, accepted: int, timeout: float = 20.0) -> None:
        """Until `accepted` distinct events were accepted; TimeoutError otherwise."""

        async def until() -> None:
            while len(self.accepted) < accepted:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)
