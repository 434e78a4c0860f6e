"""Two web+worker processes on one PostgreSQL database handle one conversation: replies stay in order.

Messages are sent alternately to both processes, first one after another, then as a concurrent burst.
The conversation row lock serialises the two processes, so in the database every buyer message is
followed by its own echo, and the web chat returns the echoes in the order the messages were taken."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from otklik.adapters.db.models import Message
from tests.conftest import PG_URL, TEST_PACKS, reset_pg

pytestmark = [pytest.mark.pg, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[str]]:
    if not PG_URL:
        pytest.skip("OTKLIK_TEST_PG_URL is not set")
    asyncio.run(reset_pg(PG_URL))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        {
            "OTKLIK_ENV": "test",
            "OTKLIK_DATABASE_URL": PG_URL,
            "OTKLIK_NLU": "keywords",
            "OTKLIK_DEFAULT_PACK": "echo",
            "OTKLIK_PACKS_DIRS": f'["{TEST_PACKS}"]',
            "OTKLIK_LOG_LEVEL": "WARNING",
        }
    )
    procs, urls = [], []
    for i in range(2):
        port = free_port()
        proc_env = dict(env, OTKLIK_DATA_DIR=str(tmp_path / f"data{i}"))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "otklik.cli", "run", "--port", str(port)],
                env=proc_env,
                stdout=(tmp_path / f"p{i}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts two servers slowly
        for url in urls:
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise AssertionError((tmp_path / "p0.log").read_text() + (tmp_path / "p1.log").read_text())
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


async def collect(http: httpx.AsyncClient, url: str, sid: str, expect: int) -> list[str]:
    texts: list[str] = []
    cursor = 0
    deadline = time.monotonic() + 180  # a loaded machine starts two servers slowly
    while len(texts) < expect and time.monotonic() < deadline:
        body = (
            await http.get(f"{url}/api/webchat/sessions/{sid}/messages", params={"after": cursor, "wait": 2})
        ).json()
        texts += [m["text"] for m in body["messages"]]
        cursor = body["cursor"]
    return texts


async def test_replies_stay_in_order_across_two_processes(two_servers: list[str]) -> None:
    a, b = two_servers
    async with httpx.AsyncClient(timeout=30) as http:
        sid = (await http.post(f"{a}/api/webchat/sessions", json={})).json()["session_id"]
        for n in range(20):  # one after another, alternating processes
            url = (a, b)[n % 2]
            response = await http.post(f"{url}/api/webchat/sessions/{sid}/messages", json={"text": f"seq {n}"})
            assert response.status_code == 202
        burst = [
            http.post(f"{(a, b)[n % 2]}/api/webchat/sessions/{sid}/messages", json={"text": f"burst {n}"})
            for n in range(20)
        ]
        assert all(r.status_code == 202 for r in await asyncio.gather(*burst))
        replies = await collect(http, b, sid, 41)
    assert replies[0] == "готов"
    assert replies[1:21] == [f"эхо: seq {n}" for n in range(20)]
    assert sorted(replies[21:]) == sorted(f"эхо: burst {n}" for n in range(20))

    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(PG_URL or "")
    async with engine.connect() as conn:
        # this buyer's conversation only (the first start also seeds demo conversations)
        conv = select(Message.conversation_id).where(Message.text == "seq 0").scalar_subquery()
        query = select(Message.direction, Message.text).where(Message.conversation_id == conv).order_by(Message.id)
        rows = (await conn.execute(query)).all()
    await engine.dispose()
    pairs = rows[2:]  # after "/start" and "готов"
    assert len(pairs) == 80
    for inbound, outbound in zip(pairs[::2], pairs[1::2], strict=True):
        assert inbound.direction == "in" and outbound.direction == "out"
        assert outbound.text == f"эхо: {inbound.text}"
    burst_in = [r.text for r in pairs[::2] if r.text.startswith("burst")]
    assert replies[21:] == [f"эхо: {t}" for t in burst_in]  # delivered in the order they were taken
