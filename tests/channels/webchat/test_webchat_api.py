"""The web chat HTTP API end to end (real app, real SQLite/PostgreSQL, dispatcher running)."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from otklik.adapters.db.models import Contact, Conversation, InboundEventRow, Message
from otklik.bootstrap import Otklik
from otklik.core.messages import Attachment, EventKind, InboundEvent
from otklik.web.app import create_app
from tests.conftest import make_settings


@pytest.fixture
async def client(otklik: Otklik) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(otklik, worker=False, manage_lifecycle=False)
    otklik.start_worker()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chat") as http:
        yield http


async def new_session(client: httpx.AsyncClient, **body: Any) -> str:
    response = await client.post("/api/webchat/sessions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


async def replies(client: httpx.AsyncClient, sid: str, after: int, expect: int) -> tuple[list[dict[str, Any]], int]:
    """Long-poll until `expect` replies arrived after the cursor (or fail after a few seconds)."""
    got: list[dict[str, Any]] = []
    for _ in range(20):
        response = await client.get(f"/api/webchat/sessions/{sid}/messages", params={"after": after, "wait": 1})
        assert response.status_code == 200
        body = response.json()
        got += body["messages"]
        after = body["cursor"]
        if len(got) >= expect:
            return got, after
    raise AssertionError(f"expected {expect} replies, got {[m['text'] for m in got]}")


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def inbound_count(otklik: Otklik) -> int:
    async with otklik.db.read() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) or 0
        )


async def test_the_demo_flow_through_the_web_chat_api(client: httpx.AsyncClient) -> None:
    sid = await new_session(client)
    greeting, cursor = await replies(client, sid, 0, 2)
    assert greeting[0]["text"].startswith("Здравствуйте")
    payloads = [b["payload"] for b in greeting[1]["buttons"]]
    assert "intent:defective_item" in payloads
    sent = await client.post(f"/api/webchat/sessions/{sid}/messages", json={"button": "intent:defective_item"})
    assert sent.status_code == 202 and sent.json()["duplicate"] is False
    ask, cursor = await replies(client, sid, cursor, 1)
    assert "фото" in ask[0]["text"]
    upload = await client.post(
        f"/api/webchat/sessions/{sid}/messages", files={"file": ("defect.png", png(), "image/png")}
    )
    assert upload.status_code == 202, upload.text
    explained, cursor = await replies(client, sid, cursor, 2)
    assert "Wildberries" in explained[0]["text"] and "Оцените" in explained[1]["text"]
    await client.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "5"})
    thanks, _ = await replies(client, sid, cursor, 1)
    assert thanks[0]["text"].startswith("Спасибо за оценку")


async def test_a_retried_post_with_the_same_client_id_is_answered_once(
    client: httpx.AsyncClient, otklik: Otklik
) -> None:
    sid = await new_session(client)
    _, cursor = await replies(client, sid, 0, 2)
    body = {"text": "абв где", "client_id": "retry-0001"}
    first = await client.post(f"/api/webchat/sessions/{sid}/messages", json=body)
    second = await client.post(f"/api/webchat/sessions/{sid}/messages", json=body)
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    got, cursor = await replies(client, sid, cursor, 1)
    await asyncio.sleep(0.3)
    late = (await client.get(f"/api/webchat/sessions/{sid}/messages", params={"after": cursor})).json()["messages"]
    assert len(got) == 1 and late == []


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"json": {"text": "x" * 4097}}, 422, "message too long: 4097 characters, the limit is 4096"),
        ({"json": {"text": "   "}}, 422, "empty"),
        ({"json": {}}, 422, "exactly one"),
        ({"json": {"text": "a", "button": "b"}}, 422, "exactly one"),
        ({"json": {"text": 5}}, 422, "text"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
        ({"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}}, 422, ""),
        ({"json": {"text": "hi", "client_id": "../../etc"}}, 422, "client_id"),
        ({"files": {"file": ("empty.png", b"", "image/png")}}, 422, "empty"),
        ({"files": {"other": ("a.png", b"123", "image/png")}}, 422, "'file' field"),
    ],
)
async def test_bad_input_gets_a_clear_answer_and_changes_nothing(
    client: httpx.AsyncClient,
    otklik: Otklik,
    kwargs: dict[str, Any],
    status: int,
    detail: str,
) -> None:
    sid = await new_session(client)
    before = await inbound_count(otklik)
    response = await client.post(f"/api/webchat/sessions/{sid}/messages", **kwargs)
    assert response.status_code == status, response.text
    assert detail.lower() in str(response.json()["detail"]).lower()
    assert await inbound_count(otklik) == before


async def test_unknown_sessions_are_404(client: httpx.AsyncClient) -> None:
    for sid in ("x" * 43, "short", "%2e%2e%2fadmin"):
        assert (await client.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "hi"})).status_code == 404
        assert (await client.get(f"/api/webchat/sessions/{sid}/messages")).status_code == 404


async def test_files_over_the_limit_are_refused(tmp_path: Path, sqlite_url: str) -> None:
    app_ = Otklik.build(make_settings(tmp_path, sqlite_url, max_upload_bytes=2048))
    await app_.start()
    try:
        web = create_app(app_, worker=False, manage_lifecycle=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            sid = await new_session(http)
            before = await inbound_count(app_)
            response = await http.post(
                f"/api/webchat/sessions/{sid}/messages",
                files={"file": ("big.png", b"\x89PNG\r\n\x1a\n" + b"0" * 5000, "image/png")},
            )
            assert response.status_code == 413 and "limit" in response.json()["detail"]
            assert await inbound_count(app_) == before
            assert not any((tmp_path / "data" / "media").rglob("*")) or all(
                p.is_dir() for p in (tmp_path / "data" / "media").rglob("*")
            )
    finally:
        await app_.close()


async def test_a_locked_database_gives_503_and_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    app_ = Otklik.build(make_settings(tmp_path, f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout_ms=200))
    await app_.start()
    try:
        web = create_app(app_, worker=False, manage_lifecycle=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            sid = await new_session(http)
            before = await inbound_count(app_)
            blocker = sqlite3.connect(path, timeout=0.1, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                response = await http.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "привет"})
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert response.status_code == 503 and response.headers["retry-after"] == "2"
            assert "nothing was saved" in response.json()["detail"]
            assert await inbound_count(app_) == before
            async with app_.db.read() as session:
                events = await session.scalar(select(func.count()).select_from(InboundEventRow))
            assert events == 1  # only the session's /start
            retry = await http.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "привет"})
            assert retry.status_code == 202 and await inbound_count(app_) == before + 1
    finally:
        await app_.close()


async def test_session_options_are_validated(client: httpx.AsyncClient) -> None:
    bad = await client.post("/api/webchat/sessions", json={"start": "has space"})
    assert bad.status_code == 422
    ok = await client.post("/api/webchat/sessions", json={"start": "cb_42", "language": "ru"})
    assert ok.status_code == 201


async def test_pages_and_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    chat = await client.get("/chat", params={"start": '"><script>x</script>'})
    assert chat.status_code == 200 and "<script>x</script>" not in chat.text
    assert (await client.get("/static/webchat.js")).status_code == 200


async def test_a_database_that_is_down_gives_503_and_the_service_recovers(
    client: httpx.AsyncClient,
    otklik: Otklik,
) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    sid = await new_session(client)
    unreachable = (
        "sqlite+aiosqlite:////nonexistent-dir/otklik.db"
        if otklik.db.is_sqlite
        else "postgresql+asyncpg://postgres@127.0.0.1:1/otklik"
    )
    live = otklik.db._writer
    dead_engine = create_async_engine(unreachable)
    otklik.db._writer = async_sessionmaker(dead_engine, expire_on_commit=False)
    try:
        response = await client.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "привет"})
    finally:
        otklik.db._writer = live
        await dead_engine.dispose()
    assert response.status_code == 503 and "retry" in response.json()["detail"]
    assert (await client.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "привет"})).status_code == 202


async def test_two_sessions_are_both_greeted_and_may_reuse_client_ids_regression(client: httpx.AsyncClient) -> None:
    first, second = await new_session(client), await new_session(client)
    for sid in (first, second):
        greeting, cursor = await replies(client, sid, 0, 2)
        assert greeting[0]["text"].startswith("Здравствуйте")
        response = await client.post(
            f"/api/webchat/sessions/{sid}/messages",
            json={"button": "intent:defective_item", "client_id": "msg-00000001"},
        )
        assert response.json()["duplicate"] is False
        asked, _ = await replies(client, sid, cursor, 1)
        assert "фото" in asked[0]["text"]


async def test_a_malformed_multipart_client_id_is_refused(client: httpx.AsyncClient, otklik: Otklik) -> None:
    sid = await new_session(client)
    before = await inbound_count(otklik)
    response = await client.post(
        f"/api/webchat/sessions/{sid}/messages",
        data={"client_id": "a b"},
        files={"file": ("p.png", png(), "image/png")},
    )
    assert response.status_code == 422 and "client_id" in response.json()["detail"]
    assert await inbound_count(otklik) == before


async def test_mine_restores_the_buyers_own_messages_after_a_reload(client: httpx.AsyncClient) -> None:
    sid = await new_session(client)
    _, cursor = await replies(client, sid, 0, 2)
    await client.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "что-то непонятное"})
    await replies(client, sid, cursor, 1)
    history = (await client.get(f"/api/webchat/sessions/{sid}/messages", params={"mine": "true"})).json()["messages"]
    authors = [m["author"] for m in history]
    assert authors[:2] == ["bot", "bot"] and "buyer" in authors
    assert next(m for m in history if m["author"] == "buyer")["text"] == "что-то непонятное"
    assert not any(m["text"].startswith("/start") for m in history)
    plain = (await client.get(f"/api/webchat/sessions/{sid}/messages")).json()["messages"]
    assert all(m["author"] != "buyer" for m in plain)


# --- issue 13: media of other chats, abuse limits, control characters, long text ---------------------------


@asynccontextmanager
async def chat_app(tmp_path: Path, db_url: str, **overrides: object) -> AsyncIterator[tuple[Otklik, httpx.AsyncClient]]:
    """An app with its own settings (limits); the client comes from 127.0.0.1 like the default one."""
    app_ = Otklik.build(make_settings(tmp_path, db_url, **overrides))
    await app_.start()
    try:
        web = create_app(app_, worker=False, manage_lifecycle=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield app_, http
    finally:
        await app_.close()


def media_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "data" / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload(content: bytes, name: str = "shot.png") -> dict[str, Any]:
    return {"files": {"file": (name, content, "image/png")}}


async def my_attachments(client: httpx.AsyncClient, sid: str) -> list[str]:
    history = (await client.get(f"/api/webchat/sessions/{sid}/messages", params={"mine": "true"})).json()
    return [a["media_id"] for m in history["messages"] for a in m["attachments"] if a.get("media_id")]


async def test_regression_media_of_another_session_is_not_served(client: httpx.AsyncClient) -> None:
    owner = await new_session(client)
    screenshot = png((90, 40))
    assert (await client.post(f"/api/webchat/sessions/{owner}/messages", **upload(screenshot))).status_code == 202
    [media_id] = await my_attachments(client, owner)
    own = await client.get(f"/api/webchat/sessions/{owner}/media/{media_id}")
    assert own.status_code == 200 and own.content == screenshot and own.headers["content-type"] == "image/png"

    stranger = await new_session(client)
    theft = await client.get(f"/api/webchat/sessions/{stranger}/media/{media_id}")
    assert theft.status_code == 404 and theft.json()["detail"] == "no such file"
    assert theft.content != screenshot
    # a button payload naming the file does not make it the stranger's either
    sent = await client.post(f"/api/webchat/sessions/{stranger}/messages", json={"button": media_id})
    assert sent.status_code == 202
    assert (await client.get(f"/api/webchat/sessions/{stranger}/media/{media_id}")).status_code == 404
    # unknown and malformed ids: the same 404
    for bad in ("0" * 64, "../" + media_id, media_id.upper()):
        assert (await client.get(f"/api/webchat/sessions/{owner}/media/{bad}")).status_code == 404


async def test_regression_new_sessions_are_rate_limited_per_address(tmp_path: Path, db_url: str) -> None:
    async with chat_app(tmp_path, db_url, webchat_sessions_per_address=3) as (app_, http):
        for _ in range(3):
            await new_session(http)
        refused = await http.post("/api/webchat/sessions", json={})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["detail"].startswith("too many new chats from this address: at most 3 per minute")
        async with app_.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(InboundEventRow)) == 3  # no 4th /start
        web = create_app(app_, worker=False, manage_lifecycle=False)
        other = httpx.ASGITransport(app=web, client=("203.0.113.7", 5000))
        async with httpx.AsyncClient(transport=other, base_url="http://chat") as elsewhere:
            assert (await elsewhere.post("/api/webchat/sessions", json={})).status_code == 201


async def test_regression_messages_are_rate_limited_per_session_and_per_address(tmp_path: Path, db_url: str) -> None:
    limits = {"webchat_messages_per_session": 2, "webchat_messages_per_address": 4}
    async with chat_app(tmp_path, db_url, **limits) as (app_, http):
        first, second = await new_session(http), await new_session(http)
        for text in ("раз", "два"):
            assert (await http.post(f"/api/webchat/sessions/{first}/messages", json={"text": text})).status_code == 202
        before = await inbound_count(app_)
        refused = await http.post(f"/api/webchat/sessions/{first}/messages", json={"text": "три"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "too many messages in this chat: at most 2 per minute" in refused.json()["detail"]
        ok = await http.post(f"/api/webchat/sessions/{second}/messages", json={"text": "другой чат"})
        assert ok.status_code == 202  # another chat is not affected by the first one's limit
        address = await http.post(f"/api/webchat/sessions/{second}/messages", json={"text": "ещё"})
        assert address.status_code == 429  # 4 from this address in this minute (a refused one counts too)
        assert "too many messages from this address: at most 4 per minute" in address.json()["detail"]
        assert await inbound_count(app_) == before + 1


async def test_regression_uploads_are_rate_limited_per_session_and_nothing_is_written(
    tmp_path: Path, db_url: str
) -> None:
    async with chat_app(tmp_path, db_url, webchat_uploads_per_session=1) as (app_, http):
        sid = await new_session(http)
        assert (await http.post(f"/api/webchat/sessions/{sid}/messages", **upload(png((10, 10))))).status_code == 202
        stored = media_files(tmp_path)
        before = await inbound_count(app_)
        refused = await http.post(f"/api/webchat/sessions/{sid}/messages", **upload(png((11, 11))))
        assert refused.status_code == 429 and "too many files in this chat" in refused.json()["detail"]
        assert refused.headers["retry-after"].isdigit()
        assert media_files(tmp_path) == stored and len(stored) == 1
        assert await inbound_count(app_) == before


async def test_regression_media_quota_per_session_counts_files_and_bytes(tmp_path: Path, db_url: str) -> None:
    quota = {"webchat_media_files_per_session": 2, "webchat_media_bytes_per_session": 6000}
    async with chat_app(tmp_path, db_url, **quota) as (app_, http):
        sid = await new_session(http)
        for i in range(2):
            sent = await http.post(f"/api/webchat/sessions/{sid}/messages", **upload(bytes([i]) * 2000, "a.bin"))
            assert sent.status_code == 202, sent.text
        stored, before = media_files(tmp_path), await inbound_count(app_)
        third = await http.post(f"/api/webchat/sessions/{sid}/messages", **upload(b"\x07" * 100, "b.bin"))
        assert third.status_code == 413
        assert third.json()["detail"] == "this chat already has 2 files, the limit is 2"
        assert media_files(tmp_path) == stored and await inbound_count(app_) == before

        other = await new_session(http)  # the quota is per chat; bytes: 2000 + 5000 > 6000
        assert (await http.post(f"/api/webchat/sessions/{other}/messages", **upload(b"x" * 2000))).status_code == 202
        stored, before = media_files(tmp_path), await inbound_count(app_)
        big = await http.post(f"/api/webchat/sessions/{other}/messages", **upload(b"y" * 5000))
        assert big.status_code == 413
        assert big.json()["detail"] == "this file would take the chat's files to 6.8 KB, the limit is 5.9 KB"
        assert media_files(tmp_path) == stored and await inbound_count(app_) == before


@pytest.mark.parametrize(
    ("form", "detail"),
    [
        ({"data": {"client_id": "a b"}}, "client_id"),
        ({"data": {"text": "к" * 1025}}, "caption too long: 1025 characters, the limit is 1024"),
    ],
)
async def test_regression_a_refused_upload_leaves_no_file_in_the_media_folder(
    client: httpx.AsyncClient, otklik: Otklik, tmp_path: Path, form: dict[str, Any], detail: str
) -> None:
    sid = await new_session(client)
    before = await inbound_count(otklik)
    response = await client.post(f"/api/webchat/sessions/{sid}/messages", **form, **upload(png()))
    assert response.status_code == 422 and detail in response.json()["detail"]
    assert media_files(tmp_path) == []
    assert await inbound_count(otklik) == before


async def test_regression_a_chunked_upload_over_the_limit_is_cut_off_and_not_stored(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with chat_app(tmp_path, sqlite_url, max_upload_bytes=4096) as (app_, http):
        sid = await new_session(http)
        boundary = "otklikboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        sent = 0

        async def body() -> AsyncIterator[bytes]:  # no Content-Length: the size is only known by reading
            nonlocal sent
            yield head
            for _ in range(200):
                sent += 1
                yield b"\x89PNG" + b"0" * 4092
            yield f"\r\n--{boundary}--\r\n".encode()

        response = await http.post(
            f"/api/webchat/sessions/{sid}/messages",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413 and "limit" in response.json()["detail"]
        assert "content-length" not in response.request.headers
        assert sent < 200  # refused while reading, not after taking all 800 KB
        assert media_files(tmp_path) == []


async def test_regression_nul_and_control_characters_are_stripped_from_buyer_text(
    client: httpx.AsyncClient, otklik: Otklik
) -> None:
    sid = await new_session(client)
    raw = '{"text": "при\\u0000вет\\u0007 мир\\r\\nещё\\tстрока", "client_id": "ctrl-0001"}'
    sent = await client.post(
        f"/api/webchat/sessions/{sid}/messages", content=raw, headers={"content-type": "application/json"}
    )
    assert sent.status_code == 202, sent.text
    button = await client.post(f"/api/webchat/sessions/{sid}/messages", json={"button": "intent:\x00defective_item"})
    assert button.status_code == 202
    async with otklik.db.read() as session:
        stored = (
            await session.scalars(select(Message.text).where(Message.direction == "in").order_by(Message.id))
        ).all()
        payloads = (
            await session.scalars(select(Message.payload).where(Message.kind == "button").order_by(Message.id))
        ).all()
    assert stored[-2] == "привет мир\nещё\tстрока"
    assert payloads[-1]["payload"] == "intent:defective_item"
    history = (await client.get(f"/api/webchat/sessions/{sid}/messages", params={"mine": "true"})).json()
    assert "привет мир\nещё\tстрока" in [m["text"] for m in history["messages"]]
    before = await inbound_count(otklik)
    surrogate = await client.post(
        f"/api/webchat/sessions/{sid}/messages",
        content='{"text": "a\\ud800b"}',
        headers={"content-type": "application/json"},
    )
    assert surrogate.status_code == 422  # a lone surrogate is not valid JSON text here
    only_controls = await client.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "\x00\x01 \x1f"})
    assert only_controls.status_code == 422 and only_controls.json()["detail"] == "message is empty"
    assert await inbound_count(otklik) == before


async def test_regression_nul_in_any_channel_is_stripped_by_ingest(otklik: Otklik) -> None:
    """The common ingest path cleans every channel's events (Telegram, API webhook, web chat)."""
    account = next(a.id for a in otklik.ctx.accounts.values() if a.kind == "webchat")
    event = InboundEvent(
        account,
        "nul-\x001",
        "api-buyer\x00",
        EventKind.TEXT,
        text="a\x00b\x1bc\ud800",  # e.g. Telegram's JSON decodes a lone surrogate
        sender_name="Ан\x00на",
        attachments=(Attachment(kind="file", media_id="0" * 64, filename="x\x00.pdf"),),
    )
    result = await otklik.ingest(event)
    async with otklik.db.read() as session:
        message = await session.get(Message, result.message_id)
        assert message is not None
        assert message.text == "abc" and message.payload["attachments"][0]["filename"] == "x.pdf"
        assert message.external_id == "nul-1"
        name = await session.scalar(
            select(Contact.display_name)
            .join(Conversation, Conversation.contact_id == Contact.id)
            .where(Conversation.id == message.conversation_id)
        )
    assert name == "Анна"


async def test_regression_long_text_is_refused_whole_with_its_length(client: httpx.AsyncClient, otklik: Otklik) -> None:
    sid = await new_session(client)
    before = await inbound_count(otklik)
    text = ("слово " * 1000).strip()  # 5999 characters: never cut mid-word, refused whole
    response = await client.post(f"/api/webchat/sessions/{sid}/messages", json={"text": text})
    assert response.status_code == 422
    assert response.json()["detail"] == "message too long: 5999 characters, the limit is 4096"
    assert await inbound_count(otklik) == before
    exactly = await client.post(f"/api/webchat/sessions/{sid}/messages", json={"text": "ё" * 4096})
    assert exactly.status_code == 202
    page = (await client.get("/chat")).text
    assert 'data-max-chars="4096"' in page and '<textarea id="text"' in page
    assert "maxlength" not in page  # the browser must not cut a pasted text silently
