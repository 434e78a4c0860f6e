"""A fake WhatsApp Cloud API (Meta Graph API) server on loopback, for tests, benches and offline demos.

    async with FakeWhatsAppServer() as fake:        # fake.base_url = http://127.0.0.1:<port>/v21.0
        settings = Settings(whatsapp_api_url=fake.base_url, ...)
        fake.add_template("pedido_listo", "es", params=1)
        fake.fail(130429, times=3)                   # the next three sends answer "Rate limit hit"
        body, headers = fake.signed(fake.text_message("5491100000001", "hola"))

It answers, with Meta's documented shapes (docs/channels/whatsapp.md, reference §2):

- `POST /{phone_number_id}/messages`: text (≤ 4096), interactive `button` (≤ 3 reply buttons, titles ≤ 20
  and unique) and `list` (≤ 10 rows, titles ≤ 24, descriptions ≤ 72, button ≤ 20), image / document / audio
  / video / sticker by uploaded `id` or `link`, `template` (known, APPROVED, the language it exists in, the
  right number of body parameters — else 132001 / 132000), `context.message_id`, and the read mark
  (`{"status": "read", "message_id"}`). A free-form message to a user whose last message (sent through
  `text_message` & co.) is older than 24 h of the fake's clock is refused with **131047**, as Meta does.
- `POST /{phone_number_id}/media` (multipart `file`, `type`, `messaging_product`) → `{"id"}`.
- `GET /{media_id}` → `{"url", "mime_type", "sha256", "file_size", "id"}`; the URL (`/lookaside/<id>`)
  needs the same Bearer token and expires 5 minutes (fake clock) after it was handed out.
- `GET /{waba_id}/message_templates` (paged with `limit` / `after`), `GET /{phone_number_id}` (the token check).
- Errors as `{"error": {"message", "type", "code", "error_subcode"?, "error_data"?, "fbtrace_id"}}`; a wrong
  token is 401 with code 190. `fail(code)` injects any code, `throttle(per_second)` answers 130429 past a rate.

Webhooks are built here (`text_message`, `image_message`, `button_reply`, `status`, …) and signed with the
app secret (`signed`: `X-Hub-Signature-256: sha256=<hex>`); `deliver` posts them to an app (duplicates and
out-of-order statuses are the caller's choice of what to post).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otklik.testing.loopback import serve_on_loopback

DEFAULT_TOKEN = "EAAfake-test-token-not-real-0000"  # noqa: S105 - the fake's own, obviously fake (Meta tokens start with EAA)
DEFAULT_APP_SECRET = "FAKEtestAppSecretNotReal0000"  # noqa: S105 - obviously fake
DEFAULT_PHONE_NUMBER_ID = "106540352242922"
DEFAULT_WABA_ID = "102290129340398"
DISPLAY_NUMBER = "15550783881"
VERSION = "v21.0"
MEDIA_URL_TTL = 300.0  # seconds: Meta's media URLs live 5 minutes
WINDOW = 24 * 3600.0

_ERRORS: dict[int, tuple[str, str]] = {
    4: ("(#4) Application request limit reached", "OAuthException"),
    100: ("(#100) Invalid parameter", "OAuthException"),
    190: ("Invalid OAuth access token - Cannot parse access token", "OAuthException"),
    80007: ("(#80007) Rate limit issues", "OAuthException"),
    130429: ("(#130429) Rate limit hit", "OAuthException"),
    130472: ("(#130472) User's number is part of an experiment", "OAuthException"),
    131000: ("(#131000) Something went wrong", "OAuthException"),
    131026: ("(#131026) Message undeliverable", "OAuthException"),
    131047: ("(#131047) Re-engagement message", "OAuthException"),
    131048: ("(#131048) Spam rate limit hit", "OAuthException"),
    131049: ("(#131049) Meta chose not to deliver", "OAuthException"),
    131050: ("(#131050) User has stopped marketing messages", "OAuthException"),
    131051: ("(#131051) Unsupported message type", "OAuthException"),
    131056: ("(#131056) (Business Account, Consumer Account) pair rate limit hit", "OAuthException"),
    132000: ("(#132000) Number of parameters does not match the expected number of params", "OAuthException"),
    132001: ("(#132001) Template name does not exist in the translation", "OAuthException"),
}


class GraphFault(Exception):
    def __init__(self, code: int, status: int = 400, detail: str | None = None) -> None:
        super().__init__(code)
        self.code, self.status, self.detail = code, status, detail

    def response(self) -> JSONResponse:
        message, kind = _ERRORS.get(self.code, (f"(#{self.code}) Error", "OAuthException"))
        error: dict[str, Any] = {"message": message, "type": kind, "code": self.code, "fbtrace_id": "AfakeTrace"}
        if self.detail:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.detail}
        return JSONResponse({"error": error}, status_code=self.status)


@dataclass(slots=True)
class Fault:
    code: int
    times: int
    after: int = 0
    status: int = 400
    to: str | None = None  # only sends to this number


@dataclass(slots=True)
class Media:
    data: bytes
    mime_type: str
    filename: str | None = None
    url_issued_at: float | None = None


@dataclass(slots=True)
class Template:
    name: str
    language: str
    category: str = "UTILITY"
    status: str = "APPROVED"
    params: int = 0
    id: str = ""


@dataclass(slots=True)
class Sent:
    """One accepted POST /messages: the body as we received it and the id we gave it."""

    id: str
    to: str
    body: dict[str, Any]
    at: float


@dataclass(slots=True)
class FakeState:
    sent: list[Sent] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    templates: dict[tuple[str, str], Template] = field(default_factory=dict)
    last_inbound: dict[str, float] = field(default_factory=dict)  # wa_id -> fake time of the user's last message
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    faults: list[Fault] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # error codes answered to sends


class FakeWhatsAppServer:
    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_secret: str = DEFAULT_APP_SECRET,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
        waba_id: str = DEFAULT_WABA_ID,
        port: int = 0,
    ) -> None:
        self.token = token
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self.waba_id = waba_id
        self.port = port
        self.state = FakeState()
        self.offset = 0.0  # seconds added to the fake's clock (`advance`)
        self._ids = itertools.count(1)
        self._per_second: float | None = None
        self._recent: deque[float] = deque()
        self._served: Any = None
        self.root_url = ""
        self.base_url = ""

    # --- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeWhatsAppServer:
        self._served = await serve_on_loopback(self.app(), self.port)
        self.port = self._served.port
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root_url}/{VERSION}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._served is not None:
            self._served.server.should_exit = True
            with contextlib.suppress(Exception):
                await self._served.task

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/lookaside/{media_id}", self._download, methods=["GET"]),
                Route(f"/{VERSION}/{{node}}/messages", self._messages, methods=["POST"]),
                Route(f"/{VERSION}/{{node}}/media", self._upload, methods=["POST"]),
                Route(f"/{VERSION}/{{node}}/message_templates", self._templates, methods=["GET"]),
                Route(f"/{VERSION}/{{node}}", self._node, methods=["GET"]),
            ]
        )

    # --- knobs -----------------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (the 24-hour window, media URL expiry)."""
        self.offset += seconds

    def fail(self, code: int, *, times: int = 1, after: int = 0, status: int = 400, to: str | None = None) -> Fault:
        """The next `times` sends (after `after` good ones; only to `to` when given) answer this error code."""
        fault = Fault(code, times, after, status, to)
        self.state.faults.append(fault)
        return fault

    def throttle(self, per_second: float | None) -> None:
        """Answer 130429 to sends beyond `per_second` in any one second (Meta's throughput limit)."""
        self._per_second = per_second
        self._recent.clear()

    def add_template(
        self, name: str, language: str, *, params: int = 0, status: str = "APPROVED", category: str = "UTILITY"
    ) -> Template:
        template = Template(name, language, category, status, params, str(900000 + len(self.state.templates)))
        self.state.templates[(name, language)] = template
        return template

    def store_media(self, data: bytes, mime_type: str, filename: str | None = None) -> str:
        media_id = str(7000000000 + next(self._ids))
        self.state.media[media_id] = Media(data, mime_type, filename)
        return media_id

    def sent_to(self, wa_id: str) -> list[dict[str, Any]]:
        return [s.body for s in self.state.sent if s.to == wa_id]

    def sent_ids(self, wa_id: str) -> list[str]:
        return [s.id for s in self.state.sent if s.to == wa_id]

    # --- webhooks --------------------------------------------------------------------------------------

    def envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        metadata = {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": self.phone_number_id}
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": self.waba_id,
                    "changes": [
                        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}
                    ],
                }
            ],
        }

    def inbound(self, wa_id: str, content: dict[str, Any], *, name: str = "Cliente", ts: float | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """One user message (its `type` and content given) in a webhook payload; the user's window opens."""
        at = self.now() if ts is None else ts
        self.state.last_inbound[wa_id] = max(self.state.last_inbound.get(wa_id, 0.0), at)
        message = {"from": wa_id, "id": f"wamid.in{next(self._ids)}", "timestamp": str(int(at)), **content}
        if extra:
            message.update(extra)
        return self.envelope({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]})

    def text_message(self, wa_id: str, text: str, **kw: Any) -> dict[str, Any]:
        return self.inbound(wa_id, {"type": "text", "text": {"body": text}}, **kw)

    def image_message(self, wa_id: str, data: bytes, *, caption: str | None = None, mime: str = "image/jpeg",
                      media_id: str | None = None, **kw: Any) -> dict[str, Any]:  # fmt: skip
        media_id = media_id or self.store_media(data, mime)
        image: dict[str, Any] = {"id": media_id, "mime_type": mime, "sha256": hashlib.sha256(data).hexdigest()}
        if caption:
            image["caption"] = caption
        return self.inbound(wa_id, {"type": "image", "image": image}, **kw)

    def document_message(self, wa_id: str, data: bytes, filename: str, mime: str = "application/pdf",
                         **kw: Any) -> dict[str, Any]:  # fmt: skip
        media_id = self.store_media(data, mime, filename)
        document = {"id": media_id, "mime_type": mime, "filename": filename, "sha256": hashlib.sha256(data).hexdigest()}
        return self.inbound(wa_id, {"type": "document", "document": document}, **kw)

    def button_reply(self, wa_id: str, reply_id: str, title: str, *, context_id: str | None = None,
                     **kw: Any) -> dict[str, Any]:  # fmt: skip
        content: dict[str, Any] = {
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}},
        }
        if context_id:
            content["context"] = {"from": DISPLAY_NUMBER, "id": context_id}
        return self.inbound(wa_id, content, **kw)

    def list_reply(self, wa_id: str, reply_id: str, title: str, **kw: Any) -> dict[str, Any]:
        interactive = {"type": "list_reply", "list_reply": {"id": reply_id, "title": title, "description": ""}}
        return self.inbound(wa_id, {"type": "interactive", "interactive": interactive}, **kw)

    def status(self, wamid: str, status: str, wa_id: str, *, ts: float | None = None,
               error_code: int | None = None) -> dict[str, Any]:  # fmt: skip
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(self.now() if ts is None else ts)),
            "recipient_id": wa_id,
        }
        if status in ("sent", "delivered"):
            item["conversation"] = {"id": "conv1", "origin": {"type": "service"}}
            item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
        if error_code is not None:
            message, _ = _ERRORS.get(error_code, (f"(#{error_code})", ""))
            item["errors"] = [{"code": error_code, "title": message, "message": message}]
        return self.envelope({"statuses": [item]})

    def signed(self, payload: dict[str, Any] | bytes, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        digest = hmac.new((secret or self.app_secret).encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}

    async def deliver(self, client: httpx.AsyncClient, url: str, payload: dict[str, Any] | bytes) -> httpx.Response:
        """POST a signed webhook to `url` (as Meta does; redeliver by calling again)."""
        body, headers = self.signed(payload)
        return await client.post(url, content=body, headers=headers)

    # --- the API ---------------------------------------------------------------------------------------

    def _auth(self, request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise GraphFault(190, 401)

    async def _guard(self, request: Request, handler: Any) -> Response:
        self.state.calls.append((request.method, request.url.path))
        try:
            self._auth(request)
            return await handler(request)  # type: ignore[no-any-return]
        except GraphFault as fault:
            return fault.response()

    async def _node(self, request: Request) -> Response:
        async def go(request: Request) -> Response:
            node = request.path_params["node"]
            if node == self.phone_number_id:
                return JSONResponse({"id": node, "display_phone_number": DISPLAY_NUMBER, "verified_name": "Otklik Demo",
                                     "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K"})  # fmt: skip
            media = self.state.media.get(node)
            if media is None:
                raise GraphFault(100, 404, "Unsupported get request. Object with ID does not exist")
            media.url_issued_at = self.now()
            return JSONResponse({"messaging_product": "whatsapp", "url": f"{self.root_url}/lookaside/{node}?mid={node}",
                                 "mime_type": media.mime_type, "sha256": hashlib.sha256(media.data).hexdigest(),
                                 "file_size": len(media.data), "id": node})  # fmt: skip

        return await self._guard(request, go)

    async def _download(self, request: Request) -> Response:
        async def go(request: Request) -> Response:
            media = self.state.media.get(request.path_params["media_id"])
            if media is None or media.url_issued_at is None or self.now() - media.url_issued_at > MEDIA_URL_TTL:
                return Response(b"URL expired or unknown", status_code=404)
            return Response(media.data, media_type=media.mime_type)

        return await self._guard(request, go)

    async def _upload(self, request: Request) -> Response:
        async def go(request: Request) -> Response:
            if request.path_params["node"] != self.phone_number_id:
                raise GraphFault(100, 400, "unknown phone number id")
            form = await request.form()
            upload = form.get("file")
            if form.get("messaging_product") != "whatsapp" or upload is None or isinstance(upload, str):
                raise GraphFault(100, 400, "messaging_product=whatsapp and a file are required")
            data = await upload.read()
            mime = str(form.get("type") or upload.content_type or "application/octet-stream")
            return JSONResponse({"id": self.store_media(data, mime, upload.filename)})

        return await self._guard(request, go)

    async def _templates(self, request: Request) -> Response:
        async def go(request: Request) -> Response:
            if request.path_params["node"] != self.waba_id:
                raise GraphFault(100, 400, "unknown WhatsApp Business Account id")
            limit = int(request.query_params.get("limit") or 25)
            start = int(request.query_params.get("after") or 0)
            items = list(self.state.templates.values())
            page = items[start : start + limit]
            data = [
                {"name": t.name, "language": t.language, "status": t.status, "category": t.category, "id": t.id,
                 "components": [{"type": "BODY", "text": " ".join(f"{{{{{i}}}}}" for i in range(1, t.params + 1)) or "Hola"}]}
                for t in page
            ]  # fmt: skip
            paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(page))}}
            if start + limit < len(items):
                paging["next"] = f"{self.base_url}/{self.waba_id}/message_templates?limit={limit}&after={start + limit}"
            return JSONResponse({"data": data, "paging": paging})

        return await self._guard(request, go)

    async def _messages(self, request: Request) -> Response:
        async def go(request: Request) -> Response:
            if request.path_params["node"] != self.phone_number_id:
                raise GraphFault(100, 400, "unknown phone number id")
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise GraphFault(100, 400, "the body is not JSON") from None
            if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
                raise GraphFault(100, 400, "messaging_product must be whatsapp")
            if body.get("status") == "read":
                self.state.reads.append(str(body.get("message_id")))
                return JSONResponse({"success": True})
            to = str(body.get("to") or "")
            try:
                self._throttle()
                self._inject(to)
                self._validate(to, body)
            except GraphFault as fault:
                self.state.refused.append(fault.code)
                raise
            wamid = f"wamid.out{next(self._ids)}"
            self.state.sent.append(Sent(wamid, to, body, self.now()))
            return JSONResponse({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                 "messages": [{"id": wamid}]})  # fmt: skip

        return await self._guard(request, go)

    def _throttle(self) -> None:
        if self._per_second is None:
            return
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self._per_second:
            raise GraphFault(130429)
        self._recent.append(now)

    def _inject(self, to: str) -> None:
        for fault in self.state.faults:
            if fault.times <= 0 or (fault.to is not None and fault.to != to):
                continue
            if fault.after > 0:
                fault.after -= 1
                continue
            fault.times -= 1
            raise GraphFault(fault.code, fault.status)

    def _validate(self, to: str, body: dict[str, Any]) -> None:
        if not to.isdigit() or not 6 <= len(to) <= 20:
            raise GraphFault(100, 400, "to: a phone number in international format, digits only")
        kind = body.get("type", "text")
        context = body.get("context")
        if context is not None and not (isinstance(context, dict) and context.get("message_id")):
            raise GraphFault(100, 400, "context.message_id is required")
        if kind == "template":
            self._template(body.get("template"))
            return
        last = self.state.last_inbound.get(to)
        if last is None or self.now() - last > WINDOW:
            raise GraphFault(131047, 400, "Message failed to send because more than 24 hours have passed")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text or len(text) > 4096:
                raise GraphFault(100, 400, "text.body: 1 to 4096 characters")
        elif kind == "interactive":
            self._interactive(body.get("interactive") or {})
        elif kind in ("image", "document", "audio", "video", "sticker"):
            media = body.get(kind) or {}
            if media.get("id"):
                if str(media["id"]) not in self.state.media:
                    raise GraphFault(131053, 400, "media id not found")
            elif not str(media.get("link") or "").startswith(("https://", "http://")):
                raise GraphFault(100, 400, f"{kind}: an id or a link is required")
            if len(str(media.get("caption") or "")) > 1024:
                raise GraphFault(100, 400, "caption: at most 1024 characters")
        else:
            raise GraphFault(100, 400, f"unsupported message type {kind!r}")

    def _interactive(self, interactive: dict[str, Any]) -> None:
        text = (interactive.get("body") or {}).get("text")
        if not isinstance(text, str) or not text or len(text) > 1024:
            raise GraphFault(100, 400, "interactive.body.text: 1 to 1024 characters")
        action = interactive.get("action") or {}
        if interactive.get("type") == "button":
            buttons = action.get("buttons") or []
            titles = [(b.get("reply") or {}).get("title", "") for b in buttons]
            ids = [(b.get("reply") or {}).get("id", "") for b in buttons]
            if not 1 <= len(buttons) <= 3:
                raise GraphFault(100, 400, "buttons: 1 to 3")
            if any(not t or len(t) > 20 for t in titles) or len(set(titles)) != len(titles):
                raise GraphFault(100, 400, "button titles: 1 to 20 characters, unique")
            if any(not i or len(i) > 256 for i in ids) or len(set(ids)) != len(ids):
                raise GraphFault(100, 400, "button ids: 1 to 256 characters, unique")
        elif interactive.get("type") == "list":
            label = action.get("button") or ""
            rows = [r for s in action.get("sections") or [] for r in s.get("rows") or []]
            if not label or len(label) > 20:
                raise GraphFault(100, 400, "action.button: 1 to 20 characters")
            if not 1 <= len(rows) <= 10:
                raise GraphFault(100, 400, "list: 1 to 10 rows in all")
            for row in rows:
                if not row.get("title") or len(row["title"]) > 24 or len(row.get("description") or "") > 72:
                    raise GraphFault(100, 400, "row title 1 to 24, description up to 72 characters")
                if not row.get("id") or len(row["id"]) > 200:
                    raise GraphFault(100, 400, "row id: 1 to 200 characters")
        else:
            raise GraphFault(100, 400, "interactive.type: button or list")

    def _template(self, template: Any) -> None:
        if not isinstance(template, dict):
            raise GraphFault(100, 400, "template object required")
        key = (str(template.get("name")), str((template.get("language") or {}).get("code")))
        found = self.state.templates.get(key)
        if found is None or found.status != "APPROVED":
            raise GraphFault(132001, 404, f"template {key[0]} ({key[1]}) does not exist or is not approved")
        params = [
            p for c in template.get("components") or [] if c.get("type") == "body" for p in c.get("parameters") or []
        ]
        if len(params) != found.params:
            raise GraphFault(132000, 400, f"expected {found.params} body parameters, got {len(params)}")


def counts(codes: list[int]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for code in codes:
        out[code] += 1
    return dict(out)


async def run_fake(port: int = 8099) -> AsyncIterator[FakeWhatsAppServer]:  # pragma: no cover - a demo helper
    async with FakeWhatsAppServer(port=port) as fake:
        yield fake
