"""The web chat HTTP API end to end (real app, real SQLite/PostgreSQL, dispatcher running)."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from otklik.adapters.db.models import InboundEventRow, Message
from otklik.bootstrap import Otklik
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
        ({"json": {"text": "x" * 4097}}, 422, "longer than 4096"),
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
