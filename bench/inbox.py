#!/usr/bin/env python
"""Inbox speed with a big database: seeds N conversations / M messages, then times the inbox through the
real FastAPI app (httpx ASGITransport, a signed-in operator). Prints ONE JSON object on stdout.

    .venv/bin/python bench/inbox.py                                  # SQLite file in a temp dir, 100k / 2M
    .venv/bin/python bench/inbox.py --db-url postgresql+asyncpg://postgres@127.0.0.1:5432/otklik_inbox_bench
    .venv/bin/python bench/inbox.py --conversations 10000 --messages 200000 --repeat 30
    .venv/bin/python bench/inbox.py --sqlite-file /tmp/inbox.db --keep   # seed once, re-run with --reuse

The seed is written with bulk inserts (stdlib sqlite3 `executemany`, asyncpg `COPY`) after the app's own
migrations: contacts with channel identities and tags, conversations over three channel accounts in every
status (5 % waiting for an operator, a tenth of them urgent; 5 % with an operator; 20 % closed), and the
messages interleaved across conversations the way real traffic arrives. PostgreSQL URLs must name a database
whose name contains "bench": its `public` schema is dropped and recreated.

Measured (server time = the in-process ASGI call, no network): each list view's first page, the waiting and
all views' second page by cursor, the list with a channel / tag / status filter, a text search, the whole
inbox page, the poll endpoints, and a conversation view (the latest page of history) of a random
conversation each time. Timings are printed, never asserted; the target is p95 < 300 ms.
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
from otklik.config import Settings
from otklik.platform.users import Role, create_user
from otklik.web.app import create_app

PASSWORD = "bench password 123"
WORDS = [
    "здравствуйте",
    "заказ",
    "товар",
    "брак",
    "возврат",
    "крем",
    "гель",
    "кешбэк",
    "отзыв",
    "доставка",
    "пункт",
    "выдачи",
    "размер",
    "цвет",
    "коробка",
    "штрихкод",
    "фото",
    "спасибо",
    "помогите",
    "когда",
    "деньги",
    "вернут",
    "не",
    "тот",
    "пришёл",
    "оператор",
    "менеджер",
    "жжёт",
    "аллергия",
]
TAGS = ("vip", "cashback", "брак", "опт", "повторный")
TARGET_P95_MS = 300.0


def ts_sqlite(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def plan(conversations: int, messages: int, accounts: list[int], seed: int) -> dict[str, Any]:
    """What to insert, as plain tuples (the same data for SQLite and PostgreSQL)."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    per = max(1, messages // conversations)
    convs = []
    for cid in range(1, conversations + 1):
        roll = rnd.random()
        status = "bot"
        if roll < 0.05:
            status = "waiting_operator"
        elif roll < 0.10:
            status = "operator"
        elif roll < 0.30:
            status = "closed"
        last = now - timedelta(seconds=rnd.randint(0, 180 * 86400))
        waiting = now - timedelta(seconds=rnd.randint(60, 2 * 86400)) if status != "bot" else None
        convs.append(
            {
                "id": cid,
                "account": accounts[cid % len(accounts)],
                "status": status,
                "priority": status == "waiting_operator" and rnd.random() < 0.1,
                "assigned": rnd.choice((None, 1, 2, 3)) if status in ("operator", "closed") else None,
                "waiting_since": waiting,
                "last": last,
                "created": last - timedelta(seconds=per * 60),
                "unread": rnd.randint(0, 4) if status in ("waiting_operator", "operator") else 0,
                "text": " ".join(rnd.choices(WORDS, k=rnd.randint(2, 8))),
                "tags": [t for t in TAGS if rnd.random() < 0.08],
            }
        )
    return {"convs": convs, "per": per, "rnd": rnd}


def message_rows(convs: list[dict[str, Any]], per: int, rnd: random.Random) -> Iterator[tuple[Any, ...]]:
    """Messages interleaved across conversations: round r writes the r-th message of every conversation."""
    mid = 0
    for r in range(per):
        for c in convs:
            mid += 1
            inbound = r % 2 == 0
            text = " ".join(rnd.choices(WORDS, k=rnd.randint(3, 14)))
            when = c["created"] + timedelta(seconds=60 * r)
            if inbound:
                yield (mid, c["id"], "in", "buyer", "text", text, "{}", f"b{mid}", "received", when, None)
            else:
                payload = '{"text": "", "buttons": [{"title": "Да", "payload": "yes"}]}' if r % 6 == 1 else "{}"
                yield (mid, c["id"], "out", "bot", "text", text, payload, None, "sent", when, when)


async def seed_sqlite(path: Path, data: dict[str, Any]) -> None:
    def work() -> None:
        db = sqlite3.connect(path)
        db.execute("PRAGMA synchronous=OFF")
        convs, per, rnd = data["convs"], data["per"], data["rnd"]
        with db:
            db.executemany(
                "INSERT INTO contacts (id, display_name, language, subscribed, reachable, tags, fields, created_at,"
                " last_seen_at) VALUES (?, ?, 'ru', 1, 1, ?, '{}', ?, ?)",
                (
                    (
                        c["id"],
                        f"Покупатель {c['id']}",
                        json.dumps({"list": c["tags"]}),
                        ts_sqlite(c["created"]),
                        ts_sqlite(c["last"]),
                    )
                    for c in convs
                ),
            )
            db.executemany(
                "INSERT INTO contact_identities (id, contact_id, channel_account_id, external_id, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                ((c["id"], c["id"], c["account"], f"chat-{c['id']}", ts_sqlite(c["created"])) for c in convs),
            )
            db.executemany(
                "INSERT INTO contact_tags (contact_id, tag, created_at) VALUES (?, ?, ?)",
                ((c["id"], t, ts_sqlite(c["created"])) for c in convs for t in c["tags"]),
            )
            db.executemany(
                "INSERT INTO conversations (id, contact_id, identity_id, channel_account_id, status, priority, state,"
                " assigned_to, waiting_since, last_message_at, unread, last_text, closed_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        c["id"],
                        c["id"],
                        c["id"],
                        c["account"],
                        c["status"],
                        c["priority"],
                        json.dumps({"status": c["status"], "vars": {}}),
                        c["assigned"],
                        ts_sqlite(c["waiting_since"]) if c["waiting_since"] else None,
                        ts_sqlite(c["last"]),
                        c["unread"],
                        c["text"][:200],
                        ts_sqlite(c["last"]) if c["status"] == "closed" else None,
                        ts_sqlite(c["created"]),
                        ts_sqlite(c["last"]),
                    )
                    for c in convs
                ),
            )
            db.executemany(
                "INSERT INTO messages (id, conversation_id, direction, author, kind, text, payload, external_id, status,"
                " created_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((*r[:9], ts_sqlite(r[9]), ts_sqlite(r[10]) if r[10] else None) for r in message_rows(convs, per, rnd)),
            )
        db.close()

    await asyncio.to_thread(work)


async def seed_pg(url: str, data: dict[str, Any]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        convs, per, rnd = data["convs"], data["per"], data["rnd"]
        await conn.copy_records_to_table(
            "contacts",
            columns=[
                "id",
                "display_name",
                "language",
                "subscribed",
                "reachable",
                "tags",
                "fields",
                "created_at",
                "last_seen_at",
            ],
            records=[
                (
                    c["id"],
                    f"Покупатель {c['id']}",
                    "ru",
                    True,
                    True,
                    json.dumps({"list": c["tags"]}),
                    "{}",
                    c["created"],
                    c["last"],
                )
                for c in convs
            ],
        )
        await conn.copy_records_to_table(
            "contact_identities",
            columns=["id", "contact_id", "channel_account_id", "external_id", "created_at"],
            records=[(c["id"], c["id"], c["account"], f"chat-{c['id']}", c["created"]) for c in convs],
        )
        await conn.copy_records_to_table(
            "contact_tags",
            columns=["contact_id", "tag", "created_at"],
            records=[(c["id"], t, c["created"]) for c in convs for t in c["tags"]],
        )
        await conn.copy_records_to_table(
            "conversations",
            columns=[
                "id",
                "contact_id",
                "identity_id",
                "channel_account_id",
                "status",
                "priority",
                "state",
                "assigned_to",
                "waiting_since",
                "last_message_at",
                "unread",
                "last_text",
                "closed_at",
                "created_at",
                "updated_at",
            ],
            records=[
                (
                    c["id"],
                    c["id"],
                    c["id"],
                    c["account"],
                    c["status"],
                    c["priority"],
                    json.dumps({"status": c["status"], "vars": {}}),
                    c["assigned"],
                    c["waiting_since"],
                    c["last"],
                    c["unread"],
                    c["text"][:200],
                    c["last"] if c["status"] == "closed" else None,
                    c["created"],
                    c["last"],
                )
                for c in convs
            ],
        )
        batch: list[tuple[Any, ...]] = []
        columns = [
            "id",
            "conversation_id",
            "direction",
            "author",
            "kind",
            "text",
            "payload",
            "external_id",
            "status",
            "created_at",
            "sent_at",
        ]
        for row in message_rows(convs, per, rnd):
            batch.append(row)
            if len(batch) >= 200_000:
                await conn.copy_records_to_table("messages", columns=columns, records=batch)
                batch = []
        if batch:
            await conn.copy_records_to_table("messages", columns=columns, records=batch)
        for table in ("contacts", "contact_identities", "conversations", "messages"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        await conn.execute("ANALYZE")  # what autovacuum does shortly after a bulk load
    finally:
        await conn.close()


async def reset_pg(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    if "bench" not in name:
        raise SystemExit(f"refusing to drop the schema of {name!r}: use a database whose name contains 'bench'")
    import asyncpg

    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0] + "/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(ordered[-1], 2),
    }


async def sign_in(http: httpx.AsyncClient, login: str) -> None:
    page = await http.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    assert token, "no login form"
    response = await http.post(
        "/admin/login", data={"login": login, "password": PASSWORD, "csrf_token": token.group(1), "next": "/admin"}
    )
    assert response.status_code == 303, response.text


async def measure(http: httpx.AsyncClient, conversations: int, repeat: int, seed: int) -> dict[str, dict[str, float]]:
    rnd = random.Random(seed + 1)

    async def get(url: str) -> httpx.Response:
        response = await http.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")
        return response

    first_all = await get("/admin/inbox/list?view=all")
    first_waiting = await get("/admin/inbox/list?view=waiting")
    cursors = {
        "all": first_all.headers["x-next-cursor"],
        "waiting": first_waiting.headers["x-next-cursor"],
    }
    account = re.search(r'data-id="(\d+)"', first_all.text)
    fixed: dict[str, str] = {
        "list_waiting": "/admin/inbox/list?view=waiting",
        "list_mine": "/admin/inbox/list?view=mine",
        "list_all": "/admin/inbox/list?view=all",
        "list_closed": "/admin/inbox/list?view=closed",
        "list_waiting_page2": f"/admin/inbox/list?view=waiting&cursor={cursors['waiting']}",
        "list_all_page2": f"/admin/inbox/list?view=all&cursor={cursors['all']}",
        "list_all_by_channel": "/admin/inbox/list?view=all&account=2",
        "list_all_by_tag": "/admin/inbox/list?view=all&tag=vip",
        "list_all_by_status": "/admin/inbox/list?view=all&status=operator",
        "list_waiting_by_channel": "/admin/inbox/list?view=waiting&account=3",
        "search_text": "/admin/inbox/list?view=all&q=аллергия жжёт",
        "inbox_page": "/admin/inbox",
        "pulse": "/admin/inbox/pulse",
    }
    assert account
    results: dict[str, list[float]] = {name: [] for name in fixed}
    results["conversation_view"] = []
    results["conversation_poll"] = []
    for url in fixed.values():
        for _ in range(3):  # warm-up
            await get(url)
    for _ in range(repeat):
        for name, url in fixed.items():
            start = time.perf_counter()
            await get(url)
            results[name].append((time.perf_counter() - start) * 1000)
        cid = rnd.randint(1, conversations)
        start = time.perf_counter()
        page = await get(f"/admin/inbox/c/{cid}")
        results["conversation_view"].append((time.perf_counter() - start) * 1000)
        last = re.search(r'data-last="(\d+)"', page.text)
        start = time.perf_counter()
        await get(f"/admin/inbox/c/{cid}/messages?after={last.group(1) if last else 0}")
        results["conversation_poll"].append((time.perf_counter() - start) * 1000)
    return {name: quantiles(samples) for name, samples in results.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-url", help="a PostgreSQL URL (database name must contain 'bench'); default SQLite")
    parser.add_argument("--sqlite-file", type=Path, help="SQLite file to create (default: in a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="the database is already seeded: measure only")
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="otklik-inbox-bench-"))
    if args.db_url:
        url = args.db_url
        if not args.reuse:
            await reset_pg(url)
    else:
        path = args.sqlite_file or data_dir / "otklik.db"
        if path.exists() and not args.reuse:
            path.unlink()
        url = f"sqlite+aiosqlite:///{path}"
    settings = Settings(
        env="test", demo=False, data_dir=data_dir, database_url=url, nlu="keywords", log_level="WARNING"
    )
    otk = Otklik.build(settings)
    seeded_in = None
    await otk.start()
    try:
        if not args.reuse:
            accounts = [next(iter(otk.ctx.accounts))]
            for name in ("wb-chat", "telegram-main"):
                accounts.append(await otk.ensure_account(name, "recording", settings.default_pack))
            for login in ("operator", "operator2", "operator3"):
                await create_user(otk.db, login, Role.OPERATOR, password=PASSWORD, language="en")
            started = time.perf_counter()
            data = plan(args.conversations, args.messages, accounts, args.seed)
            if args.db_url:
                await seed_pg(url, data)
            else:
                await seed_sqlite(Path(url.split("///", 1)[1]), data)
            seeded_in = round(time.perf_counter() - started, 1)
            await otk.reload()
        app = create_app(otk, worker=False, manage_lifecycle=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as http:
            await sign_in(http, "operator")
            endpoints = await measure(http, args.conversations, args.repeat, args.seed)
    finally:
        await otk.close()
    worst = max(v["p95_ms"] for v in endpoints.values())
    print(
        json.dumps(
            {
                "database": "postgresql" if args.db_url else "sqlite",
                "conversations": args.conversations,
                "messages": args.messages,
                "seed_seconds": seeded_in,
                "repeat": args.repeat,
                "endpoints": endpoints,
                "worst_p95_ms": worst,
                "target_p95_ms": TARGET_P95_MS,
                "within_target": worst < TARGET_P95_MS,
                "machine": {
                    "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version,
                    "cpus": os.cpu_count(),
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                    "platform": platform.platform(),
                },
                "data_dir": str(data_dir) if args.keep else None,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    if not args.keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
