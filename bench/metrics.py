#!/usr/bin/env python
"""Metrics at a busy seller's year: seeds N messages (default 2 000 000) with their kernel events, runs the
aggregation job from scratch and incrementally, then times the dashboard and the API on the aggregate rows.
Prints ONE JSON object on stdout. SQLite (a file in a temp dir).

    .venv/bin/python bench/metrics.py                                 # 2 000 000 messages, ~100 000 conversations
    .venv/bin/python bench/metrics.py --messages 200000 --repeat 20   # a quicker run
    .venv/bin/python bench/metrics.py --sqlite-file /tmp/m.db --keep  # keep the seeded file

The seed (stdlib sqlite3 `executemany`, after the app's migrations): conversations over three channel
accounts (telegram, webhook, wildberries), spread over the last 365 days; each has sessions of buyer / bot
turns (the bot answers after 0.3-25 s), a new session after 1-40 days (reopened); 30 % came from one of
eight deep-link sources, a flow per session, 15 % of sessions hand off (asked / red flag / retries / flow)
and most get an operator's answer (five operators) and a close; half the bot messages are read.

Measured: the full aggregation (`recompute(full=True)`), a re-run with nothing new, a run after 1 000 new
messages today; then p50/p95 of `GET /admin/metrics` (the last 30 days, the whole year, the year for one
channel, the year for one source), the conversations behind a number, an XLSX export, and `GET
/api/v1/metrics` for the year. Server time = the in-process ASGI call. The target is p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otklik.bootstrap import Otklik
from otklik.capabilities.metrics.aggregate import counters_of, recompute
from otklik.config import Settings
from otklik.platform.apitokens import create_token
from otklik.platform.users import Role, create_user
from otklik.web.app import create_app

PASSWORD = "bench password 123"
SOURCES = ("insta", "vk", "utm_google", "ctwa_ad1", "qr_shop", "site", "tg_channel", "email")
FLOWS = ("greeting", "order_status", "returns", "cashback", "sizes", "delivery")
REASONS = ("buyer_request", "red_flag:threat", "retries_exhausted", "cannot_answer", "flow")
OPERATORS = ("olga", "ivan", "maria", "petr", "anna")
TARGET_P95_MS = 300.0


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def conversations_plan(n_messages: int, n_convs: int, now: datetime, seed: int) -> Iterator[dict[str, Any]]:
    """Each conversation's rows: messages (id assigned later), events."""
    rnd = random.Random(seed)
    per = max(2, n_messages // n_convs)
    for cid in range(1, n_convs + 1):
        messages: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        when = now - timedelta(seconds=rnd.randint(3600, 365 * 86400))
        source = rnd.choice(SOURCES) if rnd.random() < 0.3 else None
        left = per
        while left > 0 and when < now:
            turns = min(left // 2 or 1, rnd.randint(1, 5))
            flow = rnd.choice(FLOWS)
            if source:
                events.append((when, "bot", "start", {"payload": source, "flow": flow}))
                source = None if rnd.random() < 0.7 else source
            handoff = rnd.random() < 0.15
            for _turn in range(turns):
                messages.append(("in", "buyer", "received", when, None, None, None))
                reply = when + timedelta(seconds=rnd.choice((0.3, 0.8, 1.2, 2, 3, 5, 8, 12, 25)))
                read = reply + timedelta(seconds=rnd.randint(5, 3600)) if rnd.random() < 0.5 else None
                messages.append(("out", "bot", "sent", when, reply, read, None))
                when = reply + timedelta(seconds=rnd.randint(10, 600))
                left -= 2
            if handoff:
                events.append((when, "bot", "handoff", {"reason": rnd.choice(REASONS), "context": {"flow": flow}}))
                if rnd.random() < 0.85:
                    answered = when + timedelta(seconds=rnd.randint(30, 4 * 3600))
                    operator = rnd.choice(OPERATORS)
                    messages.append(("out", "operator", "sent", answered, answered, None, operator))
                    left -= 1
                    closed = answered + timedelta(seconds=rnd.randint(60, 3600))
                    events.append((closed, f"user:{operator}", "conversation.close", {}))
                    when = closed
            else:
                events.append((when, "bot", "flow_end", {"flow": flow}))
            when += timedelta(days=rnd.randint(1, 40), seconds=rnd.randint(0, 86400))
        yield {"id": cid, "account": cid % 3, "messages": messages, "events": events}


def seed(path: Path, n_messages: int, n_convs: int, now: datetime, seed_value: int) -> tuple[int, int]:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    accounts = []
    with db:
        for i, (kind, name) in enumerate((("telegram", "tg-main"), ("webhook", "site-api"), ("wildberries", "wb"))):
            cur = db.execute(
                "INSERT INTO channel_accounts (kind, name, pack, config, secret, enabled, created_at)"
                " VALUES (?, ?, 'care-ru', '{}', NULL, 0, ?)",
                (kind, f"bench-{name}-{i}", ts(now - timedelta(days=400))),
            )
            accounts.append(cur.lastrowid)
    mid = eid = 0
    message_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    conv_rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        with db:
            db.executemany(
                "INSERT INTO contacts (id, display_name, language, subscribed, reachable, tags, fields, created_at)"
                " VALUES (?, '', 'ru', 1, 1, '{}', '{}', ?)",
                ((c[0], c[5]) for c in conv_rows),
            )
            db.executemany(
                "INSERT INTO contact_identities (id, contact_id, channel_account_id, external_id, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                ((c[0], c[0], c[1], f"b{c[0]}", c[5]) for c in conv_rows),
            )
            db.executemany(
                "INSERT INTO conversations (id, contact_id, identity_id, channel_account_id, status, priority, state,"
                " last_message_at, unread, last_text, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'bot', 0, '{}', ?, 0, '', ?, ?)",
                ((c[0], c[0], c[0], c[1], c[2], c[5], c[2]) for c in conv_rows),
            )
            db.executemany(
                "INSERT INTO messages (id, conversation_id, direction, author, kind, text, payload, status,"
                " created_at, sent_at, read_at) VALUES (?, ?, ?, ?, 'text', 'x', '{}', ?, ?, ?, ?)",
                message_rows,
            )
            db.executemany(
                "INSERT INTO event_log (id, ts, actor, kind, subject_type, subject_id, data)"
                " VALUES (?, ?, ?, ?, 'conversation', ?, ?)",
                event_rows,
            )
        message_rows.clear()
        event_rows.clear()
        conv_rows.clear()

    for conv in conversations_plan(n_messages, n_convs, now, seed_value):
        cid, account = conv["id"], accounts[conv["account"]]
        first = conv["messages"][0][3] if conv["messages"] else now
        last = first
        for direction, author, status, created, sent, read, operator in conv["messages"]:
            mid += 1
            message_rows.append((mid, cid, direction, author, status, ts(created),
                                 ts(sent) if sent else None, ts(read) if read else None))  # fmt: skip
            last = max(last, created)
            if operator:
                eid += 1
                event_rows.append((eid, ts(created), f"user:{operator}", "conversation.reply", str(cid),
                                   json.dumps({"message_id": mid})))  # fmt: skip
        for when, actor, kind, data in conv["events"]:
            eid += 1
            event_rows.append((eid, ts(when), actor, kind, str(cid), json.dumps(data)))
        conv_rows.append((cid, account, ts(last), None, None, ts(first)))
        if len(message_rows) > 50_000:
            flush()
    flush()
    db.close()
    return mid, eid


def quantiles(samples: list[float], cpu: list[float]) -> dict[str, float]:
    ordered, cpu_ordered = sorted(samples), sorted(cpu)

    def p95(values: list[float]) -> float:
        return round(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], 2)

    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2), "p95_ms": p95(ordered),
            "max_ms": round(ordered[-1], 2), "cpu_p50_ms": round(statistics.median(cpu_ordered), 2),
            "cpu_p95_ms": p95(cpu_ordered)}  # fmt: skip


async def sign_in(http: httpx.AsyncClient, login: str) -> None:
    page = await http.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    assert token, "no login form"
    response = await http.post(
        "/admin/login", data={"login": login, "password": PASSWORD, "csrf_token": token.group(1), "next": "/admin"}
    )
    assert response.status_code == 303, response.text


async def add_today(otk: Otklik, now: datetime, count: int) -> None:
    """`count` new messages today in existing conversations (what the incremental run must pick up)."""
    path = Path(otk.settings.database_url.split("///", 1)[1])

    def work() -> None:
        db = sqlite3.connect(path)
        top = db.execute("SELECT MAX(id) FROM messages").fetchone()[0]
        rows = []
        for i in range(count):
            when = now - timedelta(seconds=count - i)
            rows.append((top + i + 1, 1 + i % 500, "in" if i % 2 == 0 else "out", "buyer" if i % 2 == 0 else "bot",
                         "received" if i % 2 == 0 else "sent", ts(when), None if i % 2 == 0 else ts(when)))  # fmt: skip
        with db:
            db.executemany(
                "INSERT INTO messages (id, conversation_id, direction, author, kind, text, payload, status, created_at,"
                " sent_at) VALUES (?, ?, ?, ?, 'text', 'x', '{}', ?, ?, ?)",
                rows,
            )
            db.execute("UPDATE conversations SET last_message_at = ? WHERE id <= 500", (ts(now),))
        db.close()

    await asyncio.to_thread(work)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--per-conversation", type=int, default=20, help="messages per conversation (about)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--sqlite-file", type=Path, help="SQLite file to create (default: in a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="otklik-metrics-bench-"))
    path = args.sqlite_file or data_dir / "otklik.db"
    if path.exists():
        path.unlink()
    url = f"sqlite+aiosqlite:///{path}"
    settings = Settings(env="test", demo=False, data_dir=data_dir, database_url=url, nlu="keywords",
                        log_level="WARNING")  # fmt: skip
    otk = Otklik.build(settings)
    await otk.start()
    out: dict[str, Any] = {"database": "sqlite", "python": platform.python_version()}
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        started = time.perf_counter()
        n_convs = max(1, args.messages // args.per_conversation)
        messages, events = await asyncio.to_thread(seed, path, args.messages, n_convs, now, args.seed)
        out |= {"messages": messages, "events": events, "conversations": n_convs,
                "seed_seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        counters = counters_of(otk.capabilities)
        started = time.perf_counter()
        full = await recompute(otk.db, counters, now=now, full=True)
        out["aggregate_full_seconds"] = round(time.perf_counter() - started, 1)
        out["sessions"] = full.sessions
        out["aggregate_rows"] = full.rows
        started = time.perf_counter()
        again = await recompute(otk.db, counters, now=now)
        out["aggregate_rerun_seconds"] = round(time.perf_counter() - started, 2)
        out["aggregate_rerun_from"] = again.start.isoformat()
        await add_today(otk, now, 1000)
        started = time.perf_counter()
        await recompute(otk.db, counters, now=now + timedelta(seconds=1))
        out["aggregate_after_1000_new_seconds"] = round(time.perf_counter() - started, 2)
        await create_user(otk.db, "analyst", Role.ANALYST, password=PASSWORD, language="en")
        _id, token = await create_token(otk.db, "bench", "metrics", actor="bench")
        app = create_app(otk, worker=False, manage_lifecycle=False)
        year = {"from": (now - timedelta(days=364)).date().isoformat(), "to": now.date().isoformat()}
        cases = {
            "dashboard_30_days": ("/admin/metrics", {}),
            "dashboard_year": ("/admin/metrics", year),
            "dashboard_year_telegram": ("/admin/metrics", {**year, "channel": "telegram"}),
            "dashboard_year_source": ("/admin/metrics", {**year, "source": "insta"}),
            "behind_handoffs_30_days": ("/admin/metrics/behind", {"metric": "handoffs"}),
            "export_xlsx_days_year": ("/admin/metrics/export.xlsx", {**year, "table": "days"}),
            "api_year": ("/api/v1/metrics", year),
        }
        timings: dict[str, list[float]] = {k: [] for k in cases}
        cpu: dict[str, list[float]] = {k: [] for k in cases}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench.test") as http:
            await sign_in(http, "analyst")
            for _ in range(args.repeat):
                for name, (path_, params) in cases.items():
                    headers = {"Authorization": f"Bearer {token}"} if path_.startswith("/api/") else {}
                    t0, c0 = time.perf_counter(), time.process_time()
                    response = await http.get(path_, params=params, headers=headers)
                    timings[name].append((time.perf_counter() - t0) * 1000)
                    cpu[name].append((time.process_time() - c0) * 1000)
                    assert response.status_code == 200, (name, response.status_code, response.text[:300])
        out["endpoints"] = {k: quantiles(v, cpu[k]) for k, v in timings.items()}
        worst = max(v["p95_ms"] for k, v in out["endpoints"].items() if k.startswith("dashboard"))
        out["dashboard_worst_p95_ms"] = worst
        out["target_p95_ms"] = TARGET_P95_MS
        out["dashboard_target_met"] = worst < TARGET_P95_MS
        out["dashboard_worst_cpu_p95_ms"] = max(
            v["cpu_p95_ms"] for k, v in out["endpoints"].items() if k.startswith("dashboard")
        )
        out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        await otk.close()
    if args.keep:
        out["data_dir"] = str(data_dir)
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
