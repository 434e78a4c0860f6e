"""Telegram benchmark: webhook update -> sendMessage at the fake Bot API, otklik vs a bare aiogram echo bot
on the same fake and load; then an outbound burst to many chats under the 30 msg/s limit.

Prints one JSON object. Not a test: nothing asserts these timings.

    .venv/bin/python bench/telegram.py [--users 20] [--messages 10] [--rounds 3] [--burst 3000] [--rate 30] [--skip-burst]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from otklik.channels.telegram.adapter import SECRET_HEADER  # noqa: E402
from otklik.testing.fake_telegram import FakeTelegramServer  # noqa: E402

SECRET = "fake-webhook-secret-for-the-bench"
OTKLIK_TOKEN = "111111:BENCH-otklik"
BARE_TOKEN = "222222:BENCH-bare"
BURST_TOKEN = "333333:BENCH-burst"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def env_for(data: Path, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        {
            "OTKLIK_DATA_DIR": str(data),
            "OTKLIK_TELEGRAM_API_URL": api_url,
            "OTKLIK_NLU": "keywords",
            "OTKLIK_PUBLIC_URL": "https://bench.invalid",
            "OTKLIK_LOG_LEVEL": "WARNING",
            "OTKLIK_PACKS_DIRS": json.dumps([str(ROOT / "tests" / "packs")]),
            "OTKLIK_ENV": "test",
        }
    )
    return env


async def add_bot(data: Path, api_url: str, token: str, name: str, limits: dict[str, Any]) -> int:
    """Create the data folder's database with one Telegram account (pack echo: one reply per message)."""
    from otklik.bootstrap import Otklik
    from otklik.config import Settings
    from otklik.platform.channel_accounts import add_account

    app = Otklik.build(
        Settings(
            data_dir=data, telegram_api_url=api_url, nlu="keywords", env="test", packs_dirs=(ROOT / "tests" / "packs",)
        )
    )
    await app.start()
    try:
        config = {"username": name, "webhook_secret": app.vault.encrypt(SECRET), **limits}
        return await add_account(
            app.db, app.vault, kind="telegram", name=name, pack="echo", secret=token, config=config
        )
    finally:
        await app.close()


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if (await http.get(url + "/healthz", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("server did not start")


async def drive(
    fake: FakeTelegramServer, token: str, webhook: str, users: int, messages: int, first_chat: int, greeting: bool
) -> dict[str, Any]:
    """Each user sends a message, waits for its reply at the fake, then sends the next."""
    latencies: list[float] = []
    answered: list[float] = []  # until the webhook's HTTP answer (the rest is the way to sendMessage)
    errors = 0
    bot = fake.bot(token)
    limits = httpx.Limits(max_connections=users + 4)

    async def replies(chat: int) -> int:
        return len(bot.sent.get(chat, []))

    async def user(chat: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        expected = 0
        texts = (["/start"] if greeting else []) + [f"m{n}" for n in range(messages)]
        for i, text in enumerate(texts):
            update = {
                "update_id": chat * 1000 + i,
                "message": {
                    "message_id": i + 1,
                    "date": int(time.time()),
                    "text": text,
                    "chat": {"id": chat, "type": "private", "first_name": "B"},
                    "from": {"id": chat, "is_bot": False, "first_name": "B"},
                },
            }
            started = time.time()
            response = await http.post(webhook, json=update, headers={SECRET_HEADER: SECRET})
            if response.status_code != 200:
                errors += 1
                continue
            if i or not greeting:
                answered.append(time.time() - started)
            expected += 1
            deadline = time.monotonic() + 10
            while await replies(chat) < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            if await replies(chat) < expected:
                errors += 1
                expected = await replies(chat)
                continue
            arrived = next(  # the newest matching call: scan from the end (the list only grows)
                c.at
                for c in reversed(fake.calls)
                if c.method == "sendMessage" and c.token == token and str(c.params.get("chat_id")) == str(chat)
            )
            if i or not greeting:
                latencies.append(arrived - started)

    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        began = time.monotonic()
        await asyncio.gather(*(user(first_chat + u, http) for u in range(users)))
        elapsed = time.monotonic() - began
    sent = sum(len(bot.sent.get(first_chat + u, [])) for u in range(users))
    expected_total = users * (messages + (1 if greeting else 0))
    return {
        "messages": len(latencies),
        "errors": errors,
        "duration_s": round(elapsed, 3),
        "throughput_msg_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            k: round(percentile(latencies, q) * 1000, 1) for k, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        | {"max": round(max(latencies) * 1000, 1)},
        "webhook_answered_ms": {k: round(percentile(answered, q) * 1000, 1) for k, q in (("p50", 0.5), ("p95", 0.95))},
        "lost": max(0, expected_total - sent),
        "duplicated": max(0, sent - expected_total),
    }


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


async def measured(proc: subprocess.Popen[bytes], run: Any) -> dict[str, Any]:
    """`drive` plus the server's CPU during it (ms per message: robust to other load on the machine)."""
    ticks = _cpu_ticks(proc.pid)
    result: dict[str, Any] = await run
    used = (_cpu_ticks(proc.pid) - ticks) / os.sysconf("SC_CLK_TCK")
    result["server_cpu_ms_per_msg"] = round(used * 1000 / max(result["messages"], 1), 2)
    result["server_cpu_pct"] = round(100 * used / result["duration_s"], 1) if result["duration_s"] else None
    return result


async def start_otklik(fake: FakeTelegramServer, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    data = tmp / "otklik"
    account = await add_bot(
        data, fake.base_url, OTKLIK_TOKEN, "bench_otklik_bot", {"per_second": None, "per_chat_interval": None}
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "otklik.cli", "run", "--port", str(port)],
        env=env_for(data, fake.base_url),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    await wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc, f"http://127.0.0.1:{port}/webhooks/telegram/{account}"


async def start_bare(fake: FakeTelegramServer) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "_bare_echo.py"), fake.base_url, BARE_TOKEN, str(port), SECRET],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    await wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc, f"http://127.0.0.1:{port}/webhook"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


async def compare(fake: FakeTelegramServer, tmp: Path, users: int, messages: int, rounds: int) -> dict[str, Any]:
    """Both servers run side by side; the rounds alternate otklik, bare, otklik, bare... so that load from
    other processes on the machine hits both alike. Each round uses fresh chats (otklik's start with
    /start, unmeasured). The summary is the best round of each and the median of the per-round ratios."""
    otklik_proc, otklik_url = await start_otklik(fake, tmp)
    try:
        bare_proc, bare_url = await start_bare(fake)
        try:
            runs: list[dict[str, Any]] = []
            for r in range(rounds):
                ours = await measured(
                    otklik_proc,
                    drive(fake, OTKLIK_TOKEN, otklik_url, users, messages, 10_000 + 1000 * r, greeting=True),
                )
                bare = await measured(
                    bare_proc, drive(fake, BARE_TOKEN, bare_url, users, messages, 100_000 + 1000 * r, greeting=False)
                )
                ratio = ours["throughput_msg_per_s"] / (bare["throughput_msg_per_s"] or 1)
                runs.append({"otklik": ours, "bare_aiogram": bare, "ratio": round(ratio, 3), "load": os.getloadavg()})
        finally:
            stop(bare_proc)
    finally:
        stop(otklik_proc)
    ratios = sorted(r["ratio"] for r in runs)
    best_ours = max(runs, key=lambda r: r["otklik"]["throughput_msg_per_s"])["otklik"]
    best_bare = max(runs, key=lambda r: r["bare_aiogram"]["throughput_msg_per_s"])["bare_aiogram"]
    return {
        "otklik": best_ours,
        "bare_aiogram": best_bare,
        "ratio_otklik_to_bare": round(best_ours["throughput_msg_per_s"] / (best_bare["throughput_msg_per_s"] or 1), 3),
        "ratio_median_of_rounds": ratios[len(ratios) // 2],
        "rounds": runs,
    }


async def bench_burst(fake: FakeTelegramServer, tmp: Path, chats: int, rate: float) -> dict[str, Any]:
    """`chats` conversations each get one reply queued; a worker sends them under `rate` msg/s."""
    from otklik.bootstrap import Otklik
    from otklik.config import Settings
    from otklik.core.messages import EventKind, InboundEvent

    data = tmp / "burst"
    account = await add_bot(
        data, fake.base_url, BURST_TOKEN, "bench_burst_bot", {"per_second": rate, "per_chat_interval": 1.0}
    )
    app = Otklik.build(
        Settings(
            data_dir=data,
            telegram_api_url=fake.base_url,
            nlu="keywords",
            env="test",
            packs_dirs=(ROOT / "tests" / "packs",),
        )
    )
    await app.start()
    for chat in range(chats):  # queued while no worker runs: the outbox holds `chats` replies
        await app.ingest(InboundEvent(account, f"s{chat}", str(50_000 + chat), EventKind.TEXT, text="/start"))
    await app.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "otklik.cli", "run", "--role", "worker"],
        env=env_for(data, fake.base_url),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    bot = fake.bot(BURST_TOKEN)
    try:
        deadline = time.monotonic() + chats / rate * 2 + 60
        while sum(len(v) for v in bot.sent.values()) < chats and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    times = sorted(c.at for c in fake.calls if c.method == "sendMessage" and c.token == BURST_TOKEN and c.status == 200)
    achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    per_chat = [len(v) for v in bot.sent.values()]
    window = [b - a for a, b in zip(times, times[30:], strict=False)]
    return {
        "messages": chats,
        "limit_per_s": rate,
        "delivered": len(times),
        "achieved_per_s": round(achieved, 2),
        "achieved_share_of_limit": round(achieved / rate, 3),
        "max_in_any_1s_window": max((sum(1 for t in times if s <= t < s + 1.0) for s in times), default=0),
        "min_seconds_for_30_sends": round(min(window), 3) if window else None,
        "duplicates": sum(n - 1 for n in per_chat if n > 1),
        "lost": chats - len(per_chat),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="alternating otklik/bare rounds (see `compare`)")
    args = parser.parse_args()
    if args.users < 1 or args.messages < 1 or args.burst < 2 or args.rate <= 0 or args.rounds < 1:
        parser.error("users, messages, rounds >= 1, burst >= 2 and rate > 0")
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "users": args.users,
        "messages_per_user": args.messages,
    }
    with tempfile.TemporaryDirectory(prefix="otklik-bench-tg-") as tmp:
        async with FakeTelegramServer(OTKLIK_TOKEN, username="bench_otklik_bot") as fake:
            fake.add_bot(BARE_TOKEN, username="bench_bare_bot")
            fake.add_bot(BURST_TOKEN, username="bench_burst_bot")
            result["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
            result |= await compare(fake, Path(tmp), args.users, args.messages, args.rounds)
            if not args.skip_burst:
                result["outbound_burst"] = await bench_burst(fake, Path(tmp), args.burst, args.rate)
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
