"""`otklik channels add whatsapp` and `otklik whatsapp sync-templates` against the fake Graph API (the CLI's
own `asyncio.run`, so the fake runs in a thread), with bad arguments; `--api-url` points one account at the
fake for an offline demo."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otklik.cli.main import app
from otklik.testing.fake_whatsapp import DEFAULT_APP_SECRET, DEFAULT_TOKEN, FakeWhatsAppServer

runner = CliRunner()


@pytest.fixture
def fake() -> Iterator[FakeWhatsAppServer]:
    server = FakeWhatsAppServer()
    server.add_template("pedido_listo", "es", params=1)
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
    for key in ("OTKLIK_DATABASE_URL", "OTKLIK_DATA_DIR", "OTKLIK_WHATSAPP_API_URL", "OTKLIK_PUBLIC_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")
    monkeypatch.setenv("OTKLIK_DEMO", "false")


def _add(fake: FakeWhatsAppServer, *extra: str) -> list[str]:
    return ["channels", "add", "whatsapp", "--phone-number-id", fake.phone_number_id, "--waba-id", fake.waba_id,
            "--token", DEFAULT_TOKEN, "--app-secret", DEFAULT_APP_SECRET, *extra]  # fmt: skip


def test_add_whatsapp_prints_the_webhook_and_syncs_templates(
    fake: FakeWhatsAppServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTKLIK_WHATSAPP_API_URL", fake.base_url)
    monkeypatch.setenv("OTKLIK_PUBLIC_URL", "https://bot.example.com")
    added = runner.invoke(app, _add(fake, "--verify-token", "my-verify-token", "--name", "ventas"))
    assert added.exit_code == 0, added.output
    assert f"https://bot.example.com/webhooks/whatsapp/{fake.phone_number_id}" in added.output
    assert "my-verify-token" in added.output and "templates synced: 1" in added.output
    assert DEFAULT_TOKEN not in added.output and DEFAULT_APP_SECRET not in added.output
    again = runner.invoke(app, _add(fake))
    assert again.exit_code == 0 and "updated" in again.output
    synced = runner.invoke(app, ["whatsapp", "sync-templates", "--account", "ventas"])
    assert synced.exit_code == 0 and "1 templates synced" in synced.output
    missing = runner.invoke(app, ["whatsapp", "sync-templates", "--account", "nope"])
    assert missing.exit_code == 2 and "no WhatsApp account" in missing.output


def test_an_account_pointed_at_the_fake_for_an_offline_demo(fake: FakeWhatsAppServer) -> None:
    added = runner.invoke(app, _add(fake, "--api-url", fake.base_url))  # the install's setting stays Meta's
    assert added.exit_code == 0, added.output
    assert "templates synced: 1" in added.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--token", "EAAnot-the-right-token-for-meta"), "Meta rejected the access token"),
        (("--phone-number-id", "+5491155"), "digits only"),
        (("--app-secret", "x"), "app secret"),
        (("--api-url", "ftp://x"), "https://"),
    ],
)
def test_bad_arguments_are_refused(fake: FakeWhatsAppServer, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str],
                                   message: str) -> None:  # fmt: skip
    monkeypatch.setenv("OTKLIK_WHATSAPP_API_URL", fake.base_url)
    result = runner.invoke(app, [*_add(fake), *change])
    assert result.exit_code == 2 and message in result.output, result.output


def test_meta_unreachable(monkeypatch: pytest.MonkeyPatch, fake: FakeWhatsAppServer) -> None:
    monkeypatch.setenv("OTKLIK_WHATSAPP_API_URL", "http://127.0.0.1:9/v21.0")
    result = runner.invoke(app, _add(fake))
    assert result.exit_code == 2 and "did not answer" in result.output
