"""A fake seller's catalog API on loopback: the JSON endpoint a scheduled catalog sync reads, for tests.

    async with FakeCatalogServer(products, per_page=2, token="s3cret") as server:
        server.url                       # /products: {"items": [...], "next": "/products?cursor=2"} (cursor paging)
        server.page_url                  # /paged: ?page=N&per_page=M, a bare JSON array per page
        server.fail(429, retry_after=0)  # the next GET answers 429 (then as scripted, then normally)
        server.fail(500, times=5)        # five 500s: more than the client retries
        server.delay(5)                  # the next GET answers after 5 s (a timeout for a short client)
        server.garbage()                 # the next GET answers 200 with a body that is not JSON
        server.huge(9 * 2**20)           # the next GET answers 200 with a 9 MB JSON body
        server.drip(0.2)                 # the next GET sends its body one byte each 0.2 s
        server.next_to("http://elsewhere.example/x")  # the next page's `next` leaves the origin

`products` is a list of dicts (change it between runs: the seller's system changes). Every request is
recorded (`requests`: path with query and the Authorization header); a wrong or missing bearer token,
when one is set, is answered 401.
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
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from otklik.testing.loopback import serve_on_loopback


@dataclass
class _Step:
    status: int = 200
    delay: float = 0.0
    retry_after: float | None = None
    body: bytes | None = None
    next_url: str | None = None
    drip: float = 0.0  # seconds between single bytes of the body (a server that never quite finishes)


@dataclass
class FakeCatalogServer:
    products: list[Any]
    per_page: int = 100
    token: str | None = None
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._script: deque[_Step] = deque()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    # --- scripting -----------------------------------------------------------------------------------
    def fail(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        self._script.extend(_Step(status=status, retry_after=retry_after) for _ in range(times))

    def delay(self, seconds: float) -> None:
        self._script.append(_Step(delay=seconds))

    def garbage(self, body: bytes = b"<html>502 Bad Gateway</html>") -> None:
        self._script.append(_Step(body=body))

    def huge(self, size: int) -> None:
        filler = json.dumps({"items": [], "pad": "x" * size}).encode()
        self._script.append(_Step(body=filler))

    def drip(self, every: float) -> None:
        """The next GET answers 200 and sends its body one byte each `every` seconds."""
        self._script.append(_Step(drip=every))

    def next_to(self, url: str) -> None:
        self._script.append(_Step(next_url=url))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/products"

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/paged"

    # --- the app ---------------------------------------------------------------------------------------
    def app(self) -> Starlette:
        async def answer(request: Request, body: dict[str, Any] | list[Any]) -> Response:
            auth = request.headers.get("authorization")
            self.requests.append((str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
                                  auth))  # fmt: skip
            if self.token is not None and auth != f"Bearer {self.token}":
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            step = self._script.popleft() if self._script else _Step()
            if step.delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), step.delay)
            if step.status != 200:
                extra = {"Retry-After": f"{step.retry_after:g}"} if step.retry_after is not None else {}
                return JSONResponse({"error": f"scripted {step.status}"}, status_code=step.status, headers=extra)
            if step.drip:
                payload = json.dumps(body).encode()

                async def slowly() -> Any:
                    for n in range(len(payload)):
                        if self._closing.is_set():
                            return
                        yield payload[n : n + 1]
                        await asyncio.sleep(step.drip)

                return StreamingResponse(slowly(), media_type="application/json")
            if step.body is not None:
                return Response(step.body, media_type="application/json")
            if step.next_url is not None and isinstance(body, dict):
                body = {**body, "next": step.next_url}
            return JSONResponse(body)

        async def cursor(request: Request) -> Response:
            start = int(request.query_params.get("cursor", "0"))
            page = self.products[start : start + self.per_page]
            more = start + self.per_page < len(self.products)
            nxt = f"/products?cursor={start + self.per_page}" if more else None
            return await answer(request, {"items": page, "next": nxt})

        async def paged(request: Request) -> Response:
            number = int(request.query_params.get("page", "1"))
            size = int(request.query_params.get("per_page", str(self.per_page)))
            page = self.products[(number - 1) * size : number * size]
            return await answer(request, page)

        return Starlette(routes=[Route("/products", cursor), Route("/paged", paged)])

    # --- life cycle --------------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeCatalogServer:
        served = await serve_on_loopback(self.app(), self.port)
        self._server, self._task, self._sock, self.port = served.server, served.task, served.sock, served.port
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is None:
            return
        self._closing.set()
        self._server.should_exit = True
        assert self._task is not None
        await self._task
        self._sock.close()
        self._server = None
