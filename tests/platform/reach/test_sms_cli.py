"""`otklik sms set|show|test` against the fake SMS.ru on loopback; bad input refused clearly, nothing stored."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otklik.testing.fake_sms import FakeSmsServer

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("cli_home")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSmsServer]:
    """The fake gateway on its own loop in a thread (the CLI runs its own `asyncio.run`)."""
    server = FakeSmsServer(api_id="test-api-id")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.up(), loop).result(10)
    monkeypatch.setenv("OTKLIK_SMS_RU_URL", server.base_url)
    yield server
    asyncio.run_coroutine_threadsafe(server.down(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def _cli(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    from otklik.cli.main import app

    return runner.invoke(app, ["sms", *args], env=env)


def test_set_show_and_send_a_test_sms(fake: FakeSmsServer) -> None:
    assert _cli("test", "--to", "+79171234567").exit_code == 2  # nothing configured yet
    saved = _cli("set", "--provider", "smsru", "--sender", "SalonLen", env={"OTKLIK_SMS_SECRET": "test-api-id"})
    assert saved.exit_code == 0 and "secret stored" in saved.output and "test-api-id" not in saved.output
    shown = _cli("show")
    assert "smsru" in shown.output and "SalonLen" in shown.output and "test-api-id" not in shown.output
    sent = _cli("test", "--to", "8 917 123-45-67", "--text", "Проверка")
    assert sent.exit_code == 0, sent.output
    (sms,) = fake.sent
    assert (sms.to, sms.text, sms.sender) == ("79171234567", "Проверка", "SalonLen")
    assert sms.sms_id in sent.output
    fake.unroutable.add("79171234568")
    refused = _cli("test", "--to", "+79171234568")
    assert refused.exit_code == 1 and "207" in refused.output
    assert len(fake.sent) == 1


def test_bad_input_is_refused(fake: FakeSmsServer, tmp_path: Path) -> None:
    assert _cli("set", "--provider", "smsru").exit_code == 2  # no api_id anywhere
    assert _cli("set", "--provider", "pigeon").exit_code == 2
    bad = tmp_path / "gw.json"
    bad.write_text('{"url": "https://gw.example", "body": {"to": "{phone}"}}')
    refused = _cli("set", "--provider", "http", "--http", str(bad))
    assert refused.exit_code == 2 and "{text}" in refused.output
    assert "none" in _cli("show").output  # nothing stored
    _cli("set", "--provider", "smsru", env={"OTKLIK_SMS_SECRET": "test-api-id"})
    for phone in ["", "12", "+7 917 123-45-67; rm -rf /", "x" * 100]:
        result = _cli("test", "--to", phone)
        assert result.exit_code == 2 and "phone" in result.output
    too_long = _cli("test", "--to", "+79171234567", "--text", "я" * 400)
    assert too_long.exit_code == 2 and "segments" in too_long.output
    assert fake.sent == []
