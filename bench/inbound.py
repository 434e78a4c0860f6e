#!/usr/bin/env python
"""Inbound web-chat load: K concurrent buyers x M messages each; prints ONE JSON object on stdout.

    .venv/bin/python bench/inbound.py                       # SQLite in a fresh temp dir
    .venv/bin/python bench/inbound.py --pg                  # PostgreSQL: otklik_bench dropped and recreated
    .venv/bin/python bench/inbound.py --url http://127.0.0.1:8000 --data-dir data   # attach to a running server

Each virtual buyer creates a session, sends M messages one after the other and, for every message, measures
the time from the start of the POST to the moment its last expected reply is returned by the long-poll GET
(`after=<cursor>&wait=5`). The message script walks the care-ru main flow in a cycle in which the bot never
goes silent (no hand-off): a greeting (router -> greet_again), a text the router cannot classify (-> clarify
choice question), "3" (-> the delivery flow: explanation + "enough?" question), "1" (-> the
`care.record_incident` action, then the rating question), "5" (-> rating saved, thanks, end). After the end
the next "привет" restarts the flow, so that message gets two replies (the welcome message + greet_again).
Two of the five messages run a flow action (`care.record_incident`: a quick action, run and applied inside the
ingest transaction; before it was quick, a durable timer row, the action, its result applied later). How many
replies each message gets is not assumed: it is calibrated on one session before the load (waiting for
quiescence) and then checked for every message, reply texts included.

After the run the database is read directly (SQLite file / PostgreSQL): every outbox row must be `sent` with
`send_count == 1`, and no inbound event may be stored twice. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SCRIPTS: dict[str, list[str]] = {
    # one cycle of the care-ru main flow, see the module docstring
    "flow": ["привет", "а что у вас есть ещё интересного", "3", "1", "5"],
    # greeting and thanks through the offline classifier: routers and an end node, no flow action
    "chat": ["привет", "спасибо"],
    # a stop word: one reply, no NLU and no flow step (isolates HTTP + storage + dispatch costs)
    "stop": ["стоп"],
}
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "otklik_bench"
LATE_GRACE_S = 60.0  # after a timeout, how long to wait for the missing replies before moving on
QUIET_S = 0.8  # calibration: no new reply for this long = the bot has finished answering


# --- results -----------------------------------------------------------------------------------------


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, measured phase only
    session_create: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0  # messages whose expected replies did not all arrive within the timeout
    lost_replies: int = 0
    late_replies: int = 0  # replies of lost messages that arrived after the timeout (within LATE_GRACE_S)
    seen_twice: int = 0  # a reply id returned again after the cursor had passed it
    extra_replies: int = 0  # more replies than calibrated for a message
    mismatched: int = 0  # a reply text other than the calibrated one
    completed: int = 0
    replies: int = 0
    failed_users: int = 0


@dataclass
class Plan:
    texts: list[str]
    expected: list[int]  # per script position
    prefixes: list[list[str]]
    greeting: int
    greeting_first_session: int

    def at(self, i: int) -> tuple[str, int, list[str]]:
        n = len(self.texts)
        j = i if i < n else n + i % n  # the first pass may differ (it starts at the menu, later ones after an end)
        return self.texts[i % n], self.expected[j], self.prefixes[j]


HISTOGRAM_MS = (25, 50, 100, 150, 250, 500, 1000, 2000, 5000)


def histogram(values: list[float]) -> dict[str, int]:
    """Counts of latencies below each bound (ms); a bump just above 1000 ms points at a 1 s poll step."""
    out: dict[str, int] = {}
    low = 0
    for bound in HISTOGRAM_MS:
        out[f"{low}-{bound}"] = sum(1 for v in values if low <= v * 1000 < bound)
        low = bound
    out[f">={low}"] = sum(1 for v in values if v * 1000 >= low)
    return out


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms_summary(values: list[float]) -> dict[str, float | None]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x * 1000, 1)

    return {
        "p50": r(percentile(values, 0.50)),
        "p90": r(percentile(values, 0.90)),
        "p95": r(percentile(values, 0.95)),
        "p99": r(percentile(values, 0.99)),
        "max": r(max(values) if values else None),
        "mean": r(sum(values) / len(values) if values else None),
    }


# --- a lean HTTP/1.1 client ----------------------------------------------------------------------------
#
# httpx costs 2.5-6 ms of CPU per request pair at this load; on a 2-core machine that shares its cores with
# the server, the load generator would then use more CPU than the server. `RawClient` speaks the small part
# of HTTP/1.1 the bench needs (keep-alive connections, Content-Length bodies, JSON) on asyncio protocols,
# at ~0.1 ms per request. `--client httpx` keeps the old client for comparison.


class RawResponse:
    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class _RawConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[RawResponse] | None = None
        self.closed = False
        self.used = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        length = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            waiter.set_exception(httpx.RemoteProtocolError("response without Content-Length"))
            return
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        waiter.set_result(RawResponse(int(head[0].split(" ", 2)[1]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(httpx.RemoteProtocolError(f"connection closed: {exc}"))


class RawClient:
    """Keep-alive HTTP/1.1 to one host; one request per connection at a time."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        self.timeout = timeout
        self.idle: list[_RawConnection] = []

    async def _connection(self) -> _RawConnection:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        _transport, conn = await loop.create_connection(_RawConnection, self.host, self.port)
        return conn

    async def request(
        self, method: str, url: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> RawResponse:
        if params:
            url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        body = b"" if json is None else _dumps(json)
        head = f"{method} {url} HTTP/1.1\r\nhost: {self.host}\r\ncontent-length: {len(body)}\r\n"
        if json is not None:
            head += "content-type: application/json\r\n"
        data = head.encode() + b"\r\n" + body
        for attempt in range(2):
            conn = await self._connection()
            reused, conn.used = conn.used, True
            conn.waiter = asyncio.get_running_loop().create_future()
            assert conn.transport is not None
            conn.transport.write(data)
            try:
                response = await asyncio.wait_for(conn.waiter, self.timeout)
            except httpx.RemoteProtocolError:
                if reused and attempt == 0 and not conn.buffer:
                    continue  # the server closed an idle keep-alive connection: resend on a new one
                raise
            except TimeoutError as exc:
                conn.transport.close()
                raise httpx.ReadTimeout(str(exc)) from None
            finally:
                conn.waiter = None
            if not conn.closed:
                self.idle.append(conn)
            return response
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# --- a virtual buyer ---------------------------------------------------------------------------------


class Buyer:
    def __init__(self, client: Any, stats: Stats, tag: str, index: int, timeout: float) -> None:
        self.client = client
        self.stats = stats
        self.tag = tag
        self.index = index
        self.timeout = timeout
        self.session_id = ""
        self.conversation_id: int | None = None
        self.cursor = 0
        self.seen: set[int] = set()
        self.sent = 0

    async def _request(self, method: str, url: str, kind: str, **kw: Any) -> Any:
        try:
            response = await self.client.request(method, url, **kw)
        except (httpx.HTTPError, OSError) as exc:
            self.stats.errors[f"{kind} {type(exc).__name__}"] += 1
            return None
        if response.status_code >= 300:
            self.stats.errors[f"{kind} HTTP {response.status_code}"] += 1
            return None
        return response

    async def create(self) -> bool:
        t0 = time.perf_counter()
        for _attempt in range(3):
            r = await self._request("POST", "/api/webchat/sessions", "create_session", json={})
            if r is not None:
                body = r.json()
                self.session_id = body["session_id"]
                self.conversation_id = body.get("conversation_id")
                self.stats.session_create.append(time.perf_counter() - t0)
                return True
        return False

    async def poll(self, wait: float) -> list[dict[str, Any]] | None:
        r = await self._request(
            "GET",
            f"/api/webchat/sessions/{self.session_id}/messages",
            "poll",
            params={"after": self.cursor, "wait": wait},
        )
        if r is None:
            await asyncio.sleep(0.05)
            return None
        body = r.json()
        fresh = []
        for m in body["messages"]:
            if m["id"] in self.seen:
                self.stats.seen_twice += 1
                continue
            self.seen.add(m["id"])
            fresh.append(m)
        self.cursor = max(self.cursor, int(body["cursor"]))
        return fresh

    async def collect(self, expected: int, deadline: float) -> tuple[list[dict[str, Any]], float | None]:
        """Replies until `expected` arrived (returns the arrival time of the last one) or the deadline."""
        got: list[dict[str, Any]] = []
        while len(got) < expected:
            left = deadline - time.perf_counter()
            if left <= 0:
                return got, None
            fresh = await self.poll(min(5.0, max(left, 0.05)))
            if fresh:
                got += fresh
        return got, time.perf_counter()

    async def drain_quiet(self, quiet: float = QUIET_S, limit: float = 60.0) -> list[dict[str, Any]]:
        """Everything the bot sends until it has been quiet for `quiet` seconds (calibration, tail check)."""
        got: list[dict[str, Any]] = []
        end = time.perf_counter() + limit
        while time.perf_counter() < end:
            fresh = await self.poll(quiet)
            if fresh is None:
                continue
            if not fresh:
                return got
            got += fresh
        raise RuntimeError(f"the bot never went quiet within {limit} s (errors: {dict(self.stats.errors)})")

    async def send(self, text: str) -> float | None:
        """POST one message (retried with the same client_id, which makes retries idempotent)."""
        client_id = f"{self.tag}-{self.index}-{self.sent}"
        self.sent += 1
        t0 = time.perf_counter()
        for _attempt in range(3):
            r = await self._request(
                "POST",
                f"/api/webchat/sessions/{self.session_id}/messages",
                "post_message",
                json={"text": text, "client_id": client_id},
            )
            if r is not None:
                return t0
        return None

    async def exchange(self, text: str, expected: int, prefixes: list[str], measured: bool) -> None:
        t0 = await self.send(text)
        if t0 is None:
            self.stats.lost += 1 if measured else 0
            return
        got, done = await self.collect(expected, t0 + self.timeout)
        if done is None:
            # lost within the timeout; wait for stragglers so they are not taken for the next message's replies
            if measured:
                self.stats.lost += 1
                self.stats.lost_replies += expected - len(got)
            late, _ = await self.collect(expected - len(got), time.perf_counter() + LATE_GRACE_S)
            self.stats.late_replies += len(late)
            got += late
        self.stats.replies += len(got) if measured and done is not None else 0
        if len(got) > expected:
            self.stats.extra_replies += len(got) - expected
        if [m["text"][:40] for m in got[:expected]] != prefixes:
            self.stats.mismatched += 1
        if measured and done is not None:
            self.stats.latencies.append(done - t0)
            self.stats.completed += 1


# --- calibration --------------------------------------------------------------------------------------


async def calibrate(client: Any, script: list[str], tag: str) -> Plan:
    """Two fresh sessions; the second walks the script twice. The first exists because the very first
    session of a database may behave differently (before 47c2aa40 it was the only one greeted)."""
    stats = Stats()
    counts: list[int] = []
    greetings: list[int] = []
    prefixes: list[list[str]] = []
    for n in range(2):
        buyer = Buyer(client, stats, f"{tag}c{n}", 0, 30.0)
        if not await buyer.create():
            raise SystemExit(f"calibration: cannot create a session: {dict(stats.errors)}")
        greetings.append(len(await buyer.drain_quiet()))
        if n == 0:
            continue
        for i in range(2 * len(script)):
            if await buyer.send(script[i % len(script)]) is None:
                raise SystemExit(f"calibration: cannot send: {dict(stats.errors)}")
            replies = await buyer.drain_quiet()
            if stats.errors:
                raise SystemExit(f"calibration: errors from the server: {dict(stats.errors)}")
            counts.append(len(replies))
            prefixes.append([m["text"][:40] for m in replies])
    if any(c == 0 for c in counts):
        raise SystemExit(f"calibration: a message of the script got no reply ({counts}); the script must not go silent")
    return Plan(script, counts, prefixes, greetings[1], greetings[0])


# --- load ---------------------------------------------------------------------------------------------


async def run_load(url: str, args: argparse.Namespace, cpu: CpuMeter) -> dict[str, Any]:
    tag = "b" + secrets.token_hex(4)
    k, m, w = args.sessions, args.messages, args.warmup
    # keep-alive shorter than uvicorn's 5 s, so that the client never reuses a connection the server is closing
    limits = httpx.Limits(max_connections=k + 20, max_keepalive_connections=k + 20, keepalive_expiry=3.0)
    client_cm: Any = (
        RawClient(url)
        if args.client == "raw"
        else httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(30.0))
    )
    async with client_cm as client:
        plan = await calibrate(client, SCRIPTS[args.script], tag)
        stats = Stats()
        buyers = [Buyer(client, stats, tag, i, args.timeout) for i in range(k)]

        async def start(b: Buyer) -> bool:
            if not await b.create():
                return False
            _got, done = await b.collect(plan.greeting, time.perf_counter() + args.timeout)
            if done is None:
                stats.errors["greeting missing"] += 1
            return True

        t_sessions = time.perf_counter()
        ok = await asyncio.gather(*(start(b) for b in buyers))
        sessions_s = time.perf_counter() - t_sessions
        alive = [b for b, good in zip(buyers, ok, strict=True) if good]
        stats.failed_users = k - len(alive)

        async def talk(b: Buyer, first: int, count: int, measured: bool) -> None:
            for i in range(first, first + count):
                text, expected, prefixes = plan.at(i)
                await b.exchange(text, expected, prefixes, measured)

        if w:
            await asyncio.gather(*(talk(b, 0, w, False) for b in alive))
        cpu.start()
        t0 = time.perf_counter()
        await asyncio.gather(*(talk(b, w, m, True) for b in alive))
        duration = time.perf_counter() - t0
        cpu_figures = cpu.stop(duration)
        tails = await asyncio.gather(*(b.drain_quiet(0.5) for b in alive))  # late extra replies
        stats.extra_replies += sum(len(t) for t in tails)

    expected_out = {
        b.conversation_id: plan.greeting + sum(plan.at(i)[1] for i in range(w + m)) for b in alive if b.conversation_id
    }
    return {
        "tag": tag,
        "plan": plan,
        "stats": stats,
        "duration": duration,
        "sessions_s": sessions_s,
        "cpu": cpu_figures,
        "expected_out": expected_out,
        "sent_per_session": w + m,
        "alive": len(alive),
    }


# --- CPU accounting -----------------------------------------------------------------------------------


def _proc_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _postgres_pids() -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                if (p / "comm").read_text().strip().startswith("postgres"):
                    pids.append(int(p.name))
    return pids


def _machine_ticks() -> tuple[int, int]:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts[:8]), idle


class CpuMeter:
    """CPU used during the measured phase, in % of one core (200 % = both cores of this machine)."""

    def __init__(self, server_pid: int | None, postgres: bool) -> None:
        self.server_pid = server_pid
        self.postgres = postgres
        self.hz = os.sysconf("SC_CLK_TCK")

    def _snapshot(self) -> dict[str, float]:
        total, idle = _machine_ticks()
        snap = {"total": total, "idle": idle, "bench": time.process_time()}
        snap["server"] = _proc_ticks(self.server_pid) if self.server_pid else 0
        snap["postgres"] = 0
        return snap

    def _pg(self) -> dict[int, int]:
        return {p: _proc_ticks(p) for p in _postgres_pids()} if self.postgres else {}

    def start(self) -> None:
        self.before = self._snapshot()
        self.pg_before = self._pg()

    def stop(self, wall: float) -> dict[str, Any]:
        after = self._snapshot()
        d = {key: after[key] - self.before[key] for key in after}
        # per backend: a backend that started during the phase counts fully, one that exited is missed
        d["postgres"] = sum(t - self.pg_before.get(p, 0) for p, t in self._pg().items())
        cores = os.cpu_count() or 1
        busy = 100.0 * cores * (1 - d["idle"] / d["total"]) if d["total"] else 0.0

        def pct(ticks: float) -> float:
            return round(100.0 * ticks / self.hz / wall, 1)

        out: dict[str, Any] = {
            "machine_busy_pct": round(busy, 1),
            "bench_client_pct": round(100.0 * d["bench"] / wall, 1),
        }
        if self.server_pid:
            out["server_process_pct"] = pct(d["server"])
        if self.postgres:
            out["postgres_pct"] = pct(d["postgres"])
        ours = out["bench_client_pct"] + out.get("server_process_pct", 0) + out.get("postgres_pct", 0)
        out["other_processes_pct"] = round(max(busy - ours, 0.0), 1)
        return out


# --- the server under test ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def recreate_pg_database() -> str:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


class Server:
    def __init__(self, data_dir: Path, database_url: str | None, profile: str | None, nlu: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        env = dict(os.environ)
        env.update({"OTKLIK_DATA_DIR": str(data_dir), "OTKLIK_DEMO": "true", "OTKLIK_LOG_LEVEL": "WARNING"})
        env.pop("OTKLIK_DATABASE_URL", None)
        # every virtual buyer comes from 127.0.0.1: the web chat's per-address and per-chat limits are off
        for limit in ("SESSIONS_PER_ADDRESS", "MESSAGES_PER_ADDRESS", "MESSAGES_PER_SESSION"):
            env.setdefault(f"OTKLIK_WEBCHAT_{limit}", "0")
        if database_url:
            env["OTKLIK_DATABASE_URL"] = database_url
        if nlu:
            env["OTKLIK_NLU"] = nlu
        entry = data_dir / "serve.py"
        entry.write_text("from otklik.cli.main import app\napp()\n")
        cmd = [sys.executable]
        if profile:
            cmd += ["-m", "cProfile", "-o", profile]
        cmd += [str(entry), "run", "--port", str(self.port)]
        self.log_path = data_dir / "server.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=data_dir)

    async def wait_ready(self, timeout: float) -> float:
        t0 = time.perf_counter()
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.perf_counter() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited with {self.proc.returncode}; log: {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        return time.perf_counter() - t0
                await asyncio.sleep(0.25)
        raise SystemExit(f"server not ready after {timeout} s; log: {self.log_path}")

    def stop(self) -> int | None:
        for sig, grace in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        self._log.close()
        return self.proc.returncode


# --- database checks ------------------------------------------------------------------------------------

CHECKS = {
    "outbox_rows": "SELECT count(*) FROM outbox",
    "outbox_sent_once": "SELECT count(*) FROM outbox WHERE status = 'sent' AND send_count = 1",
    "outbox_not_sent": "SELECT count(*) FROM outbox WHERE status <> 'sent'",
    "outbox_send_count_not_1": "SELECT count(*) FROM outbox WHERE send_count <> 1",
    "outbox_send_count_gt_1": "SELECT count(*) FROM outbox WHERE send_count > 1",
    "inbound_events": "SELECT count(*) FROM inbound_events",
    "inbound_events_distinct": "SELECT count(*) FROM (SELECT DISTINCT channel_account_id, external_id FROM inbound_events) d",
    "inbound_events_bench": "SELECT count(*) FROM inbound_events WHERE external_id LIKE :like",
    "inbound_messages_bench": "SELECT count(*) FROM messages WHERE direction = 'in' AND external_id LIKE :like",
    "inbound_messages_stored_twice": (
        "SELECT count(*) FROM (SELECT conversation_id, external_id FROM messages WHERE direction = 'in' "
        "AND external_id IS NOT NULL GROUP BY conversation_id, external_id HAVING count(*) > 1) d"
    ),
    "outbound_messages_not_sent": "SELECT count(*) FROM messages WHERE direction = 'out' AND status <> 'sent'",
}
PER_CONVERSATION = "SELECT conversation_id, count(*) FROM messages WHERE direction = 'out' GROUP BY conversation_id"


def check_sqlite(path: Path, like: str) -> tuple[dict[str, int], dict[int, int]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {name: conn.execute(sql, {"like": like}).fetchone()[0] for name, sql in CHECKS.items()}
        per = dict(conn.execute(PER_CONVERSATION).fetchall())
    finally:
        conn.close()
    return out, per


async def check_pg(url: str, like: str) -> tuple[dict[str, int], dict[int, int]]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        out = {}
        for name, sql in CHECKS.items():
            args = [like] if ":like" in sql else []
            out[name] = await conn.fetchval(sql.replace(":like", "$1"), *args)
        per = {r[0]: r[1] for r in await conn.fetch(PER_CONVERSATION)}
    finally:
        await conn.close()
    return out, per


def verdict(db: dict[str, Any], per: dict[int, int], load: dict[str, Any]) -> dict[str, Any]:
    expected_events = load["alive"] * load["sent_per_session"]
    wrong = {c: (per.get(c, 0), n) for c, n in load["expected_out"].items() if per.get(c, 0) != n}
    db = dict(db)
    db["inbound_events_bench_expected"] = expected_events
    db["conversations_with_unexpected_reply_count"] = len(wrong)
    db["ok"] = bool(
        db["outbox_rows"] == db["outbox_sent_once"]
        and db["inbound_events"] == db["inbound_events_distinct"]
        and db["inbound_events_bench"] == expected_events
        and db["inbound_messages_bench"] == expected_events
        and db["inbound_messages_stored_twice"] == 0
        and not wrong
    )
    if wrong:
        db["unexpected_examples"] = {str(c): {"stored": s, "expected": e} for c, (s, e) in list(wrong.items())[:5]}
    return db


# --- main -----------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    database_url = args.database_url
    if args.pg and not database_url:
        database_url = await recreate_pg_database()
    backend = "postgresql" if database_url and database_url.startswith("postgresql") else "sqlite"
    server: Server | None = None
    tmp: Path | None = None
    startup = None
    if args.url:
        url = args.url.rstrip("/")
        data_dir = Path(args.data_dir) if args.data_dir else None
    else:
        tmp = data_dir = Path(tempfile.mkdtemp(prefix="otklik-bench-"))
        server = Server(data_dir, database_url, args.server_profile, args.nlu)
        url = server.url
    try:
        if server is not None:
            startup = await server.wait_ready(args.startup_timeout)
        cpu = CpuMeter(server.proc.pid if server else args.server_pid, backend == "postgresql")
        load = await run_load(url, args, cpu)
    finally:
        rc = server.stop() if server is not None else None
    like = f"%{load['tag']}-%"  # the external id embeds our client_id (today: <session key>:<client_id>)
    db: dict[str, Any] | None = None
    if backend == "postgresql" and database_url:
        db = verdict(*await check_pg(database_url, like), load)
    elif data_dir is not None and (data_dir / "otklik.db").exists():
        db = verdict(*check_sqlite(data_dir / "otklik.db", like), load)
    kept = None
    if tmp is not None:
        if args.keep:
            kept = str(tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    stats: Stats = load["stats"]
    plan: Plan = load["plan"]
    duration = load["duration"]
    total = load["alive"] * args.messages
    cpu = dict(load["cpu"])
    for key in ("server_process_pct", "postgres_pct", "bench_client_pct"):
        if key in cpu and stats.completed:  # CPU ms spent per completed message: robust to other load
            cpu[key.replace("_pct", "_ms_per_msg")] = round(cpu[key] / 100 * duration / stats.completed * 1000, 2)
    return {
        "bench": "inbound-webchat",
        "backend": backend,
        "server": "attached" if args.url else "started",
        "server_exit_code": rc,
        "server_startup_s": round(startup, 1) if startup is not None else None,
        "script": args.script,
        "client": args.client,
        "script_texts": plan.texts,
        "replies_per_message_calibrated": plan.expected,
        "greeting_replies": {"first_session_of_db": plan.greeting_first_session, "later_sessions": plan.greeting},
        "sessions": args.sessions,
        "messages_per_session": args.messages,
        "warmup_messages_per_session": args.warmup,
        "total_messages": total,
        "completed_messages": stats.completed,
        "replies_received": stats.replies,
        "duration_s": round(duration, 3),
        "throughput_msg_per_s": round(stats.completed / duration, 1) if duration else None,
        "throughput_replies_per_s": round(stats.replies / duration, 1) if duration else None,
        "latency_ms": ms_summary(stats.latencies),
        "latency_histogram_ms": histogram(stats.latencies),
        "session_create_ms": ms_summary(stats.session_create),
        "sessions_phase_s": round(load["sessions_s"], 3),
        "errors": dict(stats.errors),
        "failed_users": stats.failed_users,
        "lost": stats.lost,
        "lost_replies": stats.lost_replies,
        "late_replies": stats.late_replies,
        "duplicated": stats.seen_twice + stats.extra_replies,
        "duplicated_detail": {"reply_seen_twice": stats.seen_twice, "more_replies_than_expected": stats.extra_replies},
        "mismatched_reply_texts": stats.mismatched,
        "reply_timeout_s": args.timeout,
        "cpu_during_measured_phase": cpu,
        "db_check": db,
        "data_dir_kept": kept,
        "machine": info,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", "-k", type=int, default=50, help="concurrent web-chat sessions (virtual buyers)")
    p.add_argument("--messages", "-m", type=int, default=20, help="measured messages per session")
    p.add_argument("--warmup", type=int, default=4, help="unmeasured messages per session before the measured phase")
    p.add_argument("--script", choices=sorted(SCRIPTS), default="chat")
    p.add_argument(
        "--client", choices=["raw", "httpx"], default="raw", help="load generator's HTTP client (raw: lean, default)"
    )
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a message's replies (else lost)")
    p.add_argument("--url", help="attach to a running server instead of starting one")
    p.add_argument("--data-dir", help="with --url: the server's OTKLIK_DATA_DIR, to check its SQLite database")
    p.add_argument("--server-pid", type=int, help="with --url: the server's pid, to report its CPU use")
    p.add_argument("--pg", action="store_true", help=f"PostgreSQL: drop and recreate {PG_BENCH_DB} on 127.0.0.1")
    p.add_argument("--database-url", help="an existing postgresql+asyncpg:// URL (not recreated)")
    p.add_argument("--nlu", choices=["auto", "keywords"], help="OTKLIK_NLU for the started server")
    p.add_argument("--server-profile", help="run the started server under cProfile, write the stats here")
    p.add_argument("--startup-timeout", type=float, default=300.0)
    p.add_argument("--keep", action="store_true", help="keep the temp data dir (its path is in the log)")
    args = p.parse_args()
    if args.sessions < 1 or args.messages < 1 or args.warmup < 0:
        p.error("--sessions and --messages must be >= 1, --warmup >= 0")
    if args.server_profile:
        args.server_profile = str(Path(args.server_profile).resolve())
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(amain(args))
    else:
        result = uvloop.run(amain(args))
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
