"""The web chat API: sessions, messages in (text, button, file) and replies out (long-poll)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from otklik.adapters.db.engine import has_fast_path, raw_read
from otklik.adapters.db.models import ContactIdentity, Conversation, Message
from otklik.adapters.media import MediaTooLarge
from otklik.bootstrap import WEBCHAT_ACCOUNT, Otklik
from otklik.core.errors import InvalidInput, NotFound, TooLarge
from otklik.core.messages import Attachment, EventKind, InboundEvent

router = APIRouter(prefix="/api/webchat", tags=["webchat"])
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


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
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        event = await _file_event(request, otklik, session_id)
    else:
        event = await _json_event(request, otklik, session_id)
    result = await otklik.ingest(event)
    return {"accepted": True, "duplicate": result.duplicate, "conversation_id": conversation_id}


@router.get("/sessions/{session_id}/messages")
async def get_messages(
    request: Request,
    session_id: str,
    after: Annotated[int, Query(ge=0)] = 0,
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
    await _conversation(otklik, session_id)
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
    raw = await request.body()
    if len(raw) > otklik.settings.max_text_chars * 4 + 1024:
        raise TooLarge(f"message is longer than {otklik.settings.max_text_chars} characters")
    try:
        body = InMessage.model_validate_json(raw or b"{}")
    except ValueError as exc:
        raise InvalidInput(_first_error(exc)) from None
    sender = _sender_key(session_id)
    external_id = _external_id(sender, body.client_id)
    account = _account_id(otklik)
    if body.button is not None:
        return InboundEvent(account, external_id, sender, EventKind.BUTTON, payload=body.button)
    text = (body.text or "").strip()
    if not text:
        raise InvalidInput("message is empty")
    if len(text) > otklik.settings.max_text_chars:
        raise InvalidInput(f"message is longer than {otklik.settings.max_text_chars} characters")
    return InboundEvent(account, external_id, sender, EventKind.TEXT, text=text)


async def _file_event(request: Request, otklik: Otklik, session_id: str) -> InboundEvent:
    limit = otklik.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise TooLarge(f"file is larger than the limit of {limit // (1024 * 1024) or 1} MB")
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidInput("attach a file in the 'file' field")
    data = await upload.read(limit + 1)
    if not data:
        raise InvalidInput("the file is empty")
    try:
        stored = await otklik.ctx.media.save(
            data, upload.content_type or "application/octet-stream", (upload.filename or "")[:200] or None
        )
    except MediaTooLarge:
        raise TooLarge(f"file is larger than the limit of {limit // (1024 * 1024) or 1} MB") from None
    is_image = data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    kind = "photo" if is_image else "file"
    client_id = form.get("client_id")
    if client_id is not None and (not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id)):
        raise InvalidInput("client_id: 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
    external_id = _external_id(_sender_key(session_id), client_id)
    caption = form.get("text")
    return InboundEvent(
        _account_id(otklik),
        external_id,
        _sender_key(session_id),
        EventKind.PHOTO if is_image else EventKind.FILE,
        text=caption[:1024] if isinstance(caption, str) else None,
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


_REPLIES = (
    "SELECT id, author, text, payload, created_at FROM messages WHERE conversation_id = ? AND id > ?"
    " AND ((direction = 'out' AND status IN ('sent', 'delivered', 'read'))"
)
_REPLIES_OTHERS = _REPLIES + ") ORDER BY id LIMIT 100"
_REPLIES_MINE = (
    _REPLIES + " OR (direction = 'in' AND kind IN ('text', 'button', 'photo', 'file'))) ORDER BY id LIMIT 100"
)


async def _replies(otklik: Otklik, conversation_id: int, after: int, mine: bool = False) -> list[dict[str, Any]]:
    """One plain SELECT (the long-poll's hot path: no ORM session, see `engine.raw_read`)."""
    if not has_fast_path(otklik.db):
        return await _replies_orm(otklik, conversation_id, after, mine)
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


async def _replies_orm(otklik: Otklik, conversation_id: int, after: int, mine: bool) -> list[dict[str, Any]]:
    visible = (Message.direction == "out") & Message.status.in_(("sent", "delivered", "read"))
    if mine:
        visible = visible | ((Message.direction == "in") & Message.kind.in_(("text", "button", "photo", "file")))
    async with otklik.db.read() as session:
        rows = (
            await session.execute(
                select(Message.id, Message.author, Message.text, Message.payload, Message.created_at)
                .where(Message.conversation_id == conversation_id, Message.id > after, visible)
                .order_by(Message.id)
                .limit(100)
            )
        ).all()
    return [_public(r) for r in rows if not (r.author == "buyer" and r.text.startswith("/start"))]


def _public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "author": row.author,
        "text": row.text,
        "buttons": row.payload.get("buttons", []),
        "attachments": row.payload.get("attachments", []),
        "created_at": row.created_at.isoformat(),
    }


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
