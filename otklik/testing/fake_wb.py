"""A fake Wildberries seller API on loopback, built from the documented shapes ([COMM], [PROD], [GEN]).

    async with FakeWB() as wb:                       # 127.0.0.1, random port
        wb.add_feedbacks(sample_feedbacks(30))
        wb.add_cards(sample_cards(10))
        client = WBClient(wb.token, hosts=WBHosts.single(wb.url))
        ...
        wb.rate_limit_next(1, retry=1)               # next call: 429 with X-Ratelimit-* headers
        wb.fail_next(2, status=503)                  # next two calls: 503
        wb.slow_next(1, delay=2.0)                   # next call answers after 2 s
        wb.respond_next(1, body="<html>oops</html>", content_type="text/html")
        wb.calls                                     # every request, with a monotonic timestamp

Covered: `GET /ping`, `GET /api/v1/new-feedbacks-questions`, `GET /api/v1/feedbacks/count-unanswered`,
`GET /api/v1/feedbacks/count`, `GET /api/v1/feedbacks`, `GET /api/v1/feedback`,
`POST|PATCH /api/v1/feedbacks/answer`, `POST /content/v2/get/cards/list`. Tokens are checked like WB's
gateway does (401 problem+json for a missing, malformed, unknown or expired token; 403 "scope is not
allowed for this resource" for a missing category or a read-only token on a write).

Run standalone for offline demos: `python -m otklik.testing.fake_wb --port 8900` prints a token and
serves sample data; point `OTKLIK_WB_API_URL` at it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import secrets
import socket
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otklik.adapters.wildberries.ratelimit import (
    BUYER_CHAT,
    CHAT_DOWNLOAD,
    CONTENT,
    DEFAULT_LIMITS,
    FEEDBACKS,
    PING,
    RateLimit,
)
from otklik.adapters.wildberries.token import (
    ACC_TYPES,
    CATEGORY_BITS,
    READ_ONLY_BIT,
    TokenType,
    inspect_token,
)

Handler = Callable[[Request, bytes], Coroutine[Any, Any, Response]]


# --- tokens --------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_token(
    *,
    categories: Iterable[str] = ("feedbacks", "content", "buyer_chat", "returns", "statistics"),
    kind: TokenType | str = TokenType.PERSONAL,
    expires_at: datetime | None = None,
    read_only: bool = False,
    seller_id: int = 1_234_567,
    seller_uuid: str | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A WB-like JWT: real claim layout (`exp`, `acc`, `for`, `s`, `t`, `oid`, `sid`), random signature.

    `kind`: personal | service | base | test. Expires in 180 days unless `expires_at` is given.
    """
    kind = TokenType(kind)
    acc = {v: k for k, v in ACC_TYPES.items()}[kind]
    mask = 0
    for name in categories:
        mask |= 1 << CATEGORY_BITS[name]
    if read_only:
        mask |= 1 << READ_ONLY_BIT
    now = datetime.now(UTC)
    exp = expires_at or now + timedelta(days=180)
    claims: dict[str, Any] = {
        "acc": acc,
        "ent": 1,
        "exp": int(exp.timestamp()),
        "for": f"asid:{uuid.uuid4()}" if kind is TokenType.SERVICE else "self",
        "id": str(uuid.uuid4()),
        "iid": seller_id + 1,
        "oid": seller_id,
        "s": mask,
        "sid": seller_uuid or str(uuid.uuid4()),
        "t": kind is TokenType.TEST,
        "uid": seller_id + 2,
    }
    claims.update(extra_claims or {})
    header = {"alg": "ES256", "kid": "20250520v1", "typ": "JWT"}
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), secrets.token_bytes(64)]
    return ".".join(_b64url(p) for p in parts)


# --- state ---------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeFeedback:
    """One review as the seller sees it. `answer=None`: not answered yet."""

    id: str
    nm_id: int
    text: str = ""
    pros: str = ""
    cons: str = ""
    product_valuation: int = 5
    created_date: datetime = field(default_factory=lambda: datetime.now(UTC))
    user_name: str = "Покупатель"
    photo_links: list[dict[str, str]] = field(default_factory=list)
    answer: str | None = None
    answer_state: str = "wbRu"
    answer_edited: bool = False
    imt_id: int | None = None
    product_name: str = ""
    supplier_article: str = ""
    brand_name: str = ""
    size: str = "0"
    matching_size: str = ""
    was_viewed: bool = False
    bables: list[str] = field(default_factory=list)
    last_order_created_at: datetime | None = None
    subject_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_answered(self) -> bool:
        """WB's "processed": answered, or a bare rating with no text and no photo ([COMM])."""
        bare = not (self.text or self.pros or self.cons or self.photo_links)
        return self.answer is not None or bare

    def to_wb(self) -> dict[str, Any]:
        answer = None
        if self.answer is not None:
            answer = {"text": self.answer, "state": self.answer_state, "editable": not self.answer_edited}
        body: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "pros": self.pros,
            "cons": self.cons,
            "productValuation": self.product_valuation,
            "createdDate": _iso(self.created_date),
            "answer": answer,
            "state": "wbRu" if self.is_answered else "none",
            "productDetails": {
                "imtId": self.imt_id if self.imt_id is not None else self.nm_id + 1_000_000,
                "nmId": self.nm_id,
                "productName": self.product_name,
                "supplierArticle": self.supplier_article,
                "supplierName": "ИП Продавец",
                "brandName": self.brand_name,
                "size": self.size,
            },
            "video": None,
            "wasViewed": self.was_viewed,
            "photoLinks": self.photo_links,
            "userName": self.user_name,
            "matchingSize": self.matching_size,
            "isAbleSupplierFeedbackValuation": False,
            "supplierFeedbackValuation": 0,
            "isAbleSupplierProductValuation": False,
            "supplierProductValuation": 0,
            "isAbleReturnProductOrders": False,
            "returnProductOrdersDate": None,
            "bables": self.bables,
            "lastOrderShkId": 0,
            "lastOrderCreatedAt": _iso(self.last_order_created_at or self.created_date - timedelta(days=5)),
            "color": "colorless",
            "subjectId": 0,
            "subjectName": self.subject_name,
            "parentFeedbackId": None,
            "childFeedbackId": None,
        }
        body.update(self.extra)
        return body


@dataclass
class FakeSize:
    chrt_id: int
    tech_size: str = "0"
    wb_size: str = ""
    skus: list[str] = field(default_factory=list)

    def to_wb(self) -> dict[str, Any]:
        return {"chrtID": self.chrt_id, "techSize": self.tech_size, "wbSize": self.wb_size, "skus": self.skus}


@dataclass
class FakeCard:
    nm_id: int
    vendor_code: str
    title: str = ""
    brand: str = ""
    sizes: list[FakeSize] = field(default_factory=list)
    subject_name: str = ""
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    created_at: datetime | None = None
    photos: list[dict[str, str]] = field(default_factory=list)  # [PROD] photos[]: big, c246x328, c516x688, …

    def to_wb(self) -> dict[str, Any]:
        return {
            "nmID": self.nm_id,
            "imtID": self.nm_id + 1_000_000,
            "nmUUID": str(uuid.UUID(int=self.nm_id)),
            "subjectID": 0,
            "subjectName": self.subject_name,
            "vendorCode": self.vendor_code,
            "brand": self.brand,
            "title": self.title,
            "description": "",
            "needKiz": False,
            "photos": self.photos,
            "dimensions": {"length": 10, "width": 10, "height": 5, "weightBrutto": 0.2, "isValid": True},
            "characteristics": [],
            "sizes": [s.to_wb() for s in self.sizes],
            "tags": [],
            "createdAt": _iso(self.created_at or self.updated_at),
            "updatedAt": _iso(self.updated_at),
        }

    @property
    def cursor_key(self) -> tuple[datetime, int]:
        return (self.updated_at, self.nm_id)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class FakeChatFile:
    """A file or image a buyer sent. `pending`: downloads answered 202 before the file is served;
    `rejected`: 451 (failed moderation)."""

    download_id: str
    content: bytes
    content_type: str = "image/jpeg"
    name: str = "photo.jpg"
    pending: int = 0
    retry_seconds: int = 30
    rejected: bool = False
    image: bool = True


@dataclass
class FakeChat:
    """One buyer chat. `sent`: what the seller sent through `POST /api/v1/seller/message`."""

    chat_id: str
    reply_sign: str
    client_name: str = "Покупатель"
    good_card: dict[str, Any] | None = None
    last_message: dict[str, Any] | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    def to_wb(self) -> dict[str, Any]:
        body: dict[str, Any] = {"chatID": self.chat_id, "replySign": self.reply_sign, "clientName": self.client_name}
        if self.good_card is not None:
            body["goodCard"] = self.good_card
        if self.last_message is not None:
            body["lastMessage"] = self.last_message
        return body


def good_card(nm_id: int, *, price: int = 1490, rid: str | None = None, size: str = "0") -> dict[str, Any]:
    """A chat's `goodCard` (`Listing`): `rid` is the order id (`srid`)."""
    return {"nmID": nm_id, "price": price, "priceCurrency": "RUB", "rid": rid or uuid.uuid4().hex, "size": size}


@dataclass
class RecordedCall:
    """One request the fake received; `at` is `time.monotonic()` on arrival."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    at: float
    status: int = 0


@dataclass
class _Fault:
    remaining: int
    path: str | None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    after: bool = False  # process normally first (the change is applied), then answer with the fault

    def matches(self, path: str) -> bool:
        return self.remaining > 0 and (self.path is None or path.startswith(self.path))


class _ServerBucket:
    """WB's side of the token bucket: never waits, answers 429 with the documented headers."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated = time.monotonic()

    def take(self) -> float:
        """Consume a token; returns 0 on success, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(float(self.limit.burst), self.tokens + (now - self.updated) * self.limit.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.limit.rate


# Methods whose 403 WB documents as the `{data, error, errorText, additionalErrors}` envelope with
# "Ошибка авторизации" ([COMM] FeedbackErr403; [PROD] the cards list). `feedbacks/answer` lists no 403.
_ENVELOPE_403 = frozenset(
    {
        "/api/v1/new-feedbacks-questions",
        "/api/v1/feedbacks/count-unanswered",
        "/api/v1/feedbacks/count",
        "/api/v1/feedbacks",
        "/api/v1/feedback",
        "/content/v2/get/cards/list",
    }
)


def _envelope(data: Any) -> dict[str, Any]:
    return {"data": data, "error": False, "errorText": "", "additionalErrors": None}


def _envelope_error(status: int, text: str) -> JSONResponse:
    body = {
        "data": None,
        "error": True,
        "errorText": text,
        "additionalErrors": None,
        "requestId": uuid.uuid4().hex,
    }
    return JSONResponse(body, status_code=status)


def _fq_error(status: int, detail: str) -> JSONResponse:
    """`standardizedFQError` ([COMM]): the 400 of `feedbacks/answer` (not the `data`/`error` envelope)."""
    body = {"title": "Bad Request", "detail": detail, "requestId": uuid.uuid4().hex, "origin": "fb-api"}
    return JSONResponse(body, status_code=status)


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    """The gateway's error (`Response4XX`). WB's files give 401 and 429 as `application/json`; the 403 for a
    token without the category ("scope is not allowed") as `application/problem+json`."""
    texts = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}
    texts[451] = "Unavailable For Legal Reasons"
    body = {
        "title": title,
        "detail": detail,
        "code": f"fake-{uuid.uuid4().hex[:12]}",
        "requestId": uuid.uuid4().hex,
        "origin": "s2s-api-auth-catalog",
        "status": status,
        "statusText": texts.get(status, ""),
        "timestamp": _iso(datetime.now(UTC)),
    }
    media = "application/problem+json" if status == 403 else "application/json"
    return JSONResponse(body, status_code=status, media_type=media)


class _BadParam(ValueError):
    pass


def _int_param(query: Mapping[str, str], name: str, *, required: bool = False) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        if required:
            raise _BadParam(f"{name}: required parameter is missing")
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadParam(f"{name}: invalid integer {raw!r}") from None


def _bool_param(query: Mapping[str, str], name: str, *, required: bool = False) -> bool | None:
    raw = query.get(name)
    if raw is None:
        if required:
            raise _BadParam(f"{name}: required parameter is missing")
        return None
    if raw not in ("true", "false"):
        raise _BadParam(f"{name}: invalid boolean {raw!r}")
    return raw == "true"


class _QuietServer(uvicorn.Server):
    """uvicorn inside a test's event loop: no signal handling, and stops as soon as asked (uvicorn's own
    main loop polls every 0.1 s, which adds up over a test suite)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        await self.stop_requested.wait()


# --- the fake ------------------------------------------------------------------------------------------


class FakeWB:
    """The fake WB API. All state is public and may be changed by tests at any time."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (),
        allow_any_token: bool = False,
        enforce_limits: bool | Mapping[str, RateLimit] = False,
        max_take: int = 5000,
        max_skip: int = 199_990,
        cards_max_limit: int = 100,
        answer_state: str = "wbRu",
        events_page: int = 50,
        port: int = 0,
    ) -> None:
        self.token = make_token()
        self.valid_tokens: set[str] = {self.token, *tokens}
        self.allow_any_token = allow_any_token
        self.feedbacks: dict[str, FakeFeedback] = {}
        self.cards: dict[int, FakeCard] = {}
        self.calls: list[RecordedCall] = []
        self.answers_to_unknown_ids: list[dict[str, Any]] = []
        self.chats: dict[str, FakeChat] = {}
        self.chat_events: list[dict[str, Any]] = []  # every event, oldest first (addTimestamp ascending)
        self.chat_files: dict[str, FakeChatFile] = {}
        self.events_page = events_page
        self.replay_last_event = 0  # the next N events calls also return the event at the cursor again
        self.max_take, self.max_skip, self.cards_max_limit = max_take, max_skip, cards_max_limit
        self.answer_state = answer_state
        limits = DEFAULT_LIMITS if enforce_limits is True else (enforce_limits or DEFAULT_LIMITS)
        self.enforce_limits = bool(enforce_limits)
        self._buckets = {group: _ServerBucket(limit) for group, limit in limits.items()}
        self._faults: list[_Fault] = []
        self._port = port
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.url = ""
        self.app = Starlette(routes=self._routes())

    # --- test controls ------------------------------------------------------------------------------

    def allow(self, token: str) -> str:
        """Register a token as valid (it is still checked for expiry and categories); returns it."""
        self.valid_tokens.add(token)
        return token

    def add_feedbacks(self, feedbacks: Iterable[FakeFeedback]) -> None:
        for fb in feedbacks:
            self.feedbacks[fb.id] = fb

    def add_cards(self, cards: Iterable[FakeCard]) -> None:
        for card in cards:
            self.cards[card.nm_id] = card

    # --- buyer chat ----------------------------------------------------------------------------------

    def open_chat(
        self, *, client_name: str = "Покупатель", card: dict[str, Any] | None = None, chat_id: str | None = None
    ) -> FakeChat:
        """A chat the buyer opened (WB: the buyer always starts); its first message comes with
        `buyer_writes`."""
        chat_id = chat_id or f"1:{uuid.uuid4()}"
        chat = FakeChat(chat_id, self._new_sign(chat_id), client_name, card)
        self.chats[chat_id] = chat
        return chat

    def _new_sign(self, chat_id: str) -> str:
        return f"{chat_id}:{secrets.randbelow(10**8)}:{secrets.token_hex(40)}"

    def rotate_sign(self, chat_id: str) -> str:
        """WB changes the chat's signature: a message with the old one gets 400 "Invalid signature"."""
        chat = self.chats[chat_id]
        chat.reply_sign = self._new_sign(chat_id)
        return chat.reply_sign

    def add_chat_file(
        self,
        content: bytes,
        *,
        content_type: str = "image/jpeg",
        name: str = "photo.jpg",
        pending: int = 0,
        rejected: bool = False,
        retry_seconds: int = 30,
    ) -> FakeChatFile:
        file = FakeChatFile(
            str(uuid.uuid4()),
            content,
            content_type,
            name,
            pending=pending,
            rejected=rejected,
            retry_seconds=retry_seconds,
            image=content_type.startswith("image/"),
        )
        self.chat_files[file.download_id] = file
        return file

    def buyer_writes(
        self,
        chat: FakeChat,
        text: str = "",
        *,
        files: Iterable[FakeChatFile] = (),
        card: bool | None = None,
        sender: str = "client",
        source: str = "android",
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """One `message` event in `chat` ([COMM] `Event`). The first event of a chat has `isNewChat` and
        the `replySign`; `card` (default: on the first event) attaches the chat's `goodCard`."""
        first = not any(e["chatID"] == chat.chat_id for e in self.chat_events)
        moment = at or datetime.now(UTC)
        stamp = max(_ms(moment), (self.chat_events[-1]["addTimestamp"] + 1) if self.chat_events else 0)
        attachments: dict[str, Any] = {}
        if (first if card is None else card) and chat.good_card is not None:
            attachments["goodCard"] = chat.good_card
        files = list(files)
        images = [f for f in files if f.image]
        others = [f for f in files if not f.image]
        when = _iso(datetime.fromtimestamp(stamp / 1000, UTC))
        if images:
            attachments["images"] = [
                {"date": when, "downloadID": f.download_id, "url": f"{self.url}/api/v1/seller/download/{f.download_id}"}
                for f in images
            ]
        if others:
            attachments["files"] = [
                {
                    "contentType": f.content_type,
                    "date": when,
                    "downloadID": f.download_id,
                    "name": f.name,
                    "url": f"{self.url}/api/v1/seller/download/{f.download_id}",
                    "size": len(f.content),
                }
                for f in others
            ]
        message: dict[str, Any] = {"text": text}
        if attachments:
            message["attachments"] = attachments
        event: dict[str, Any] = {
            "chatID": chat.chat_id,
            "eventID": str(uuid.uuid4()),
            "eventType": "message",
            "isNewChat": first,
            "message": message,
            "source": source,
            "addTimestamp": stamp,
            "addTime": when,
            "sender": sender,
            "clientName": chat.client_name,
        }
        if first:
            event["replySign"] = chat.reply_sign
        self.chat_events.append(event)
        chat.last_message = {"text": text, "addTimestamp": stamp}
        return event

    def sent_to(self, chat_id: str) -> list[str]:
        """The texts the seller sent to a chat, in order."""
        return [m["message"] for m in self.chats[chat_id].sent]

    def fail_next(self, n: int = 1, *, status: int = 500, path: str | None = None, after: bool = False) -> None:
        """The next `n` matching calls answer `status`. `after=True`: the request is processed first."""
        body = json.dumps({"title": "internal server error", "status": status}).encode()
        self._faults.append(_Fault(n, path, status=status, body=body, after=after))

    def rate_limit_next(
        self,
        n: int = 1,
        *,
        retry: float | None = 1,
        reset: float | None = None,
        limit: int = 6,
        retry_after: float | None = None,
        path: str | None = None,
    ) -> None:
        """The next `n` matching calls get 429 with `X-Ratelimit-Retry`/`-Limit`/`-Reset` ([GEN])."""
        headers = {"X-Ratelimit-Limit": str(limit)}
        if retry is not None:
            headers["X-Ratelimit-Retry"] = _num(retry)
        if reset is not None or retry is not None:
            headers["X-Ratelimit-Reset"] = _num(reset if reset is not None else retry or 0)
        if retry_after is not None:
            headers["Retry-After"] = _num(retry_after)
        body = _problem(429, "too many requests", "limited by fake-wb").body
        self._faults.append(
            _Fault(
                n,
                path,
                status=429,
                headers=headers,
                body=bytes(body),
                content_type="application/json",
            )
        )

    def slow_next(self, n: int = 1, *, delay: float, path: str | None = None) -> None:
        """The next `n` matching calls are processed normally but answered only after `delay` seconds."""
        self._faults.append(_Fault(n, path, status=0, delay=delay))

    def respond_next(
        self,
        n: int = 1,
        *,
        body: Any,
        status: int = 200,
        content_type: str = "application/json",
        path: str | None = None,
    ) -> None:
        """The next `n` matching calls get exactly this body (bytes/str as is, anything else as JSON)."""
        raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self._faults.append(_Fault(n, path, status=status, body=raw, content_type=content_type))

    def calls_to(self, path: str, method: str | None = None) -> list[RecordedCall]:
        return [c for c in self.calls if c.path == path and (method is None or c.method == method)]

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._closing = False
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=2
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("fake WB server stopped during start-up")
            await asyncio.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._closing = True
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.stop_requested.set()
            await self._task
        self._server = self._task = None

    async def __aenter__(self) -> FakeWB:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- request pipeline ---------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        def route(path: str, handler: Handler, methods: Sequence[str], group: str | None, needs: str | None) -> Route:
            async def endpoint(request: Request) -> Response:
                return await self._pipeline(request, handler, group, needs)

            return Route(path, endpoint, methods=list(methods))

        return [
            route("/ping", self._ping, ["GET"], PING, None),
            route("/api/v1/new-feedbacks-questions", self._new, ["GET"], FEEDBACKS, "feedbacks"),
            route("/api/v1/feedbacks/count-unanswered", self._count_unanswered, ["GET"], FEEDBACKS, "feedbacks"),
            route("/api/v1/feedbacks/count", self._count, ["GET"], FEEDBACKS, "feedbacks"),
            route("/api/v1/feedbacks", self._list_feedbacks, ["GET"], FEEDBACKS, "feedbacks"),
            route("/api/v1/feedback", self._get_feedback, ["GET"], FEEDBACKS, "feedbacks"),
            route("/api/v1/feedbacks/answer", self._answer, ["POST", "PATCH"], FEEDBACKS, "feedbacks"),
            route("/content/v2/get/cards/list", self._cards_list, ["POST"], CONTENT, "content"),
            route("/api/v1/seller/chats", self._chats, ["GET"], BUYER_CHAT, "buyer_chat"),
            route("/api/v1/seller/events", self._events, ["GET"], BUYER_CHAT, "buyer_chat"),
            route("/api/v1/seller/message", self._message, ["POST"], BUYER_CHAT, "buyer_chat"),
            route("/api/v1/seller/download/{download_id}", self._download, ["GET"], CHAT_DOWNLOAD, "buyer_chat"),
        ]

    async def _pipeline(self, request: Request, handler: Handler, group: str | None, needs: str | None) -> Response:
        body = await request.body()
        call = RecordedCall(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            body=_decode_for_record(body),
            authorization=request.headers.get("authorization"),
            at=time.monotonic(),
        )
        self.calls.append(call)
        response = await self._respond(request, body, handler, group, needs)
        call.status = response.status_code
        return response

    async def _respond(
        self, request: Request, body: bytes, handler: Handler, group: str | None, needs: str | None
    ) -> Response:
        fault = next((f for f in self._faults if f.matches(request.url.path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.delay:
                await self._sleep(request, fault.delay)
            elif not fault.after:
                return Response(fault.body, fault.status, headers=fault.headers, media_type=fault.content_type)
        denied = self._check_auth(request, needs)
        if denied is not None:
            return denied
        if group is not None and group in self._buckets:
            wait = self._buckets[group].take()
            if wait and self.enforce_limits:
                limit = self._buckets[group].limit
                reset = (limit.burst - self._buckets[group].tokens) / limit.rate
                headers = {
                    "X-Ratelimit-Retry": _num(wait),
                    "X-Ratelimit-Limit": str(limit.burst),
                    "X-Ratelimit-Reset": _num(reset),
                }
                response: Response = _problem(429, "too many requests", f"limited by fake-wb {group}")
                response.headers.update(headers)
                return response
        response = await handler(request, body)
        if fault is not None and fault.after:
            return Response(fault.body, fault.status, headers=fault.headers, media_type=fault.content_type)
        if group is not None and group in self._buckets:
            response.headers["X-Ratelimit-Remaining"] = str(max(int(self._buckets[group].tokens), 0))
        return response

    async def _sleep(self, request: Request, delay: float) -> None:
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0 and not self._closing:
            if await request.is_disconnected():
                return
            await asyncio.sleep(min(left, 0.05))

    def _check_auth(self, request: Request, needs: str | None) -> Response | None:
        header = request.headers.get("authorization", "").strip()
        token = header[7:].strip() if header.lower().startswith("bearer ") else header
        if not token:
            return _problem(401, "unauthorized", "empty Authorization header")
        try:
            info = inspect_token(token)
        except ValueError as exc:
            return _problem(401, "unauthorized", f"token problem; token is malformed: {exc}")
        if token not in self.valid_tokens and not self.allow_any_token:
            return _problem(401, "unauthorized", "token problem; token is not valid or was revoked")
        if info.is_expired():
            return _problem(401, "unauthorized", "token problem; token is expired")
        allowed = {needs, "promotion"} if needs == "content" else {needs}  # cards list: Content or Promotion
        if needs is not None and not allowed & info.categories:
            path = request.url.path
            if path in _ENVELOPE_403:  # [COMM]/[PROD]: 403 is the `data`/`error` envelope on these methods
                return _envelope_error(403, "Ошибка авторизации")
            return _problem(403, "forbidden", "scope is not allowed for this resource")
        if request.method != "GET" and info.read_only and request.url.path.endswith("/answer"):
            return _problem(403, "forbidden", "read-only token scope is not allowed for this resource")
        return None

    # --- handlers -----------------------------------------------------------------------------------

    async def _ping(self, request: Request, body: bytes) -> Response:
        return JSONResponse({"TS": datetime.now(UTC).astimezone().isoformat(timespec="seconds"), "Status": "OK"})

    async def _new(self, request: Request, body: bytes) -> Response:
        has_new = any(not fb.was_viewed for fb in self.feedbacks.values())
        return JSONResponse(_envelope({"hasNewQuestions": False, "hasNewFeedbacks": has_new}))

    async def _count_unanswered(self, request: Request, body: bytes) -> Response:
        open_ = [fb for fb in self.feedbacks.values() if not fb.is_answered]
        today = datetime.now(UTC).date()
        count_today = sum(1 for fb in open_ if fb.created_date.astimezone(UTC).date() == today)
        return JSONResponse(_envelope({"countUnanswered": len(open_), "countUnansweredToday": count_today}))

    def _filtered(self, query: Mapping[str, str], *, answered_required: bool) -> list[FakeFeedback]:
        is_answered = _bool_param(query, "isAnswered", required=answered_required)
        if is_answered is None:  # `feedbacks/count`: isAnswered omitted means true in WB's spec ([COMM])
            is_answered = True
        nm_id = _int_param(query, "nmId")
        date_from, date_to = _int_param(query, "dateFrom"), _int_param(query, "dateTo")
        out = []
        for fb in self.feedbacks.values():
            ts = int(fb.created_date.timestamp())
            if is_answered is not None and fb.is_answered != is_answered:
                continue
            if nm_id is not None and fb.nm_id != nm_id:
                continue
            if (date_from is not None and ts < date_from) or (date_to is not None and ts > date_to):
                continue
            out.append(fb)
        return out

    async def _count(self, request: Request, body: bytes) -> Response:
        try:
            matched = self._filtered(request.query_params, answered_required=False)
        except _BadParam as exc:
            return _envelope_error(400, str(exc))
        return JSONResponse(_envelope(len(matched)))

    async def _list_feedbacks(self, request: Request, body: bytes) -> Response:
        query = request.query_params
        try:
            take = _int_param(query, "take", required=True) or 0
            skip = _int_param(query, "skip", required=True) or 0
            if not 1 <= take <= self.max_take:
                raise _BadParam(f"take: must be 1..{self.max_take}")
            if not 0 <= skip <= self.max_skip:
                raise _BadParam(f"skip: must be 0..{self.max_skip}")
            order = query.get("order")
            if order not in (None, "dateAsc", "dateDesc"):
                raise _BadParam("order: must be dateAsc or dateDesc")
            matched = self._filtered(query, answered_required=True)
        except _BadParam as exc:
            return _envelope_error(400, str(exc))
        matched.sort(key=lambda fb: (fb.created_date, fb.id), reverse=order != "dateAsc")
        page = [fb.to_wb() for fb in matched[skip : skip + take]]
        all_fb = self.feedbacks.values()
        data = {
            "countUnanswered": sum(1 for fb in all_fb if not fb.is_answered),
            "countArchive": sum(1 for fb in all_fb if fb.is_answered),
            "feedbacks": page,
        }
        return JSONResponse(_envelope(data))

    async def _get_feedback(self, request: Request, body: bytes) -> Response:
        fb = self.feedbacks.get(request.query_params.get("id", ""))
        if fb is None:
            return _envelope_error(422, "Невозможно получить отзыв по id")
        return JSONResponse(_envelope(fb.to_wb()))

    async def _answer(self, request: Request, body: bytes) -> Response:
        if "application/json" not in request.headers.get("content-type", ""):
            return _fq_error(400, "Content-Type header is not application/json")
        try:
            payload = json.loads(body)
        except ValueError:
            return _fq_error(400, "invalid JSON syntax")
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            return _fq_error(400, "id: required string")
        text = payload.get("text")
        if not isinstance(text, str) or not 2 <= len(text) <= 5000:
            return _fq_error(400, "text: must be 2..5000 characters")
        fb = self.feedbacks.get(payload["id"])
        if fb is None:  # WB does not validate the id: success, nothing happens ([COMM])
            self.answers_to_unknown_ids.append(payload)
            return Response(status_code=204)
        if request.method == "PATCH":
            if fb.answer is None or fb.answer_edited:
                return _fq_error(400, "the answer can be edited only once")
            fb.answer_edited = True
        elif fb.answer is not None:  # an assumption: WB does not document a second POST; edits are PATCH
            return _fq_error(400, "the feedback already has an answer; edit it with PATCH")
        fb.answer, fb.answer_state = text, self.answer_state
        return Response(status_code=204)

    async def _cards_list(self, request: Request, body: bytes) -> Response:
        try:
            settings = json.loads(body)["settings"]
            cursor = settings.get("cursor") or {}
            filters = settings.get("filter") or {}
            ascending = bool((settings.get("sort") or {}).get("ascending", False))
            limit = int(cursor.get("limit", 0))
        except (ValueError, KeyError, TypeError, AttributeError):
            return Response("Request body can not be decoded", 400, media_type="text/plain")
        if not 1 <= limit <= self.cards_max_limit:
            return JSONResponse(
                {
                    "data": None,
                    "error": True,
                    "errorText": f"limit must be 1..{self.cards_max_limit}",
                    "additionalErrors": {},
                },
                status_code=400,
            )
        cards = sorted(self.cards.values(), key=lambda c: c.cursor_key, reverse=not ascending)
        if filters.get("textSearch"):
            cards = [c for c in cards if _text_matches(c, str(filters["textSearch"]))]
        with_photo = filters.get("withPhoto", 0)  # [PROD]: -1 all, 0 without photo (the default), 1 with photo
        if with_photo not in (-1, 0, 1) or isinstance(with_photo, bool):
            return _envelope_error(400, "withPhoto: must be -1, 0 or 1")
        if with_photo != -1:
            cards = [c for c in cards if bool(c.photos) == (with_photo == 1)]
        if cursor.get("updatedAt") and cursor.get("nmID") is not None:
            try:
                key = (datetime.fromisoformat(str(cursor["updatedAt"])), int(cursor["nmID"]))
            except ValueError:
                return Response("Request body can not be decoded", 400, media_type="text/plain")
            cards = [c for c in cards if (c.cursor_key > key if ascending else c.cursor_key < key)]
        page = cards[:limit]
        if page:
            last = page[-1]
            out_cursor = {"updatedAt": _iso(last.updated_at), "nmID": last.nm_id, "total": len(page)}
        else:
            out_cursor = {"updatedAt": cursor.get("updatedAt"), "nmID": cursor.get("nmID"), "total": 0}
        return JSONResponse({"cards": [c.to_wb() for c in page], "cursor": out_cursor})

    # --- buyer chat handlers -------------------------------------------------------------------------

    async def _chats(self, request: Request, body: bytes) -> Response:
        return JSONResponse({"result": [c.to_wb() for c in self.chats.values()], "errors": None})

    async def _events(self, request: Request, body: bytes) -> Response:
        raw = request.query_params.get("next")
        cursor: int | None = None
        if raw is not None:
            try:
                cursor = int(raw)
            except ValueError:
                cursor = 0
            if cursor <= 0:
                return _problem(400, "Bad Request", 'Invalid value for "next"')
        if cursor is None:
            page = self.chat_events[: self.events_page]
        else:
            later = [e for e in self.chat_events if e["addTimestamp"] > cursor]
            if self.replay_last_event > 0:  # a redelivery: the event at the cursor once more
                self.replay_last_event -= 1
                later = [e for e in self.chat_events if e["addTimestamp"] == cursor] + later
            page = later[: self.events_page]
        if page:
            nxt = page[-1]["addTimestamp"]
            result: dict[str, Any] = {
                "next": nxt,
                "newestEventTime": page[-1].get("addTime", ""),
                "oldestEventTime": page[0].get("addTime", ""),
                "totalEvents": len(page),
                # `{"_raw": anything, "addTimestamp": n}`: a test's hostile event, served as is
                "events": [e.get("_raw", e) for e in page],
            }
        else:
            result = {"next": cursor or _ms(datetime.now(UTC)), "totalEvents": 0, "events": []}
        return JSONResponse({"result": result, "errors": None})

    async def _message(self, request: Request, body: bytes) -> Response:
        if "multipart/form-data" not in request.headers.get("content-type", ""):
            return _problem(400, "Bad Request", "request must be multipart/form-data")
        try:
            form = await request.form(max_files=50, max_fields=10)
        except Exception:  # a malformed multipart body
            return _problem(400, "Bad Request", "cannot parse multipart form")
        sign = form.get("replySign")
        text = form.get("message")
        if not isinstance(sign, str) or not sign or len(sign) > 255:
            return _problem(400, "Bad Request", 'Invalid value for "replySign"')
        if text is not None and (not isinstance(text, str) or len(text) > 1000):
            return _problem(400, "Bad Request", 'Invalid value for "message"')
        chat = next((c for c in self.chats.values() if c.reply_sign == sign), None)
        if chat is None:
            return _problem(400, "Bad Request", "Invalid signature")
        files = []
        total = 0
        for item in form.getlist("file"):
            if isinstance(item, str):
                return _problem(400, "Bad Request", 'Invalid value for "file"')
            content = await item.read()
            ctype = (item.content_type or "").split(";")[0]
            if ctype not in ("image/jpeg", "image/png", "application/pdf"):
                return _problem(400, "Bad Request", f"{item.filename} has unsupported mime type")
            if len(content) > 5 * 1024 * 1024:
                return _problem(400, "Bad Request", "attachment too big. Max size: 5MiB")
            total += len(content)
            files.append({"name": item.filename, "content_type": ctype, "size": len(content)})
        if total > 30 * 1024 * 1024:
            return _problem(400, "Bad Request", "attachments too big. Max total size: 30MiB")
        if not (text or "").strip() and not files:
            return _problem(400, "Bad Request", 'Invalid value for "message"')
        now = datetime.now(UTC)
        chat.sent.append({"message": text or "", "files": files, "at": _ms(now)})
        self.buyer_writes(chat, text or "", card=False, sender="seller", source="seller-public-api", at=now)
        return JSONResponse({"result": {"addTime": _ms(now), "chatID": chat.chat_id, "sign": sign}, "errors": []})

    async def _download(self, request: Request, body: bytes) -> Response:
        file = self.chat_files.get(request.path_params["download_id"])
        if file is None:
            return _problem(404, "Not Found", "file not found")
        if file.rejected:
            return _problem(451, "Unavailable For Legal Reasons", "the file failed moderation")
        if file.pending > 0:
            file.pending -= 1
            return JSONResponse({"moderationState": "pending", "retrySeconds": file.retry_seconds}, status_code=202)
        return Response(file.content, 200, media_type=file.content_type)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def _decode_for_record(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _text_matches(card: FakeCard, query: str) -> bool:
    """WB searches seller article, WB article and barcode; like WB, partial matches count too."""
    q = query.strip().lower()
    skus = [sku for s in card.sizes for sku in s.skus]
    return q == str(card.nm_id) or q in card.vendor_code.lower() or any(q in sku for sku in skus)


# --- sample data (deterministic) -----------------------------------------------------------------------


def ean13(body12: str) -> str:
    """Complete a 12-digit body with the EAN-13 check digit."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


_NAMES = ["Анна", "Мария", "Ольга", "Елена", "Дмитрий", "Сергей", "Ирина", "Наталья", "Алексей", "Юлия"]
_REVIEWS = [
    (5, "Всё отлично, пришло быстро, упаковка целая", "Качество", ""),
    (5, "Рекомендую, беру уже второй раз", "Цена", ""),
    (4, "Хороший товар, но коробка помята", "Работает", "Упаковка"),
    (3, "Нормально, ожидала большего", "", "Запах"),
    (2, "Пришёл не тот цвет, на этикетке другой артикул", "", "Пересорт"),
    (1, "Брак: не включается с первого дня", "", "Брак"),
    (1, "После нанесения жжение, покраснела кожа", "", "Жжёт"),
    (5, "", "", ""),
]


def sample_feedbacks(
    count: int,
    *,
    nm_ids: Sequence[int] = (101_000_001, 101_000_002, 101_000_003),
    start: datetime | None = None,
    step: timedelta = timedelta(minutes=37),
    answered_share: float = 0.3,
    seed: int = 0,
) -> list[FakeFeedback]:
    """`count` realistic feedbacks, oldest first, every `step` from `start` (default: `count` steps ago)."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC).replace(microsecond=0) - step * count
    out = []
    for i in range(count):
        stars, text, pros, cons = rng.choice(_REVIEWS)
        photos = [] if rng.random() > 0.2 else [_photo(i)]
        answered = rng.random() < answered_share
        out.append(
            FakeFeedback(
                id=f"fb{seed:02d}{i:07d}" + secrets.token_hex(3),
                nm_id=rng.choice(list(nm_ids)),
                text=text,
                pros=pros,
                cons=cons,
                product_valuation=stars,
                created_date=start + step * i,
                user_name=rng.choice(_NAMES),
                photo_links=photos,
                answer="Спасибо за отзыв!" if answered else None,
                product_name="Гель разогревающий",
                supplier_article=f"GEL-{i % 7:03d}",
                brand_name="Демо",
                size="0",
            )
        )
    return out


def _photo(i: int) -> dict[str, str]:
    base = f"https://feedback04.wbbasket.ru/vol{1300 + i % 50}/part{130000 + i}/{i}/photos"
    return {"fullSize": f"{base}/fs.webp", "miniSize": f"{base}/ms.webp"}


def sample_cards(
    count: int, *, first_nm_id: int = 101_000_001, sizes: Sequence[str] = ("S", "M", "L"), seed: int = 0
) -> list[FakeCard]:
    """`count` cards with one EAN-13 barcode per size; updatedAt spread over the last days."""
    rng = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(count):
        nm_id = first_nm_id + i
        card_sizes = [
            FakeSize(
                chrt_id=nm_id * 10 + j,
                tech_size=size,
                wb_size=str(42 + 2 * j),
                skus=[ean13(f"20{nm_id:09d}{j}")],
            )
            for j, size in enumerate(sizes)
        ]
        out.append(
            FakeCard(
                nm_id=nm_id,
                vendor_code=f"ART-{i:05d}",
                title=f"Товар {i}",
                brand="Демо",
                sizes=card_sizes,
                subject_name="Гели",
                updated_at=base + timedelta(seconds=rng.randrange(0, 5 * 86400)),
            )
        )
    return out


def _main() -> None:  # pragma: no cover - manual demo entry point
    parser = argparse.ArgumentParser(description="Run the fake WB API with sample data.")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args()

    async def run() -> None:
        async with FakeWB(port=args.port) as fake:
            fake.add_feedbacks(sample_feedbacks(120))
            fake.add_cards(sample_cards(25))
            print(f"fake WB API at {fake.url}\ntoken: {fake.token}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    _main()
