"""`otklik channels add zenvia` against the fake Zenvia API (the CLI's own `asyncio.run`, so the fake runs in a
thread): the account and its two subscriptions, a reconnect that replaces them, bad arguments."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otklik.cli.main import app
from otklik.testing.fake_zenvia import DEFAULT_SENDER, DEFAULT_TOKEN, FakeZenviaServer

runner = CliRunner()


@pytest.fixture
def fake() -> Iterator[FakeZenviaServer]:
    server = FakeZenviaServer()
    server.add_template("pedido_pronto", "pt_BR", "Olá {{name}}")
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        async with server:
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield server
    stop.set()
    thread.join(10)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeZenviaServer) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("OTKLIK_DATABASE_URL", "OTKLIK_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")
    monkeypatch.setenv("OTKLIK_DEMO", "false")
    monkeypatch.setenv("OTKLIK_ZENVIA_API_URL", fake.base_url)
    monkeypatch.setenv("OTKLIK_PUBLIC_URL", "https://bot.example.com")


def _add(*extra: str) -> list[str]:
    return ["channels", "add", "zenvia", "--token", DEFAULT_TOKEN, "--from", DEFAULT_SENDER, *extra]


def test_add_zenvia_subscribes_both_events_and_syncs_templates(fake: FakeZenviaServer) -> None:
    added = runner.invoke(app, _add("--name", "microcom"))
    assert added.exit_code == 0, added.output
    assert "https://bot.example.com/webhooks/zenvia/" in added.output and "templates synced: 1" in added.output
    assert DEFAULT_TOKEN not in added.output
    first = dict(fake.state.subscriptions)
    assert sorted(s["eventType"] for s in first.values()) == ["MESSAGE", "MESSAGE_STATUS"]
    again = runner.invoke(app, _add())
    assert again.exit_code == 0 and "updated" in again.output, again.output
    assert len(fake.state.subscriptions) == 2 and not set(first) & set(fake.state.subscriptions)  # replaced
    urls = {s["webhook"]["url"] for s in [*first.values(), *fake.state.subscriptions.values()]}
    assert len(urls) == 1  # the same webhook URL: only the secret changed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--token", "FAKEwrongTokenNotReal000"), "Zenvia rejected the API token"),
        (("--token", "short"), "Zenvia API token"),
        (("--from", "<script>alert(1)</script>"), "sender"),
        (("--api-url", "ftp://x"), "https://"),
        (("--pack", "no-such-pack"), "pack"),
    ],
)
def test_bad_arguments_are_refused(change: tuple[str, str], message: str, fake: FakeZenviaServer) -> None:
    result = runner.invoke(app, [*_add(), *change])
    assert result.exit_code == 2 and message in result.output, result.output
    assert fake.state.subscriptions == {}


def test_without_a_public_url_or_with_zenvia_down(monkeypatch: pytest.MonkeyPatch, fake: FakeZenviaServer) -> None:
    monkeypatch.delenv("OTKLIK_PUBLIC_URL")
    result = runner.invoke(app, _add())
    assert result.exit_code == 2 and "OTKLIK_PUBLIC_URL" in result.output
    monkeypatch.setenv("OTKLIK_PUBLIC_URL", "https://bot.example.com")
    monkeypatch.setenv("OTKLIK_ZENVIA_API_URL", "http://127.0.0.1:9")
    result = runner.invoke(app, _add())
    assert result.exit_code == 2 and "did not answer" in result.output
