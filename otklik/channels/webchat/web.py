"""The web chat API: sessions, messages in (text, button, file) and replies out (long-poll)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import String, cast, select

from otklik.adapters.db.engine import raw_read
from otklik.adapters.db.models import ContactIdentity, Conversation, Message
from otklik.adapters.media import MediaTooLarge
from otklik.channels.webchat import ACCOUNT as WEBCHAT_ACCOUNT
from otklik.config import Settings
from otklik.conversations.ratelimit import SlidingWindow
from otklik.conversations.statuses import MessageStatus
from otklik.core.errors import InvalidInput, NotFound, RateLimited, TooLarge
from otklik.core.messages import Attachment, EventKind, InboundEvent, strip_controls
from otklik.platform.webkit import client_ip
from otklik.platform.webkit.params import QueryCursor

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

router = APIRouter(prefix="/api/webchat", tags=["webchat"])
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_MEDIA_ID = re.compile(r"[0-9a-f]{64}")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers, the caption and client_id fields
_CAPTION_CHARS = 1024
_WINDOW = 60.0  # seconds of every web chat rate limit


class NewSession(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]*$", description="deep-link payload")
    language: str | None = Field(None, max_length=8, pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")
    name: str | None = Field(None, max_length=100)


class InMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    button: str | None = Field(None, max_length=256)
    client_id: str | None = Field(
        None,
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="idempotency key: a retried POST with the same id is answered once",
    )

    @model_validator(mode="after")
    def _one_of(self) -> InMessage:
        if (self.text is None) == (self.button is None):
            raise ValueError("send exactly one of 'text' or 'button'")
        return self


def _otklik(request: Request) -> Otklik:
    otklik: Otklik = request.app.state.otklik
    return otklik


def client_address(request: Request) -> str:
    """The address rate limits count per (`X-Forwarded-For` only from `trusted_proxies`)."""
    return client_ip.client_address(request)


class WebchatLimits:
    """The web chat's in-process rate limits (see `Settings.webchat_*`)."""

    def __init__(self, settings: Settings) -> None:
        self.sessions_per_address = SlidingWindow(settings.webchat_sessions_per_address, _WINDOW)
        self.messages_per_address = SlidingWindow(settings.webchat_messages_per_address, _WINDOW)
        self.messages_per_session = SlidingWindow(settings.webchat_messages_per_session, _WINDOW)
        self.uploads_per_session = SlidingWindow(settings.webchat_uploads_per_session, _WINDOW)
        self._upload_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def upload_lock(self, sender: str) -> asyncio.Lock:
        """One upload of a chat at a time in this process, so two at once cannot both pass the quota."""
        lock = self._upload_locks.get(sender)
        if lock is None:
            lock = self._upload_locks[sender] = asyncio.Lock()
        return lock


def _limits(request: Request) -> WebchatLimits:
    limits: WebchatLimits | None = getattr(request.app.state, "webchat_limits", None)
    if limits is None:
        limits = request.app.state.webchat_limits = WebchatLimits(_otklik(request).settings)
    return limits


def _check(window: SlidingWindow, key: str, what: str) -> None:
    retry_after = window.hit(key)
    if retry_after is not None:
        raise RateLimited(
            f"too many {what}: at most {window.limit} per minute; try again in {max(1, round(retry_after))} s",
            retry_after,
        )


def _sender_key(session_id: str) -> str:
    """Only a hash of the session token is stored: the token itself is the buyer's bearer secret."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:48]


def _account_id(otklik: Otklik) -> int:
    for account in otklik.ctx.accounts.values():
        if account.name == WEBCHAT_ACCOUNT:
            return account.id
    raise NotFound("web chat is not enabled")


@router.post("/sessions", status_code=201)
async def create_session(request: Request, body: NewSession | None = None) -> dict[str, Any]:
    otklik = _otklik(request)
    _check(_limits(request).sessions_per_address, client_address(request), "new chats from this address")
    body = body or NewSession()
    session_id = secrets.token_urlsafe(32)
    start = body.start or ""
    language = body.language or _accept_language(request)
    result = await otklik.ingest(
        InboundEvent(
            channel_account_id=_account_id(otklik),
            external_id=_external_id(_sender_key(session_id), "start"),
            sender_id=_sender_key(session_id),
            kind=EventKind.TEXT,
            text=f"/start {start}".strip(),
            payload=start or None,
            language=language,
            sender_name=body.name,
        )
    )
    return {"session_id": session_id, "cursor": 0, "conversation_id": result.conversation_id}


@router.post("/sessions/{session_id}/messages", status_code=202)
async def post_message(request: Request, session_id: str) -> dict[str, Any]:
    otklik = _otklik(request)
    conversation_id = await _conversation(otklik, session_id)
    limits = _limits(request)
    _check(limits.messages_per_address, client_address(request), "messages from this address")
    _check(limits.messages_per_session, _sender_key(session_id), "messages in this chat")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        _check(limits.uploads_per_session, _sender_key(session_id), "files in this chat")
        async with limits.upload_lock(_sender_key(session_id)):
            event = await _file_event(request, otklik, session_id, conversation_id)
            result = await otklik.ingest(event)
    else:
        event = await _json_event(request, otklik, session_id)
        result = await otklik.ingest(event)
    return {"accepted": True, "duplicate": result.duplicate, "conversation_id": conversation_id}


@router.get("/sessions/{session_id}/messages")
async def get_messages(
    request: Request,
    session_id: str,
    after: QueryCursor = 0,
    wait: Annotated[float, Query(ge=0, le=60)] = 0,
    mine: bool = False,
) -> dict[str, Any]:
    """The bot's and operators' messages after the cursor; `wait` long-polls up to that many seconds.
    `mine=true` also returns the buyer's own messages (to restore the chat after a reload)."""
    otklik = _otklik(request)
    conversation_id = await _conversation(otklik, session_id)
    wait = min(wait, otklik.settings.webchat_poll_max_seconds)
    deadline = wait
    notifier = otklik.ctx.notifier
    while True:
        seen = notifier.version(conversation_id)  # before the query, so a delivery in between wakes us
        messages = await _replies(otklik, conversation_id, after, mine)
        if messages or deadline <= 0:
            break
        step = min(deadline, 1.0)  # other processes deliver too: poll the database at least every second
        await notifier.wait_delivery(conversation_id, step, seen)
        deadline -= step
    cursor = messages[-1]["id"] if messages else after
    return {"messages": messages, "cursor": cursor}


@router.get("/sessions/{session_id}/media/{media_id}")
async def get_media(request: Request, session_id: str, media_id: str) -> Response:
    otklik = _otklik(request)
    conversation_id = await _conversation(otklik, session_id)
    if not await _references(otklik, conversation_id, media_id):
        raise NotFound("no such file")  # the same answer as for a file that does not exist
    try:
        data = await otklik.ctx.media.read(media_id)
    except KeyError:
        raise NotFound("no such file") from None
    media_type = "image/png" if data.startswith(_IMAGE_MAGIC[0]) else "application/octet-stream"
    if data.startswith(_IMAGE_MAGIC[1]):
        media_type = "image/jpeg"
    return Response(data, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})


async def _conversation(otklik: Otklik, session_id: str) -> int:
    """The session's conversation (a session never changes conversation, so the answer is cached)."""
    if not 20 <= len(session_id) <= 100:
        raise NotFound("unknown session")
    cache = otklik.webchat_sessions
    key = _sender_key(session_id)
    if key in cache:
        return cache[key]
    async with otklik.db.read() as session:
        conversation_id = await session.scalar(
            select(Conversation.id)
            .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
            .where(
                ContactIdentity.channel_account_id == _account_id(otklik),
                ContactIdentity.external_id == _sender_key(session_id),
            )
        )
    if conversation_id is None:
        raise NotFound("unknown session")
    cache[key] = int(conversation_id)
    if len(cache) > 100_000:
        cache.pop(next(iter(cache)))
    return int(conversation_id)


async def _json_event(request: Request, otklik: Otklik, session_id: str) -> InboundEvent:
    limit = otklik.settings.max_text_chars
    raw = await _read_capped(request, limit * 6 + 1024, f"message too long: the limit is {limit} characters")
    try:
        body = InMessage.model_validate_json(raw or b"{}")
    except ValueError as exc:
        raise InvalidInput(_first_error(exc)) from None
    sender = _sender_key(session_id)
    external_id = _external_id(sender, body.client_id)
    account = _account_id(otklik)
    if body.button is not None:
        return InboundEvent(account, external_id, sender, EventKind.BUTTON, payload=body.button)
    text = strip_controls(body.text or "").strip()
    if not text:
        raise InvalidInput("message is empty")
    if len(text) > limit:  # refused whole, never cut: the page keeps the text for the buyer to shorten
        raise InvalidInput(f"message too long: {len(text)} characters, the limit is {limit}")
    return InboundEvent(account, external_id, sender, EventKind.TEXT, text=text)


async def _file_event(request: Request, otklik: Otklik, session_id: str, conversation_id: int) -> InboundEvent:
    """Everything is checked before the media store writes: a refused upload leaves nothing on disk."""
    limit = otklik.settings.max_upload_bytes
    too_large = f"file is larger than the limit of {limit // (1024 * 1024) or 1} MB"
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD:
        raise TooLarge(too_large)
    body = await _read_capped(request, limit + _MULTIPART_OVERHEAD, too_large)  # chunked bodies too
    async with _replay(request, body).form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("attach a file in the 'file' field")
        client_id = form.get("client_id")
        if client_id is not None and (not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id)):
            raise InvalidInput("client_id: 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        caption = form.get("text")
        caption = (strip_controls(caption).strip() or None) if isinstance(caption, str) else None
        if caption and len(caption) > _CAPTION_CHARS:
            raise InvalidInput(f"caption too long: {len(caption)} characters, the limit is {_CAPTION_CHARS}")
        data = await upload.read(limit + 1)
        content_type = upload.content_type or "application/octet-stream"
        filename = (upload.filename or "")[:200] or None
    if not data:
        raise InvalidInput("the file is empty")
    if len(data) > limit:
        raise TooLarge(too_large)
    await _check_quota(otklik, conversation_id, len(data))
    try:
        stored = await otklik.ctx.media.save(data, content_type, filename)
    except MediaTooLarge:
        raise TooLarge(too_large) from None
    is_image = data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    kind = "photo" if is_image else "file"
    external_id = _external_id(_sender_key(session_id), client_id)
    return InboundEvent(
        _account_id(otklik),
        external_id,
        _sender_key(session_id),
        EventKind.PHOTO if is_image else EventKind.FILE,
        text=caption,
        attachments=(
            Attachment(
                kind=kind,
                media_id=stored.media_id,
                filename=stored.filename,
                content_type=stored.content_type,
                size=stored.size,
            ),
        ),
    )


async def _read_capped(request: Request, cap: int, too_large: str) -> bytes:
    """The request body, refused with 413 as soon as it passes `cap` bytes (never read whole first)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TooLarge(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(request: Request, body: bytes) -> Request:
    """A request that reads `body` (already taken from the client) as its body."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


async def _check_quota(otklik: Otklik, conversation_id: int, size: int) -> None:
    """The chat's files so far (from its messages, so the quota holds across restarts and processes)."""
    settings = otklik.settings
    async with otklik.db.read() as session:
        payloads = (
            await session.scalars(
                select(Message.payload).where(
                    Message.conversation_id == conversation_id,
                    Message.direction == "in",
                    Message.kind.in_(("photo", "file")),
                )
            )
        ).all()
    files = [a for p in payloads for a in (p or {}).get("attachments", []) if isinstance(a, dict) and a.get("media_id")]
    max_files, max_bytes = settings.webchat_media_files_per_session, settings.webchat_media_bytes_per_session
    if max_files and len(files) >= max_files:
        raise TooLarge(f"this chat already has {len(files)} files, the limit is {max_files}")
    used = sum(int(a.get("size") or 0) for a in files)
    if max_bytes and used + size > max_bytes:
        raise TooLarge(
            f"this file would take the chat's files to {_human(used + size)}, the limit is {_human(max_bytes)}"
        )


def _human(size: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


async def _references(otklik: Otklik, conversation_id: int, media_id: str) -> bool:
    """Whether a message of this chat carries the file: a session may see its own chat's files only."""
    if not _MEDIA_ID.fullmatch(media_id):
        return False
    async with otklik.db.read() as session:
        payloads = (
            await session.scalars(
                select(Message.payload)
                .where(
                    Message.conversation_id == conversation_id,
                    cast(Message.payload, String).contains(media_id, autoescape=True),
                )
                .limit(100)
            )
        ).all()
    return any(
        isinstance(a, dict) and a.get("media_id") == media_id
        for p in payloads
        for a in (p or {}).get("attachments", [])
    )


# outbound messages the buyer sees: sent, delivered or read (SQL built from the enum once)
_REPLIES = (
    "SELECT id, author, text, payload, created_at FROM messages WHERE conversation_id = ? AND id > ?"
    f" AND ((direction = 'out' AND status IN ('{MessageStatus.SENT}', '{MessageStatus.DELIVERED}',"
    f" '{MessageStatus.READ}'))"
)
_REPLIES_OTHERS = _REPLIES + ") ORDER BY id LIMIT 100"
_REPLIES_MINE = (
    _REPLIES + " OR (direction = 'in' AND kind IN ('text', 'button', 'photo', 'file'))) ORDER BY id LIMIT 100"
)


async def _replies(otklik: Otklik, conversation_id: int, after: int, mine: bool = False) -> list[dict[str, Any]]:
    """One plain SELECT (the long-poll's hot path: no ORM session, see `engine.raw_read`)."""
    async with raw_read(otklik.db) as tx:
        rows = await tx.fetch(_REPLIES_MINE if mine else _REPLIES_OTHERS, (conversation_id, after))
    out = []
    for id_, author, text, payload, created_at in rows:
        if author == "buyer" and text.startswith("/start"):
            continue
        payload = tx.loads(payload)
        if isinstance(created_at, str):  # SQLite: naive UTC text, as SQLAlchemy writes it
            created_at = datetime.fromisoformat(created_at).replace(tzinfo=UTC)
        else:
            created_at = created_at.astimezone(UTC)
        out.append(
            {
                "id": id_,
                "author": author,
                "text": text,
                "buttons": payload.get("buttons", []),
                "attachments": payload.get("attachments", []),
                "created_at": created_at.isoformat(),
            }
        )
    return out


def _external_id(sender: str, client_id: str | None) -> str:
    """Event keys are unique per channel account, so they are namespaced by the session."""
    return f"{sender}:{client_id or 'r-' + secrets.token_hex(12)}"


def _accept_language(request: Request) -> str | None:
    header = request.headers.get("accept-language", "")[:2].lower()
    return header if header in ("ru", "es", "en") else None


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = str(first.get("msg", "invalid"))
        return f"{where}: {msg}" if where else msg
    return str(exc)


async def check(_otklik: Any, _account: Any, _secret: str) -> Any:
    """The Settings page's connection test: the chat is this server."""
    from otklik.platform.channel_admin import Check

    return Check(True, "web chat: served by this server")
