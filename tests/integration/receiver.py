"""A loopback receiver for the API (webhook) channel that behaves as the documented contract says:
a repeated Idempotency-Key is the same message (accepted once, answered 200 again)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from otklik.channels.api.adapter import verify


@dataclass
class Receiver:
    secret: str
    delay: float = 0.0
    accepted: dict[str, dict[str, object]] = field(default_factory=dict)  # key -> body, first delivery
    order: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.monotonic() of every valid post
    posts: int = 0
    bad_signatures: int = 0
    port: int = 0

    def app(self) -> Starlette:
        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            if not verify(self.secret, body, request.headers.get("x-otklik-signature")):
                self.bad_signatures += 1
                return JSONResponse({"error": "bad signature"}, status_code=401)
            self.posts += 1
            self.times.append(time.monotonic())
            if self.delay:
                await asyncio.sleep(self.delay)
            key = request.headers["idempotency-key"]
            if key not in self.accepted:
                self.accepted[key] = json.loads(body)
                self.order.append(key)
            return JSONResponse({"id": key})

        return Starlette(routes=[Route("/hook", receive, methods=["POST"])])

    def serve(self) -> Receiver:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
