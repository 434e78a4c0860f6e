"""`GET /metrics` for Prometheus, and the HTTP latency of every request by route template.

Who may read it (docs/prometheus.md): a client on the loopback (127.0.0.0/8, ::1) always; an address in
`metrics_allow`; anyone with `Authorization: Bearer <metrics_token>` (compared in constant time). The client
address is `platform.webkit.client_ip.client_address` (X-Forwarded-For only from `trusted_proxies`), so behind
a reverse proxy on the same machine set `trusted_proxies`, or every request looks local.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otklik.clock import utcnow
from otklik.platform.prometheus import HTTP_SECONDS, database_families, exposition
from otklik.platform.webkit.client_ip import client_address

router = APIRouter()


@lru_cache(maxsize=16)
def _networks(allowed: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(a, strict=False) for a in allowed)


def may_read(request: Request) -> bool:
    settings = request.app.state.otklik.settings
    token = settings.metrics_token
    header = request.headers.get("authorization", "")
    kind, _, given = header.partition(" ")
    if token and kind.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    if address.is_loopback or (address.version == 6 and address.ipv4_mapped and address.ipv4_mapped.is_loopback):
        return True
    return any(address in net for net in _networks(tuple(settings.metrics_allow)))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    if not may_read(request):
        return PlainTextResponse(
            "metrics: allowed from the loopback, the metrics_allow addresses or with the metrics token\n",
            status_code=403,
        )
    families = await database_families(request.app.state.otklik.db, utcnow())
    return Response(exposition(families), media_type=CONTENT_TYPE_LATEST)


class HttpTiming:
    """Pure ASGI middleware: `otklik_http_request_seconds{method, route, status}` with the route's template
    (`/api/v1/contacts/{contact_id}`), never the raw path (ids would make a series each); "unmatched" for a
    404 outside every route. Long-polls are counted like any request; /metrics itself is not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "") or "unmatched")
            HTTP_SECONDS.labels(scope.get("method", "GET"), template, f"{status[0] // 100}xx").observe(
                time.perf_counter() - started
            )
