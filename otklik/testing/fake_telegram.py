"""A fake Telegram Bot API server on loopback, for tests that drive the real aiogram client.

    async with FakeTelegramServer() as fake:
        bot = Bot(DEFAULT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
        fake.queue_update(fake.text_update(chat_id=42, text="Здравствуйте"))
        fake.rate_limit("sendMessage", retry_after=3)    # the next sendMessage answers 429

It answers `{base}/bot<token>/<method>` (GET or POST; query, form-urlencoded, JSON or multipart bodies,
as aiogram sends them) with the documented envelopes, and serves `{base}/file/bot<token>/<path>`.
It records every call in `calls`, keeps what the bot sent per chat (`sent_messages`), and enforces the
limits a real server enforces: text ≤ 4096 and caption ≤ 1024 UTF-16 units after HTML entity parsing,
callback_data 1–64 bytes, well-formed HTML, one getUpdates poller at a time, no getUpdates while a
webhook is set. Error descriptions follow Telegram's wording ("Bad Request: chat not found").

Not modelled: MarkdownV2 parsing, pushing updates to the webhook by itself (call `deliver_webhook`),
the 24 h retention of updates, groups beyond a chat dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import json
import mimetypes
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from otklik.testing.loopback import serve_on_loopback

DEFAULT_TOKEN = "123456:TEST-token-for-otklik"  # noqa: S105 - a fake token for tests
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
TEXT_LIMIT, CAPTION_LIMIT, CALLBACK_DATA_LIMIT = 4096, 1024, 64
DOWNLOAD_LIMIT = 20 * 1024 * 1024
_JSON_FIELDS = {
    "reply_markup",
    "allowed_updates",
    "entities",
    "caption_entities",
    "link_preview_options",
    "reply_parameters",
    "media",
}
_METHODS = {
    name.lower(): name
    for name in (
        "getMe",
        "getUpdates",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendChatAction",
        "answerCallbackQuery",
        "editMessageReplyMarkup",
        "getFile",
    )
}
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answer: `{"ok": false, "error_code": status, "description": ...}`."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return JSONResponse(body, status_code=self.status)


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


# --- records -------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One request as the server received it. `params` has JSON-encoded fields decoded."""

    method: str
    token: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    at: float
    http_method: str
    status: int | None = None


@dataclass
class Fault:
    """Answer the next `times` matching calls (None: all of them) with an error or after a delay."""

    method: str | None  # None: any method
    status: int | None = None  # None: no error, only `delay`
    description: str | None = None
    retry_after: int | None = None
    chat_id: str | None = None
    times: int | None = 1
    delay: float = 0.0
    body: str | None = None  # a raw non-JSON body (an HTML 502 page from a proxy)
    after: int = 0  # let this many matching calls pass first ("the second part fails")

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or str(params.get("chat_id")) == self.chat_id


@dataclass
class FakeFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    declared_size: int | None = None  # pretend to be bigger than `data` (for size-limit tests)

    @property
    def size(self) -> int:
        return self.declared_size if self.declared_size is not None else len(self.data)

    def as_file(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
            "file_path": self.file_path,
        }


@dataclass
class BotState:
    token: str
    user: dict[str, Any]
    updates: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 100_000
    webhook: dict[str, Any] = field(default_factory=dict)  # url, secret_token, allowed_updates, ...
    webhook_deliveries: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    sent: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    last_message_id: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    chats: dict[int, dict[str, Any]] = field(default_factory=dict)
    callback_queries: dict[str, bool] = field(default_factory=dict)  # id -> answered
    callback_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    unknown_chats: set[int] = field(default_factory=set)
    poll_generation: int = 0
    retired: bool = False  # replaced by `FakeTelegramServer.reset`
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def next_message_id(self, chat_id: int) -> int:
        """Message ids are per chat and shared by both sides of a private chat."""
        self.last_message_id[chat_id] += 1
        return self.last_message_id[chat_id]

    def chat(self, chat_id: int) -> dict[str, Any]:
        if chat_id in self.chats:
            return self.chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "first_name": "Покупатель", "type": "private"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "title": "Group", "type": kind}


# --- HTML parse mode ----------------------------------------------------------------------------

_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)([^<>]*)>")
_ENTITY_RE = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """What the buyer sees for a text sent with parse_mode=HTML: plain text and entities (UTF-16).

    Raises `ApiError` 400 "can't parse entities" like Telegram for unknown, unclosed or mismatched tags
    and for a bare `<`.
    """
    out: list[str] = []
    offset = 0
    stack: list[tuple[str, int, str]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "<":
            match = _TAG_RE.match(source, i)
            at = len(source[:i].encode())
            if match is None:
                raise bad_request(f"can't parse entities: Unexpected character '<' at byte offset {at}")
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
            if name not in _TAG_TYPES:
                raise bad_request(f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {at}')
            if not closing:
                stack.append((name, offset, attrs))
            else:
                if not stack or stack[-1][0] != name:
                    raise bad_request(f"can't parse entities: Unexpected end tag at byte offset {at}")
                tag, start, tag_attrs = stack.pop()
                if offset > start:
                    entities.append(_entity(tag, start, offset - start, tag_attrs))
            i = match.end()
            continue
        if char == "&" and (entity := _ENTITY_RE.match(source, i)):
            char = _decode_entity(entity.group(1))
            i = entity.end()
        else:
            i += 1
        out.append(char)
        offset += utf16_len(char)
    if stack:
        raise bad_request(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _decode_entity(name: str) -> str:
    if name.startswith("#x"):
        return chr(int(name[2:], 16))
    if name.startswith("#"):
        return chr(int(name[1:]))
    return _NAMED[name]


def _entity(tag: str, offset: int, length: int, attrs: str) -> dict[str, Any]:
    entity: dict[str, Any] = {"type": _TAG_TYPES[tag], "offset": offset, "length": length}
    href = re.search(r'href\s*=\s*"([^"]*)"', attrs)
    if tag == "a" and href:
        entity["url"] = href.group(1)
    return entity


@contextlib.asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 at a free port; yields its base URL.

    Also handy for a webhook receiver in tests (`FakeTelegramServer.deliver_webhook` posts to it).
    """
    served = await serve_on_loopback(app, grace=2)
    try:
        yield f"http://127.0.0.1:{served.port}"
    finally:
        served.server.should_exit = True
        await served.task
        served.sock.close()


# --- the server ------------------------------------------------------------------------------------


class FakeTelegramServer:
    """The fake Bot API. Use as `async with FakeTelegramServer() as fake:`; `fake.base_url` is the
    value for `TelegramAPIServer.from_base`."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "otklik_test_bot",
        first_name: str = "Otklik Test",
    ) -> None:
        self._closing = False
        self._stack = contextlib.AsyncExitStack()
        self._ids = itertools.count(1)
        self.base_url = ""
        self.default_token = token
        self._default_bot = {"username": username, "first_name": first_name}
        self.reset()

    def reset(self) -> None:
        """Forget everything (calls, bots but the default one, updates, files, faults), keep serving.

        Lets one server serve many tests. Requests still in progress (a long poll a test abandoned)
        finish against the old state and return at once.
        """
        for old in getattr(self, "_bots", {}).values():
            old.retired = True
            old.notify()
        self.calls: list[Call] = []
        self.url_files: dict[str, tuple[bytes, str]] = {}  # URL -> (bytes, content type) for sendPhoto
        self._bots: dict[str, BotState] = {}
        self._files: dict[str, dict[str, FakeFile]] = defaultdict(dict)  # token -> file_id -> file
        self._faults: list[Fault] = []
        self.add_bot(self.default_token, **self._default_bot)

    # lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegramServer:
        self._stack = contextlib.AsyncExitStack()
        self.base_url = await self._stack.enter_async_context(serve_asgi(self.app()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing = True
        self.reset()  # wakes long polls so that the server can shut down
        await self._stack.aclose()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/file/bot{token}/{file_path:path}", self._download, methods=["GET"]),
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
            ]
        )

    # setup helpers for tests -------------------------------------------------------------------

    def add_bot(self, token: str, *, username: str = "second_test_bot", first_name: str = "Bot") -> BotState:
        """Register a token; calls with an unregistered token get 401 Unauthorized."""
        bot_id = int(token.partition(":")[0])
        user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._bots[token] = BotState(token=token, user=user)
        return self._bots[token]

    def bot(self, token: str | None = None) -> BotState:
        return self._bots[token or self.default_token]

    def fail(
        self,
        method: str | None,
        status: int,
        *,
        description: str | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
        chat_id: int | str | None = None,
        body: str | None = None,
        after: int = 0,
    ) -> Fault:
        """The next `times` calls of `method` (for `chat_id`, if given; after letting `after` matching
        calls pass) answer `status`."""
        fault = Fault(
            method=method,
            status=status,
            description=description or _DEFAULT_DESCRIPTIONS.get(status, "Error"),
            retry_after=retry_after,
            chat_id=None if chat_id is None else str(chat_id),
            times=times,
            body=body,
            after=after,
        )
        self._faults.append(fault)
        return fault

    def rate_limit(self, method: str | None, retry_after: int = 1, *, times: int = 1, after: int = 0) -> Fault:
        description = f"Too Many Requests: retry after {retry_after}"
        return self.fail(method, 429, description=description, retry_after=retry_after, times=times, after=after)

    def server_error(
        self, method: str | None, *, status: int = 500, times: int = 1, html: bool = False, after: int = 0
    ) -> Fault:
        """5xx; `html=True` answers a proxy's HTML page instead of JSON, as a broken gateway does."""
        body = f"<html><body><h1>{status}</h1></body></html>" if html else None
        return self.fail(method, status, times=times, body=body, after=after)

    def slow(self, method: str | None, seconds: float, *, times: int | None = 1) -> Fault:
        fault = Fault(method=method, delay=seconds, times=times)
        self._faults.append(fault)
        return fault

    def block_chat(self, chat_id: int, token: str | None = None) -> None:
        """The buyer blocked the bot: sends to the chat answer 403 until `unblock_chat`."""
        self.bot(token).blocked.add(chat_id)

    def unblock_chat(self, chat_id: int, token: str | None = None) -> None:
        self.bot(token).blocked.discard(chat_id)

    def chat_not_found(self, chat_id: int, token: str | None = None) -> None:
        self.bot(token).unknown_chats.add(chat_id)

    def store_file(
        self,
        data: bytes,
        *,
        folder: str = "documents",
        extension: str = "bin",
        declared_size: int | None = None,
        token: str | None = None,
    ) -> FakeFile:
        """Keep bytes the bot can fetch with getFile + the file route."""
        number = next(self._ids)
        digest = hashlib.sha256(data + str(number).encode()).hexdigest()
        file = FakeFile(
            file_id=f"BQACAgIAAxkBAA{digest[:24]}",
            file_unique_id=f"AgAD{digest[24:36]}",
            file_path=f"{folder}/file_{number}.{extension}",
            data=data,
            declared_size=declared_size,
        )
        self._files[token or self.default_token][file.file_id] = file
        return file

    def queue_update(self, update: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        """Make an update available to getUpdates (an `update_id` is assigned when missing)."""
        bot = self.bot(token)
        if "update_id" not in update:
            update = {"update_id": self._next_update_id(bot), **update}
        bot.updates.append(update)
        bot.updates.sort(key=lambda u: u["update_id"])
        self._register_callback(bot, update)
        bot.notify()
        return update

    def pending_updates(self, token: str | None = None) -> list[dict[str, Any]]:
        return list(self.bot(token).updates)

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def sent_messages(self, chat_id: int, token: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent to a chat, as Telegram would show them (oldest first)."""
        return list(self.bot(token).sent.get(chat_id, []))

    async def deliver_webhook(
        self,
        update: dict[str, Any],
        *,
        url: str | None = None,
        secret: str | None = None,
        token: str | None = None,
        http_timeout: float = 10.0,
    ) -> int:
        """POST an update like Telegram does: JSON body, the secret header when one was set.

        `url` overrides the registered webhook (Telegram insists on HTTPS, a test server is HTTP);
        `secret` overrides the registered secret (to test a forged request). Returns the status code
        and records non-2xx answers in getWebhookInfo.
        """
        bot = self.bot(token)
        target = url or bot.webhook.get("url")
        if not target:
            raise RuntimeError("no webhook set and no url given")
        self._register_callback(bot, update)
        headers = {"Content-Type": "application/json"}
        secret = secret if secret is not None else bot.webhook.get("secret_token")
        if secret:
            headers[SECRET_HEADER] = secret
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            response = await client.post(target, content=json.dumps(update).encode(), headers=headers)
        bot.webhook_deliveries.append((update, response.status_code))
        if not 200 <= response.status_code < 300:
            bot.webhook["last_error_date"] = int(time.time())
            bot.webhook["last_error_message"] = f"Wrong response from the webhook: {response.status_code}"
        return response.status_code

    # update builders (realistic JSON as Telegram sends it) ------------------------------------------

    def text_update(self, chat_id: int, text: str, *, user: dict[str, Any] | None = None) -> dict[str, Any]:
        message = self._incoming(chat_id, user, text=text)
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"offset": 0, "length": utf16_len(command), "type": "bot_command"}]
        return self._update("message", message)

    def photo_update(
        self, chat_id: int, data: bytes, *, caption: str | None = None, declared_size: int | None = None
    ) -> dict[str, Any]:
        """A photo from the buyer; the fake keeps the bytes, so getFile + download work."""
        sizes = self._photo_sizes(data, declared_size=declared_size)
        message = self._incoming(chat_id, None, photo=sizes)
        if caption:
            message["caption"] = caption
        return self._update("message", message)

    def document_update(
        self,
        chat_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str,
        declared_size: int | None = None,
    ) -> dict[str, Any]:
        extension = file_name.rpartition(".")[2] or "bin"
        file = self.store_file(data, folder="documents", extension=extension, declared_size=declared_size)
        document = {
            "file_name": file_name,
            "mime_type": mime_type,
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.size,
        }
        return self._update("message", self._incoming(chat_id, None, document=document))

    def contact_update(self, chat_id: int, phone: str, *, own: bool = True) -> dict[str, Any]:
        user = self._user(chat_id)
        contact = {"phone_number": phone, "first_name": user["first_name"]}
        if own:
            contact["user_id"] = chat_id
        return self._update("message", self._incoming(chat_id, None, contact=contact))

    def callback_update(self, chat_id: int, data: str, *, message_id: int | None = None) -> dict[str, Any]:
        """The buyer pressed an inline button under a message the bot sent (the last one by default)."""
        bot = self.bot()
        sent = bot.sent.get(chat_id) or []
        message = next((m for m in reversed(sent) if message_id in (None, m["message_id"])), None)
        if message is None:
            message = {
                "message_id": message_id or 1,
                "from": bot.user,
                "chat": bot.chat(chat_id),
                "date": int(time.time()),
                "text": "…",
            }
        query = {
            "id": str(next(self._ids) * 1_000_003 + chat_id),
            "from": self._user(chat_id),
            "message": message,
            "chat_instance": str(-abs(hash((chat_id, bot.token))) % 10**18),
            "data": data,
        }
        update = self._update("callback_query", query)
        self._register_callback(bot, update)
        return update

    def edited_text_update(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        message = self._incoming(chat_id, None, text=text)
        message["message_id"] = message_id
        message["edit_date"] = message["date"] + 5
        return self._update("edited_message", message)

    def member_update(self, chat_id: int, *, blocked: bool) -> dict[str, Any]:
        """my_chat_member: the buyer blocked (status "kicked") or unblocked ("member") the bot."""
        bot = self.bot()
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        new_member: dict[str, Any] = {"user": bot.user, "status": new}
        if blocked:
            new_member["until_date"] = 0
        member = {
            "chat": bot.chat(chat_id),
            "from": self._user(chat_id),
            "date": int(time.time()),
            "old_chat_member": {"user": bot.user, "status": old},
            "new_chat_member": new_member,
        }
        return self._update("my_chat_member", member)

    def _user(self, chat_id: int) -> dict[str, Any]:
        chat = self.bot().chat(chat_id)
        return {
            "id": chat_id,
            "is_bot": False,
            "first_name": chat.get("first_name", "Покупатель"),
            **({"last_name": chat["last_name"]} if "last_name" in chat else {}),
            "language_code": "ru",
        }

    def _incoming(self, chat_id: int, user: dict[str, Any] | None, **content: Any) -> dict[str, Any]:
        bot = self.bot()
        if user is not None:
            bot.chats[chat_id] = {
                "id": chat_id,
                "type": "private",
                **{k: user[k] for k in ("first_name", "last_name", "username") if k in user},
            }
        sender = user or self._user(chat_id)
        return {
            "message_id": bot.next_message_id(chat_id),
            "from": {"is_bot": False, **sender, "id": chat_id},
            "chat": bot.chat(chat_id),
            "date": int(time.time()),
            **content,
        }

    def _update(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"update_id": self._next_update_id(self.bot()), kind: body}

    @staticmethod
    def _next_update_id(bot: BotState) -> int:
        bot.next_update_id += 1
        return bot.next_update_id

    @staticmethod
    def _register_callback(bot: BotState, update: dict[str, Any]) -> None:
        query = update.get("callback_query")
        if isinstance(query, dict) and "id" in query:
            bot.callback_queries.setdefault(str(query["id"]), False)

    def _photo_sizes(
        self, data: bytes, *, declared_size: int | None = None, token: str | None = None
    ) -> list[dict[str, Any]]:
        """A thumbnail and the full picture, like Telegram's `photo` array (largest last)."""
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                thumb = image.convert("RGB")
                thumb.thumbnail((90, 90))
                buffer = io.BytesIO()
                thumb.save(buffer, format="JPEG")
        except (UnidentifiedImageError, OSError) as error:
            raise bad_request("IMAGE_PROCESS_FAILED") from error
        sizes = []
        for blob, w, h, declared in (
            (buffer.getvalue(), thumb.width, thumb.height, None),
            (data, width, height, declared_size),
        ):
            file = self.store_file(blob, folder="photos", extension="jpg", declared_size=declared, token=token)
            sizes.append(
                {
                    "file_id": file.file_id,
                    "file_unique_id": file.file_unique_id,
                    "file_size": file.size,
                    "width": w,
                    "height": h,
                }
            )
        return sizes

    # HTTP ------------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        token = request.path_params["token"]
        raw_method = request.path_params["method"]
        method = _METHODS.get(raw_method.lower(), raw_method)
        try:
            params, files = await _read_params(request)
        except ApiError as error:
            params, files = {}, {}
            parse_error: ApiError | None = error
        else:
            parse_error = None
        call = Call(method, token, params, files, time.time(), request.method)
        self.calls.append(call)
        response = await self._answer(call, parse_error)
        call.status = response.status_code
        return response

    async def _answer(self, call: Call, parse_error: ApiError | None) -> Response:
        bot = self._bots.get(call.token)
        if bot is None:
            return ApiError(401, "Unauthorized").response()
        if call.method.lower() not in _METHODS:
            return ApiError(404, "Not Found").response()
        if parse_error is not None:
            return parse_error.response()
        fault = await self._take_fault(call)
        if fault is not None:
            if fault.body is not None:
                return PlainTextResponse(fault.body, status_code=fault.status or 500, media_type="text/html")
            return ApiError(fault.status or 500, fault.description or "Error", fault.retry_after).response()
        handler = getattr(self, "_m_" + call.method)
        try:
            result, description = await handler(bot, call.params, call.files)
        except ApiError as error:
            return error.response()
        body: dict[str, Any] = {"ok": True, "result": result}
        if description:
            body["description"] = description
        return JSONResponse(body)

    async def _take_fault(self, call: Call) -> Fault | None:
        for fault in list(self._faults):
            if not fault.matches(call.method, call.params):
                continue
            if fault.after > 0:
                fault.after -= 1
                continue
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return fault
        return None

    async def _download(self, request: Request) -> Response:
        token = request.path_params["token"]
        path = request.path_params["file_path"]
        self.calls.append(Call("file", token, {"file_path": path}, {}, time.time(), "GET"))
        if token not in self._bots:
            return ApiError(401, "Unauthorized").response()
        file = next((f for f in self._files[token].values() if f.file_path == path), None)
        if file is None:
            return ApiError(404, "Not Found").response()
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(file.data, media_type=content_type)

    # methods -----------------------------------------------------------------------------------

    async def _m_getMe(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        return bot.user, ""

    async def _m_getUpdates(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        if bot.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _opt_int(p, "offset")
        limit = min(max(_opt_int(p, "limit") or 100, 1), 100)
        timeout = max(_opt_int(p, "timeout") or 0, 0)
        if "allowed_updates" in p:
            bot.webhook["allowed_updates"] = p["allowed_updates"] or None
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.notify()  # an earlier poll still waiting is terminated (409) below
        _confirm(bot, offset)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if generation != bot.poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
            allowed = bot.webhook.get("allowed_updates")
            batch = [u for u in bot.updates if not allowed or _update_type(u) in allowed][:limit]
            remaining = deadline - asyncio.get_running_loop().time()
            if batch or remaining <= 0 or self._closing or bot.retired:
                return batch, ""
            changed = bot.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _m_setWebhook(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        url = str(p.get("url") or "")
        if not url:
            bot.webhook = {}
            return True, "Webhook was deleted"
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if (parts.port or 443) not in (80, 88, 443, 8443):
            raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = p.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if _flag(p, "drop_pending_updates"):
            bot.updates.clear()
        bot.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": min(max(_opt_int(p, "max_connections") or 40, 1), 100),
            "allowed_updates": p.get("allowed_updates") or None,
        }
        return True, "Webhook was set"

    async def _m_deleteWebhook(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        had = bool(bot.webhook.get("url"))
        bot.webhook = {}
        if _flag(p, "drop_pending_updates"):
            bot.updates.clear()
        return True, "Webhook was deleted" if had else "Webhook is already deleted"

    async def _m_getWebhookInfo(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        info: dict[str, Any] = {
            "url": bot.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }
        for key in ("max_connections", "allowed_updates", "last_error_date", "last_error_message"):
            if bot.webhook.get(key) is not None and info["url"]:
                info[key] = bot.webhook[key]
        return info, ""

    async def _m_sendMessage(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        chat_id = _target_chat(bot, p)
        text, entities = _visible(p, "text")
        if not text.strip():
            raise bad_request("message text is empty")
        if utf16_len(text) > TEXT_LIMIT:
            raise bad_request("message is too long")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return _store(bot, chat_id, content, _markup(p)), ""

    async def _m_sendPhoto(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        chat_id = _target_chat(bot, p)
        content = _caption(p)
        data = self._input_file(bot, p, f, "photo")
        content["photo"] = self._photo_sizes(data, token=bot.token)
        return _store(bot, chat_id, content, _markup(p)), ""

    async def _m_sendDocument(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        chat_id = _target_chat(bot, p)
        content = _caption(p)
        data = self._input_file(bot, p, f, "document")
        upload = _upload_for(p, f, "document")
        name = upload.filename if upload and upload.filename else "document"
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        extension = name.rpartition(".")[2] if "." in name else "bin"
        file = self.store_file(data, folder="documents", extension=extension, token=bot.token)
        content["document"] = {
            "file_name": name,
            "mime_type": mime,
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.size,
        }
        return _store(bot, chat_id, content, _markup(p)), ""

    async def _m_sendChatAction(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        _target_chat(bot, p)
        return True, ""

    async def _m_answerCallbackQuery(
        self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]
    ) -> tuple[Any, str]:
        query_id = str(p.get("callback_query_id") or "")
        if bot.callback_queries.get(query_id, True):  # unknown or answered already
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        bot.callback_queries[query_id] = True
        bot.callback_answers[query_id] = dict(p)
        return True, ""

    async def _m_editMessageReplyMarkup(
        self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]
    ) -> tuple[Any, str]:
        chat_id = _target_chat(bot, p)
        message_id = _opt_int(p, "message_id")
        message = next((m for m in bot.sent.get(chat_id, []) if m["message_id"] == message_id), None)
        if message is None:
            raise bad_request("message to edit not found")
        markup = _markup(p)
        if markup == message.get("reply_markup"):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly the "
                "same as a current content and reply markup of the message"
            )
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        return {**message, "edit_date": int(time.time())}, ""

    async def _m_getFile(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile]) -> tuple[Any, str]:
        file = self._files[bot.token].get(str(p.get("file_id") or ""))
        if file is None:
            raise bad_request("invalid file_id")
        if file.size > DOWNLOAD_LIMIT:
            raise bad_request("file is too big")
        return file.as_file(), ""

    def _input_file(self, bot: BotState, p: dict[str, Any], f: dict[str, UploadedFile], name: str) -> bytes:
        """An InputFile: a multipart upload (direct or `attach://<part>`), a known file_id, or a URL."""
        upload = _upload_for(p, f, name)
        if upload is not None:
            if not upload.data:
                raise bad_request("file must be non-empty")
            return upload.data
        value = p.get(name)
        if not isinstance(value, str) or not value:
            raise bad_request(f"there is no {name} in the request")
        if value.startswith(("http://", "https://")):
            if value not in self.url_files:
                raise bad_request("failed to get HTTP URL content")
            return self.url_files[value][0]
        file = self._files[bot.token].get(value)
        if file is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return file.data


# --- request helpers ---------------------------------------------------------------------------------


async def _read_params(request: Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    params: dict[str, Any] = dict(request.query_params)
    files: dict[str, UploadedFile] = {}
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith("application/json"):
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError as error:
            raise bad_request("can't parse JSON request body") from error
        if not isinstance(body, dict):
            raise bad_request("request body must be a JSON object")
        params.update(body)
    elif request.method == "POST" and content_type.startswith(
        ("multipart/form-data", "application/x-www-form-urlencoded")
    ):
        form = await request.form(max_part_size=8 * 1024 * 1024)
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    files[key] = UploadedFile(key, value.filename, value.content_type, data)
                else:
                    params[key] = value
        finally:
            await form.close()
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError as error:
                raise bad_request(f"can't parse {key} JSON object") from error
    return params, files


def _opt_int(p: dict[str, Any], name: str) -> int | None:
    value = p.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as error:
        raise bad_request(f"invalid {name} specified") from error


def _flag(p: dict[str, Any], name: str) -> bool:
    value = p.get(name)
    return value is True or str(value).lower() in ("true", "1")


def _confirm(bot: BotState, offset: int | None) -> None:
    if offset is None:
        return
    if offset < 0:
        bot.updates[:] = bot.updates[offset:]
    else:
        bot.updates[:] = [u for u in bot.updates if u["update_id"] >= offset]


def _update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def _target_chat(bot: BotState, p: dict[str, Any]) -> int:
    try:
        chat_id = int(p.get("chat_id"))  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise bad_request("chat not found") from error
    if chat_id in bot.unknown_chats:
        raise bad_request("chat not found")
    if chat_id in bot.blocked:
        raise ApiError(403, "Forbidden: bot was blocked by the user")
    return chat_id


def _visible(p: dict[str, Any], name: str) -> tuple[str, list[dict[str, Any]]]:
    source = str(p.get(name) or "")
    if str(p.get("parse_mode") or "").upper() == "HTML":
        return parse_html(source)
    return source, list(p.get("entities") or p.get("caption_entities") or [])


def _caption(p: dict[str, Any]) -> dict[str, Any]:
    if not p.get("caption"):
        return {}
    caption, entities = _visible(p, "caption")
    if utf16_len(caption) > CAPTION_LIMIT:
        raise bad_request("message caption is too long")
    content: dict[str, Any] = {"caption": caption}
    if entities:
        content["caption_entities"] = entities
    return content


def _upload_for(p: dict[str, Any], f: dict[str, UploadedFile], name: str) -> UploadedFile | None:
    value = p.get(name)
    if isinstance(value, str) and value.startswith("attach://"):
        upload = f.get(value.removeprefix("attach://"))
        if upload is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        return upload
    return f.get(name)


_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


def _markup(p: dict[str, Any]) -> dict[str, Any] | None:
    """Validate reply_markup like Telegram; only inline keyboards are echoed back in the Message."""
    markup = p.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array')
        for button in (b for row in rows for b in row):
            _check_inline_button(button)
        return {"inline_keyboard": rows}
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) and row for row in rows):
            raise bad_request("can't parse keyboard button: keyboard must be an Array of Arrays")
        for button in (b for row in rows for b in row):
            text = button if isinstance(button, str) else button.get("text") if isinstance(button, dict) else None
            if not text:
                raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
        return None
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return None
    raise bad_request("can't parse reply keyboard markup JSON object")


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    actions = [name for name in _BUTTON_ACTIONS if name in button]
    if len(actions) != 1:
        raise bad_request("can't parse inline keyboard button: exactly one of the optional fields must be used")
    data = button.get("callback_data")
    if "callback_data" in button and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
        raise bad_request("BUTTON_DATA_INVALID")


def _store(bot: BotState, chat_id: int, content: dict[str, Any], markup: dict[str, Any] | None) -> dict[str, Any]:
    message = {
        "message_id": bot.next_message_id(chat_id),
        "from": bot.user,
        "chat": bot.chat(chat_id),
        "date": int(time.time()),
        **content,
    }
    if markup:
        message["reply_markup"] = markup
    bot.sent[chat_id].append(message)
    return message
