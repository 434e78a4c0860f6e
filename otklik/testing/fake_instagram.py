"""A fake of Meta's Graph API for Instagram Direct (Messenger Platform) on loopback, for tests and demos.

    async with FakeInstagramServer() as fake:      # fake.base_url = http://127.0.0.1:<port>/v21.0
        settings = Settings(instagram_api_url=fake.base_url, ...)
        fake.fail(613, times=2)                      # the next two sends answer "Calls to this api have exceeded"
        body, headers = fake.signed(fake.text_message("17841400000000001", "hola"))

It answers with Meta's documented shapes (docs/channels/instagram.md):

- `GET /{page_id}?fields=name,instagram_business_account` (the token check).
- `POST /{page_id}/messages`: `{"recipient": {"id"}, "messaging_type", "tag"?, "message": {"text" ≤ 1000,
  "quick_replies" ≤ 13 (titles ≤ 20)} | {"attachment": {"type": "image", "payload": {"url"}}}}` →
  `{"recipient_id", "message_id"}`; `sender_action: mark_seen` → `{"recipient_id"}`. A message to a user whose
  last message is older than 24 h of the fake's clock is refused (code 10, subcode 2018278) unless it carries
  `MESSAGE_TAG` / `HUMAN_AGENT` and is within 7 days.
- Errors `{"error": {"message", "type", "code", "error_subcode"?, "fbtrace_id"}}`; a wrong token is 401/190.
  `fail(code)` injects any code (613 and 4 are rate limits; 2 / 1200 "temporary"; status 500 for 5xx).
- `GET /cdn/{id}`: attachments users "sent" (`image_message`), served without a token like Meta's CDN.

Webhooks are built here (`text_message`, `quick_reply`, `image_message`, `story_reply`, `story_mention`,
`read`, `echo`) and signed with the app secret (`signed`, `deliver`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otklik.testing.loopback import serve_on_loopback

DEFAULT_TOKEN = "FAKEinstagramTokenNotReal0000"  # noqa: S105 - the fake's own, not a real token
DEFAULT_APP_SECRET = "FAKEinstagramAppSecretNotReal0"  # noqa: S105 - obviously fake
DEFAULT_PAGE_ID = "104500000000001"
DEFAULT_IG_ID = "17841400000000000"
VERSION = "v21.0"
WINDOW = 24 * 3600.0
HUMAN_AGENT = 7 * 24 * 3600.0

_ERRORS: dict[int, str] = {
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) This message is sent outside of allowed window.",
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token.",
    551: "(#551) This person isn't available right now.",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}


class Fault(Exception):
    def __init__(self, code: int, status: int = 400, subcode: int | None = None, detail: str | None = None) -> None:
        super().__init__(code)
        self.code, self.status, self.subcode, self.detail = code, status, subcode, detail

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {"message": self.detail or _ERRORS.get(self.code, f"(#{self.code}) Error"),
                                 "type": "OAuthException", "code": self.code, "fbtrace_id": "AfakeTrace"}  # fmt: skip
        if self.subcode:
            error["error_subcode"] = self.subcode
        return JSONResponse({"error": error}, status_code=self.status)


@dataclass(slots=True)
class Injected:
    code: int
    times: int
    status: int
    subcode: int | None


@dataclass(slots=True)
class Sent:
    id: str
    to: str
    body: dict[str, Any]
    at: float


@dataclass(slots=True)
class FakeState:
    sent: list[Sent] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    cdn: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    last_inbound: dict[str, float] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Injected] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


class FakeInstagramServer:
    def __init__(self, *, token: str = DEFAULT_TOKEN, app_secret: str = DEFAULT_APP_SECRET,
                 page_id: str = DEFAULT_PAGE_ID, ig_id: str = DEFAULT_IG_ID, port: int = 0) -> None:  # fmt: skip
        self.token = token
        self.app_secret = app_secret
        self.page_id = page_id
        self.ig_id = ig_id
        self.port = port
        self.state = FakeState()
        self.offset = 0.0
        self._ids = itertools.count(1)
        self._served: Any = None
        self.root_url = ""
        self.base_url = ""

    async def __aenter__(self) -> FakeInstagramServer:
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
                Route("/cdn/{cid}", self._cdn, methods=["GET"]),
                Route(f"/{VERSION}/{{node}}/messages", self._messages, methods=["POST"]),
                Route(f"/{VERSION}/{{node}}", self._node, methods=["GET"]),
            ]
        )

    # --- knobs -----------------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def fail(self, code: int, *, times: int = 1, status: int = 400, subcode: int | None = None) -> Injected:
        fault = Injected(code, times, status, subcode)
        self.state.faults.append(fault)
        return fault

    def sent_to(self, igsid: str) -> list[dict[str, Any]]:
        return [s.body for s in self.state.sent if s.to == igsid]

    def sent_ids(self, igsid: str) -> list[str]:
        return [s.id for s in self.state.sent if s.to == igsid]

    # --- webhooks --------------------------------------------------------------------------------------

    def envelope(self, messaging: list[dict[str, Any]]) -> dict[str, Any]:
        return {"object": "instagram", "entry": [{"id": self.ig_id, "time": int(self.now() * 1000), "messaging": messaging}]}  # fmt: skip

    def item(self, igsid: str, key: str, value: dict[str, Any], *, ts: float | None = None,
             inbound: bool = True) -> dict[str, Any]:  # fmt: skip
        at = self.now() if ts is None else ts
        if inbound:
            self.state.last_inbound[igsid] = max(self.state.last_inbound.get(igsid, 0.0), at)
        return self.envelope([{"sender": {"id": igsid}, "recipient": {"id": self.ig_id},
                               "timestamp": int(at * 1000), key: value}])  # fmt: skip

    def _mid(self) -> str:
        return f"aWdfZmFrZV9taWQ{next(self._ids)}"

    def text_message(self, igsid: str, text: str, **kw: Any) -> dict[str, Any]:
        return self.item(igsid, "message", {"mid": self._mid(), "text": text}, **kw)

    def quick_reply(self, igsid: str, payload: str, title: str, **kw: Any) -> dict[str, Any]:
        return self.item(igsid, "message", {"mid": self._mid(), "text": title, "quick_reply": {"payload": payload}}, **kw)  # fmt: skip

    def image_message(self, igsid: str, data: bytes, mime: str = "image/jpeg", **kw: Any) -> dict[str, Any]:
        cid = f"c{next(self._ids)}"
        self.state.cdn[cid] = (data, mime)
        attachment = {"type": "image", "payload": {"url": f"{self.root_url}/cdn/{cid}"}}
        return self.item(igsid, "message", {"mid": self._mid(), "attachments": [attachment]}, **kw)

    def story_reply(self, igsid: str, text: str, story_id: str = "18000000000000001", **kw: Any) -> dict[str, Any]:
        story = {"id": story_id, "url": f"{self.root_url}/cdn/story{story_id}"}
        return self.item(igsid, "message", {"mid": self._mid(), "text": text, "reply_to": {"story": story}}, **kw)

    def story_mention(self, igsid: str, **kw: Any) -> dict[str, Any]:
        attachment = {"type": "story_mention", "payload": {"url": f"{self.root_url}/cdn/mention"}}
        return self.item(igsid, "message", {"mid": self._mid(), "attachments": [attachment]}, **kw)

    def read(self, igsid: str, mid: str, *, ts: float | None = None) -> dict[str, Any]:
        return self.item(igsid, "read", {"mid": mid}, ts=ts, inbound=False)

    def echo(self, igsid: str, text: str) -> dict[str, Any]:
        value = {"mid": self._mid(), "text": text, "is_echo": True}
        return self.envelope([{"sender": {"id": self.ig_id}, "recipient": {"id": igsid},
                               "timestamp": int(self.now() * 1000), "message": value}])  # fmt: skip

    def signed(self, payload: dict[str, Any] | bytes, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        digest = hmac.new((secret or self.app_secret).encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}

    async def deliver(self, client: httpx.AsyncClient, url: str, payload: dict[str, Any] | bytes) -> httpx.Response:
        body, headers = self.signed(payload)
        return await client.post(url, content=body, headers=headers)

    # --- the API ---------------------------------------------------------------------------------------

    async def _guard(self, request: Request, handler: Any) -> Response:
        self.state.calls.append((request.method, request.url.path))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Fault(190, 401).response()
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except Fault as fault:
            return fault.response()

    async def _node(self, request: Request) -> Response:
        async def go(request: Request) -> Response:
            if request.path_params["node"] != self.page_id:
                raise Fault(100, 400, 33, "Object does not exist or cannot be loaded")
            return JSONResponse({"name": "Otklik Demo Shop", "instagram_business_account": {"id": self.ig_id},
                                 "id": self.page_id})  # fmt: skip

        return await self._guard(request, go)

    async def _cdn(self, request: Request) -> Response:
        found = self.state.cdn.get(request.path_params["cid"])
        if found is None:
            return Response(b"not found", status_code=404)
        return Response(found[0], media_type=found[1])

    async def _messages(self, request: Request) -> Response:
        async def go(request: Request) -> Response:
            if request.path_params["node"] != self.page_id:
                raise Fault(100, 400, 33, "unknown page")
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise Fault(100, 400, None, "the body is not JSON") from None
            recipient = str((body.get("recipient") or {}).get("id") or "") if isinstance(body, dict) else ""
            if not recipient.isdigit():
                raise Fault(100, 400, 2018001, "No matching user found")
            if body.get("sender_action") == "mark_seen":
                self.state.seen.append(recipient)
                return JSONResponse({"recipient_id": recipient})
            try:
                self._inject()
                self._validate(recipient, body)
            except Fault as fault:
                self.state.refused.append(fault.code)
                raise
            mid = f"aWdfb3V0{next(self._ids)}"
            self.state.sent.append(Sent(mid, recipient, body, self.now()))
            return JSONResponse({"recipient_id": recipient, "message_id": mid})

        return await self._guard(request, go)

    def _inject(self) -> None:
        for fault in self.state.faults:
            if fault.times > 0:
                fault.times -= 1
                raise Fault(fault.code, fault.status, fault.subcode)

    def _validate(self, to: str, body: dict[str, Any]) -> None:
        last = self.state.last_inbound.get(to)
        age = self.now() - last if last is not None else None
        kind, tag = body.get("messaging_type"), body.get("tag")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            raise Fault(100, 400, None, "messaging_type: RESPONSE, UPDATE or MESSAGE_TAG")
        if kind == "MESSAGE_TAG" and tag != "HUMAN_AGENT":
            raise Fault(100, 400, None, "tag: only HUMAN_AGENT is allowed on Instagram")
        limit = HUMAN_AGENT if kind == "MESSAGE_TAG" else WINDOW
        if age is None or age > limit:
            raise Fault(10, 400, 2018278, None)
        message = body.get("message")
        if not isinstance(message, dict):
            raise Fault(100, 400, None, "message is required")
        if "attachment" in message:
            attachment = message["attachment"] if isinstance(message["attachment"], dict) else {}
            url = str((attachment.get("payload") or {}).get("url") or "")
            if attachment.get("type") not in ("image", "video", "audio", "file") or not url.startswith(("https://", "http://")):  # fmt: skip
                raise Fault(100, 400, None, "attachment: a type and a payload.url")
            return
        text = message.get("text")
        if not isinstance(text, str) or not text or len(text) > 1000:
            raise Fault(100, 400, None, "message.text: 1 to 1000 characters")
        quick = message.get("quick_replies")
        if quick is not None:
            if not isinstance(quick, list) or not 1 <= len(quick) <= 13:
                raise Fault(100, 400, None, "quick_replies: 1 to 13")
            for reply in quick:
                title = str(reply.get("title") or "") if isinstance(reply, dict) else ""
                if reply.get("content_type") != "text" or not 0 < len(title) <= 20 or not reply.get("payload"):
                    raise Fault(100, 400, None, "quick reply: content_type text, title 1 to 20, a payload")
