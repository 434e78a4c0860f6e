"""`otklik channels add telegram`, `otklik telegram set-webhook` and `otklik qr` against the fake Bot API
(the real aiogram client over loopback), with bad tokens, URLs and payloads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from typer.testing import CliRunner

from otklik.cli.main import app
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer

runner = CliRunner()


@pytest.fixture
def fake() -> Iterator[FakeTelegramServer]:
    """The fake runs in its own thread and loop, because the CLI runs `asyncio.run` itself."""
    server = FakeTelegramServer(username="shop_care_bot")
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
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("OTKLIK_DATABASE_URL", "OTKLIK_DATA_DIR", "OTKLIK_TELEGRAM_API_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")


def test_add_telegram_validates_the_token_masks_it_and_is_idempotent(
    fake: FakeTelegramServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTKLIK_TELEGRAM_API_URL", fake.base_url)
    added = runner.invoke(app, ["channels", "add", "telegram", "--token", DEFAULT_TOKEN])
    assert added.exit_code == 0, added.output
    assert "@shop_care_bot" in added.output and DEFAULT_TOKEN not in added.output
    assert "https://t.me/shop_care_bot?start=care" in added.output
    again = runner.invoke(app, ["channels", "add", "telegram", "--token", DEFAULT_TOKEN])
    assert again.exit_code == 0 and "already connected" in again.output
    listed = runner.invoke(app, ["channels", "list"])
    assert listed.output.count("telegram") == 1 and DEFAULT_TOKEN not in listed.output


@pytest.mark.parametrize("token", ["999999:UNKNOWN-token", "not-a-token", "123:" + "x" * 300])
def test_refused_or_malformed_tokens_are_clear_errors(
    fake: FakeTelegramServer,
    monkeypatch: pytest.MonkeyPatch,
    token: str,
) -> None:
    monkeypatch.setenv("OTKLIK_TELEGRAM_API_URL", fake.base_url)
    result = runner.invoke(app, ["channels", "add", "telegram", "--token", token])
    assert result.exit_code == 2 and "refused" in result.output and "Traceback" not in result.output


def test_an_unreachable_bot_api_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTKLIK_TELEGRAM_API_URL", "http://127.0.0.1:9")
    result = runner.invoke(app, ["channels", "add", "telegram", "--token", DEFAULT_TOKEN])
    assert result.exit_code == 2 and "cannot reach" in result.output


def test_set_webhook_registers_the_route_with_a_secret(
    fake: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTKLIK_TELEGRAM_API_URL", fake.base_url)
    assert runner.invoke(app, ["channels", "add", "telegram", "--token", DEFAULT_TOKEN]).exit_code == 0
    assert runner.invoke(app, ["telegram", "set-webhook", "--url", "http://insecure.example"]).exit_code == 2
    result = runner.invoke(app, ["telegram", "set-webhook", "--url", "https://bot.example.com/"])
    assert result.exit_code == 0, result.output
    hook = fake.bot().webhook
    assert hook["url"] == "https://bot.example.com/webhooks/telegram/2"
    assert len(hook["secret_token"]) >= 32


def test_qr_writes_a_decodable_card_and_refuses_bad_payloads(
    fake: FakeTelegramServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("OTKLIK_TELEGRAM_API_URL", fake.base_url)
    assert runner.invoke(app, ["channels", "add", "telegram", "--token", DEFAULT_TOKEN]).exit_code == 0
    out = tmp_path / "card.png"
    result = runner.invoke(app, ["qr", "--payload", "cb_SKU-42", "-o", str(out), "--caption", "Бонус за отзыв"])
    assert result.exit_code == 0, result.output
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(out))]
    assert decoded == ["https://t.me/shop_care_bot?start=cb_SKU-42"]
    svg = runner.invoke(app, ["qr", "--payload", "cb_1", "-o", str(tmp_path / "card.svg")])
    assert svg.exit_code == 0 and (tmp_path / "card.svg").read_text().lstrip().startswith("<?xml")
    for bad in (
        ["--payload", "has space", "-o", str(out)],
        ["--payload", "x" * 65, "-o", str(out)],
        ["--payload", "ok", "-o", str(tmp_path / "card.gif")],
    ):
        refused = runner.invoke(app, ["qr", *bad])
        assert refused.exit_code == 2 and "Traceback" not in refused.output


def test_regression_a_channel_added_from_the_cli_is_in_the_audit_log(
    fake: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sqlite3

    monkeypatch.setenv("OTKLIK_TELEGRAM_API_URL", fake.base_url)
    assert runner.invoke(app, ["channels", "add", "telegram", "--token", DEFAULT_TOKEN]).exit_code == 0
    assert runner.invoke(app, ["channels", "add", "telegram", "--token", DEFAULT_TOKEN]).exit_code == 0  # no-op
    with sqlite3.connect(tmp_path / "data" / "otklik.db") as db:
        rows = db.execute("SELECT actor, kind FROM event_log WHERE kind = 'channel.add'").fetchall()
    assert rows == [("cli", "channel.add")]
