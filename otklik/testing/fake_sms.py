"""A fake SMS gateway on loopback: SMS.ru's API (`/sms/send`, `/sms/status`, the documented JSON shapes) and
a generic JSON/form endpoint (`/gateway`), for tests.

    async with FakeSmsServer(api_id="test-api-id") as fake:
        settings.sms_ru_url = fake.base_url
        fake.fail(503, times=2)             # the next two calls answer 503
        fake.fail(429, retry_after=3)       # then one 429 with Retry-After: 3
        fake.delay(30)                      # then one answer after 30 s (a timeout for the sender)
        fake.accept_then_fail(502)          # then one message is taken (it will reach the phone) but answered 502
        fake.smsru_error(220)               # then one SMS.ru-level refusal ({"status": "ERROR", "status_code": 220})
        fake.set_status(sms_id, 103)        # what /sms/status says about a message (default 102: on its way)

`sent` holds every message taken (phone digits, text, sender, sms id), duplicates included: a test asserts
how many reached each phone. Numbers in `unroutable` are refused per message (status_code 207).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otklik.testing.loopback import Served, serve_on_loopback


@dataclass
class Sms:
    to: str
    text: str
    sender: str
    sms_id: str
    via: str  # "smsru" or "gateway"


@dataclass
class _Step:
    status: int = 200
    delay: float = 0.0
    retry_after: float | None = None
    take_first: bool = False
    smsru_code: int | None = None


@dataclass
class FakeSmsServer:
    api_id: str = "test-api-id"
    gateway_token: str = "Bearer gw-secret"  # noqa: S105 - a fake's, reads as fake
    unroutable: set[str] = field(default_factory=set)
    sent: list[Sms] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        self._script: deque[_Step] = deque()
        self._ids = itertools.count(1)
        self._served: Served | None = None
        self._closing = asyncio.Event()

    # --- scripting ---------------------------------------------------------------------------------
    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        self._script.extend(_Step(status=status, retry_after=retry_after) for _ in range(times))

    def delay(self, seconds: float, *, times: int = 1) -> None:
        self._script.extend(_Step(delay=seconds) for _ in range(times))

    def accept_then_fail(self, status: int = 502, *, times: int = 1) -> None:
        self._script.extend(_Step(status=status, take_first=True) for _ in range(times))

    def smsru_error(self, code: int, *, times: int = 1) -> None:
        self._script.extend(_Step(smsru_code=code) for _ in range(times))

    def set_status(self, sms_id: str, code: int) -> None:
        self.statuses[sms_id] = code

    def to(self, digits: str) -> list[Sms]:
        return [s for s in self.sent if s.to == digits.lstrip("+")]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"{self.base_url}/gateway"

    # --- the app -----------------------------------------------------------------------------------
    def _take(self, to: str, text: str, sender: str, via: str) -> Sms:
        sms = Sms(to, text, sender, f"000000-{next(self._ids):08d}", via)
        self.sent.append(sms)
        self.statuses.setdefault(sms.sms_id, 102)
        return sms

    async def _scripted(self) -> tuple[_Step, Response | None]:
        self.requests += 1
        step = self._script.popleft() if self._script else _Step()
        if step.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), step.delay)
        if step.status != 200 and not step.take_first:
            headers = {"Retry-After": f"{step.retry_after:g}"} if step.retry_after is not None else {}
            return step, JSONResponse({"error": f"scripted {step.status}"}, step.status, headers=headers)
        return step, None

    def app(self) -> Starlette:
        async def send(request: Request) -> Response:
            step, early = await self._scripted()
            if early is not None:
                return early
            form = await request.form()
            if form.get("api_id") != self.api_id:
                return JSONResponse({"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"})
            if step.smsru_code is not None:
                text = "Сервис временно недоступен" if step.smsru_code == 220 else "Ошибка"
                return JSONResponse({"status": "ERROR", "status_code": step.smsru_code, "status_text": text})
            to, msg = str(form.get("to") or ""), str(form.get("msg") or "")
            if not msg:
                return JSONResponse({"status": "ERROR", "status_code": 203, "status_text": "Нет текста сообщения"})
            answers: dict[str, Any] = {}
            for number in [n for n in to.split(",") if n]:
                if not number.isdigit() or len(number) < 10:
                    answers[number] = {"status": "ERROR", "status_code": 202, "status_text": "Неправильно указан номер"}
                elif number in self.unroutable:
                    answers[number] = {"status": "ERROR", "status_code": 207, "status_text": "Нет маршрута"}
                else:
                    sms = self._take(number, msg, str(form.get("from") or ""), "smsru")
                    answers[number] = {"status": "OK", "status_code": 100, "sms_id": sms.sms_id}
            if step.take_first:
                return JSONResponse({"error": f"scripted {step.status}"}, step.status)
            return JSONResponse({"status": "OK", "status_code": 100, "sms": answers, "balance": 4122.56})

        async def status(request: Request) -> Response:
            _step, early = await self._scripted()
            if early is not None:
                return early
            form = await request.form()
            if form.get("api_id") != self.api_id:
                return JSONResponse({"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"})
            sms_id = str(form.get("sms_id") or "")
            code = self.statuses.get(sms_id, -1)
            one = {"status": "OK" if code != -1 else "ERROR", "status_code": code}
            return JSONResponse({"status": "OK", "status_code": 100, "sms": {sms_id: one}})

        async def gateway(request: Request) -> Response:
            step, early = await self._scripted()
            if early is not None:
                return early
            if request.headers.get("authorization") != self.gateway_token:
                return JSONResponse({"status": "error", "message": "unauthorized"}, 401)
            if request.headers.get("content-type", "").startswith("application/json"):
                data = await request.json()
            else:
                data = dict(await request.form())
            if not isinstance(data, dict) or not data.get("to") or not data.get("message"):
                return JSONResponse({"status": "error", "message": "to and message required"}, 400)
            to = str(data["to"]).lstrip("+")
            if to in self.unroutable:
                return JSONResponse({"status": "rejected", "message": "no route"})
            sms = self._take(to, str(data["message"]), str(data.get("from") or ""), "gateway")
            if step.take_first:
                return JSONResponse({"error": f"scripted {step.status}"}, step.status)
            return JSONResponse({"status": "ok", "messages": [{"id": sms.sms_id}]})

        return Starlette(routes=[
            Route("/sms/send", send, methods=["POST"]),
            Route("/sms/status", status, methods=["POST"]),
            Route("/gateway", gateway, methods=["POST"]),
        ])  # fmt: skip

    # --- life cycle --------------------------------------------------------------------------------
    async def up(self) -> None:
        if self._served is None:
            self._closing.clear()
            self._served = await serve_on_loopback(self.app(), self.port)
            self.port = self._served.port

    async def down(self) -> None:
        if self._served is None:
            return
        self._closing.set()
        self._served.server.should_exit = True
        await self._served.task
        self._served.sock.close()
        self._served = None

    async def __aenter__(self) -> FakeSmsServer:
        await self.up()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.down()
