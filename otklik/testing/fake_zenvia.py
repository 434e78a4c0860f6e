"""A fake Zenvia API v2 on loopback, for tests, benches and offline demos.

    async with FakeZenviaServer() as fake:        # fake.base_url = http://127.0.0.1:<port>
        settings = Settings(zenvia_api_url=fake.base_url, ...)
        fake.add_template("pedido_listo", "pt_BR", body="Olá {{name}}, pedido {{order}} pronto")
        fake.fail(429, times=2)                   # the next two sends answer 429 with Retry-After
        event = fake.text_event("5511999990001", "oi")
        await fake.deliver(client, event)         # to the subscribed webhook URL, with its headers

It answers with Zenvia's documented shapes (docs/channels/zenvia.md; reference §5):

- `POST /v2/channels/whatsapp/messages` (`X-API-TOKEN`): `{"from", "to", "contents": [...]}` with contents
  `text` (≤ 4096), `file` (`fileUrl` http(s)), `template` (`templateId` of a known APPROVED template, `fields`
  naming exactly its fields) → `{"id", "from", "to", "direction": "OUT", "channel": "whatsapp", "contents"}`.
  A free-form content to a contact whose last message is older than 24 h of the fake's clock is refused
  (400, as Zenvia passes Meta's 131047 on).
- `GET/POST /v2/subscriptions`, `DELETE /v2/subscriptions/{id}`, `GET /v2/templates`.
- Errors as `{"code", "message", "details"?}`; a wrong token is 401 `{"code": "AUTHENTICATION_ERROR"}`.
  `fail(status)` injects 429 (with Retry-After) / 5xx / 4xx, `hang(seconds)` delays answers (timeouts).
- `GET /files/{id}`: files customers "sent" (`file_event`), served without auth like Zenvia's file URLs.

Events (`text_event`, `file_event`, `button_event`, `location_event`, `status_event`) are built here and
posted with `deliver` to every ACTIVE subscription of their type, with the headers it registered
(redeliver or reorder by calling again).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otklik.testing.loopback import serve_on_loopback

DEFAULT_TOKEN = "FAKEzenviaTokenNotReal0000"  # noqa: S105 - the fake's own, obviously fake
DEFAULT_SENDER = "fake-sender-5511"
WINDOW = 24 * 3600.0
_FIELD = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


@dataclass(slots=True)
class Fault:
    status: int
    times: int
    code: str = ""
    after: int = 0  # good sends before the fault starts
    retry_after: str = "1"


@dataclass(slots=True)
class Template:
    id: str
    name: str
    locale: str
    body: str
    status: str = "APPROVED"
    category: str = "UTILITY"

    @property
    def fields(self) -> list[str]:
        seen: list[str] = []
        for name in _FIELD.findall(self.body):
            if name not in seen:
                seen.append(name)
        return seen


@dataclass(slots=True)
class Sent:
    id: str
    to: str
    content: dict[str, Any]
    at: float


@dataclass(slots=True)
class FakeState:
    sent: list[Sent] = field(default_factory=list)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    last_inbound: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class FakeZenviaServer:
    def __init__(self, *, token: str = DEFAULT_TOKEN, sender: str = DEFAULT_SENDER, port: int = 0) -> None:
        self.token = token
        self.sender = sender
        self.port = port
        self.state = FakeState()
        self.offset = 0.0
        self.delay = 0.0
        self._ids = itertools.count(1)
        self._served: Any = None
        self.base_url = ""

    async def __aenter__(self) -> FakeZenviaServer:
        self._served = await serve_on_loopback(self.app(), self.port)
        self.port = self._served.port
        self.base_url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._served is not None:
            self._served.server.should_exit = True
            with contextlib.suppress(Exception):
                await self._served.task

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v2/channels/whatsapp/messages", self._messages, methods=["POST"]),
                Route("/v2/subscriptions", self._subscriptions, methods=["GET", "POST"]),
                Route("/v2/subscriptions/{sid}", self._subscription, methods=["GET", "DELETE"]),
                Route("/v2/templates", self._templates, methods=["GET"]),
                Route("/files/{fid}", self._file, methods=["GET"]),
            ]
        )

    # --- knobs -----------------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def fail(self, status: int, *, times: int = 1, code: str = "", after: int = 0, retry_after: str = "1") -> Fault:
        """The next `times` sends (after `after` good ones) answer `status` (429 with `Retry-After`)."""
        fault = Fault(status, times, code, after, retry_after)
        self.state.faults.append(fault)
        return fault

    def hang(self, seconds: float) -> None:
        """Answer every API call `seconds` late (a client timeout shorter than that sees a timeout)."""
        self.delay = seconds

    def add_template(self, name: str, locale: str, body: str, *, status: str = "APPROVED") -> Template:
        template = Template(str(uuid.uuid4()), name, locale, body, status)
        self.state.templates[template.id] = template
        return template

    def sent_to(self, contact: str) -> list[dict[str, Any]]:
        return [s.content for s in self.state.sent if s.to == contact]

    def sent_ids(self, contact: str) -> list[str]:
        return [s.id for s in self.state.sent if s.to == contact]

    # --- events ----------------------------------------------------------------------------------------

    def message_event(self, contact: str, contents: list[dict[str, Any]], *, name: str = "Cliente",
                      ts: float | None = None) -> dict[str, Any]:  # fmt: skip
        at = self.now() if ts is None else ts
        self.state.last_inbound[contact] = max(self.state.last_inbound.get(contact, 0.0), at)
        sub = next((s for s in self.state.subscriptions.values() if s["eventType"] == "MESSAGE"), {})
        return {
            "id": str(uuid.uuid4()),
            "timestamp": _iso(at),
            "type": "MESSAGE",
            "subscriptionId": sub.get("id", ""),
            "channel": "whatsapp",
            "direction": "IN",
            "message": {
                "id": f"zin-{next(self._ids)}",
                "from": contact,
                "to": self.sender,
                "direction": "IN",
                "channel": "whatsapp",
                "contents": contents,
                "visitor": {"name": name},
            },
        }

    def text_event(self, contact: str, text: str, **kw: Any) -> dict[str, Any]:
        return self.message_event(contact, [{"type": "text", "text": text}], **kw)

    def button_event(self, contact: str, payload: str, text: str, **kw: Any) -> dict[str, Any]:
        return self.message_event(contact, [{"type": "text", "text": text, "payload": payload}], **kw)

    def location_event(self, contact: str, lat: float, lon: float, **kw: Any) -> dict[str, Any]:
        content = {"type": "location", "latitude": lat, "longitude": lon, "name": "Loja", "address": "Rua 1"}
        return self.message_event(contact, [content], **kw)

    def file_event(self, contact: str, data: bytes, mime: str, *, caption: str | None = None,
                   filename: str | None = None, **kw: Any) -> dict[str, Any]:  # fmt: skip
        fid = f"f{next(self._ids)}"
        self.state.files[fid] = (data, mime)
        content: dict[str, Any] = {"type": "file", "fileUrl": f"{self.base_url}/files/{fid}", "fileMimeType": mime}
        if caption:
            content["fileCaption"] = caption
        if filename:
            content["fileName"] = filename
        return self.message_event(contact, [content], **kw)

    def status_event(self, message_id: str, code: str, *, ts: float | None = None, description: str = "",
                     causes: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
        sub = next((s for s in self.state.subscriptions.values() if s["eventType"] == "MESSAGE_STATUS"), {})
        status: dict[str, Any] = {"timestamp": _iso(self.now() if ts is None else ts), "code": code,
                                  "description": description or code.title()}  # fmt: skip
        if causes:
            status["causes"] = causes
        return {
            "id": str(uuid.uuid4()),
            "timestamp": _iso(self.now()),
            "type": "MESSAGE_STATUS",
            "subscriptionId": sub.get("id", ""),
            "channel": "whatsapp",
            "messageId": message_id,
            "contentIndex": 0,
            "messageStatus": status,
        }

    def subscription_for(self, event: dict[str, Any]) -> dict[str, Any]:
        for sub in self.state.subscriptions.values():
            if sub["eventType"] == event.get("type") and sub["status"] == "ACTIVE":
                return sub
        raise LookupError(f"no ACTIVE {event.get('type')} subscription")

    async def deliver(self, client: httpx.AsyncClient, event: dict[str, Any] | bytes, *,
                      headers: dict[str, str] | None = None, url: str | None = None) -> httpx.Response:  # fmt: skip
        """POST the event to its subscription's webhook URL with the registered headers (or the given ones).
        `client` may be bound to the app (ASGI transport): the URL's path is what matters then."""
        if isinstance(event, bytes):
            sub = next(iter(self.state.subscriptions.values()))
            body = event
        else:
            sub = self.subscription_for(event)
            body = httpx.Request("POST", "http://x", json=event).content
        webhook = sub["webhook"]
        target = url or httpx.URL(webhook["url"]).raw_path.decode()
        sent = {"Content-Type": "application/json", **(webhook.get("headers") or {})} if headers is None else headers
        return await client.post(target, content=body, headers=sent)

    # --- the API ---------------------------------------------------------------------------------------

    async def _guarded(self, request: Request) -> JSONResponse | None:
        self.state.calls.append((request.method, request.url.path))
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.headers.get("x-api-token") != self.token:
            return JSONResponse({"code": "AUTHENTICATION_ERROR", "message": "Invalid API token"}, status_code=401)
        return None

    async def _messages(self, request: Request) -> Response:
        refused = await self._guarded(request)
        if refused is not None:
            return refused
        for fault in self.state.faults:
            if fault.times > 0 and fault.after > 0:
                fault.after -= 1
                continue
            if fault.times > 0:
                fault.times -= 1
                self.state.refused.append(fault.status)
                headers = {"Retry-After": fault.retry_after} if fault.status == 429 else {}
                code = fault.code or ("TOO_MANY_REQUESTS" if fault.status == 429 else "INTERNAL_ERROR")
                return JSONResponse({"code": code, "message": f"injected {fault.status}"}, fault.status, headers)
        try:
            body = await request.json()
        except ValueError:
            return _bad("the body is not JSON")
        if not isinstance(body, dict) or body.get("from") != self.sender:
            return _bad("from: not a sender of this account")
        to, contents = str(body.get("to") or ""), body.get("contents")
        if not to or not isinstance(contents, list) or not contents:
            return _bad("to and contents are required")
        for content in contents:
            problem = self._check(to, content)
            if problem:
                self.state.refused.append(400)
                return _bad(problem)
        message_id = str(uuid.uuid4())
        for content in contents:
            self.state.sent.append(Sent(message_id, to, content, self.now()))
        return JSONResponse({"id": message_id, "from": self.sender, "to": to, "direction": "OUT",
                             "channel": "whatsapp", "contents": contents}, status_code=200)  # fmt: skip

    def _check(self, to: str, content: Any) -> str:
        if not isinstance(content, dict):
            return "contents: objects"
        kind = content.get("type")
        if kind == "template":
            template = self.state.templates.get(str(content.get("templateId")))
            if template is None or template.status != "APPROVED":
                return "templateId: no such approved template"
            fields = content.get("fields") or {}
            if not isinstance(fields, dict) or sorted(fields) != sorted(template.fields):
                return f"fields: expected {template.fields}"
            return ""
        last = self.state.last_inbound.get(to)
        if last is None or self.now() - last > WINDOW:
            return "131047: more than 24 hours have passed since the customer last replied"
        if kind == "text":
            text = content.get("text")
            return "" if isinstance(text, str) and 0 < len(text) <= 4096 else "text: 1 to 4096 characters"
        if kind == "file":
            url = str(content.get("fileUrl") or "")
            return "" if url.startswith(("https://", "http://")) else "fileUrl: an http(s) URL"
        return f"unsupported content type {kind!r}"

    async def _subscriptions(self, request: Request) -> Response:
        refused = await self._guarded(request)
        if refused is not None:
            return refused
        if request.method == "GET":
            return JSONResponse(list(self.state.subscriptions.values()))
        try:
            body = await request.json()
        except ValueError:
            return _bad("the body is not JSON")
        webhook = body.get("webhook") if isinstance(body, dict) else None
        if body.get("eventType") not in ("MESSAGE", "MESSAGE_STATUS") or not isinstance(webhook, dict):
            return _bad("eventType and webhook are required")
        if not str(webhook.get("url") or "").startswith(("https://", "http://")):
            return _bad("webhook.url: an http(s) URL")
        sub = {"id": str(uuid.uuid4()), "eventType": body["eventType"], "webhook": webhook,
               "criteria": body.get("criteria") or {}, "status": body.get("status") or "ACTIVE",
               "version": body.get("version") or "v2", "createdAt": _iso(self.now())}  # fmt: skip
        self.state.subscriptions[sub["id"]] = sub
        return JSONResponse(sub, status_code=200)

    async def _subscription(self, request: Request) -> Response:
        refused = await self._guarded(request)
        if refused is not None:
            return refused
        sid = request.path_params["sid"]
        if sid not in self.state.subscriptions:
            return JSONResponse({"code": "NOT_FOUND", "message": "subscription not found"}, status_code=404)
        if request.method == "DELETE":
            del self.state.subscriptions[sid]
            return Response(status_code=204)
        return JSONResponse(self.state.subscriptions[sid])

    async def _templates(self, request: Request) -> Response:
        refused = await self._guarded(request)
        if refused is not None:
            return refused
        return JSONResponse(
            [
                {"id": t.id, "name": t.name, "locale": t.locale, "channel": "WHATSAPP", "category": t.category,
                 "status": t.status, "components": {"body": {"type": "TEXT_TEMPLATE", "text": t.body}},
                 "fields": t.fields, "senders": [{"channel": "WHATSAPP", "id": self.sender}]}
                for t in self.state.templates.values()
            ]
        )  # fmt: skip

    async def _file(self, request: Request) -> Response:
        found = self.state.files.get(request.path_params["fid"])
        if found is None:
            return Response(b"not found", status_code=404)
        return Response(found[0], media_type=found[1])


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"code": "VALIDATION_ERROR", "message": message}, status_code=400)
