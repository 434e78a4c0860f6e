"""`otklik users …` with good, malformed and hostile arguments, and the demo owner printed once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otklik.cli.main import app
from otklik.config import Settings
from otklik.platform.users import LoginRefused, authenticate

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTKLIK_DEMO")  # the demo install's first owner is what some of these tests are about


def _can_sign_in(login: str, password: str) -> bool:
    from otklik.bootstrap import Otklik

    async def go() -> bool:
        otk = Otklik.build(Settings())
        try:
            await otk.start()
            await authenticate(otk.db, login, password, "127.0.0.1")
            return True
        except LoginRefused:
            return False
        finally:
            await otk.close()

    return asyncio.run(go())


def test_create_prints_a_generated_password_once_and_it_works() -> None:
    result = runner.invoke(app, ["users", "create", "--login", "Boss", "--role", "owner"])
    assert result.exit_code == 0, result.output
    password = result.output.split("password: ")[1].strip()
    assert len(password) >= 10
    assert _can_sign_in("boss", password)
    listed = runner.invoke(app, ["users", "list"])
    assert "boss\towner\tactive" in listed.output and password not in listed.output


def test_reset_password_replaces_the_old_one() -> None:
    runner.invoke(app, ["users", "create", "--login", "op", "--role", "operator", "--password", "first password 1"])
    result = runner.invoke(app, ["users", "reset-password", "op", "--password", "second password 2"])
    assert result.exit_code == 0
    assert not _can_sign_in("op", "first password 1")
    assert _can_sign_in("op", "second password 2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "create", "--login", "x", "--role", "king"], "unknown role"),
        (["users", "create", "--login", "x", "--role", "operator", "--password", "short"], "at least 10"),
        (["users", "create", "--login", "a b", "--role", "operator"], "without spaces"),
        (["users", "create", "--login", "x" * 500, "--role", "operator"], "1-120"),
        (["users", "create", "--login", "x", "--language", "fr"], "language"),
        (["users", "reset-password", "ghost"], "no user"),
    ],
)
def test_bad_arguments_get_a_clear_error_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_duplicate_login_is_refused_and_the_first_user_kept() -> None:
    assert runner.invoke(app, ["users", "create", "--login", "op", "--password", "first password 1"]).exit_code == 0
    again = runner.invoke(app, ["users", "create", "--login", "OP", "--password", "other password 2"])
    assert again.exit_code == 2 and "exists" in again.output
    assert _can_sign_in("op", "first password 1")


def test_the_server_start_prints_the_demo_owner_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from otklik.bootstrap import Otklik

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # a terminal: printed there, once

    async def start_twice() -> None:
        for _ in range(2):
            otk = Otklik.build(Settings())
            try:
                await otk.start(demo_owner=True)
            finally:
                await otk.close()

    asyncio.run(start_twice())
    out = capsys.readouterr().out
    assert out.count("login: owner  password: ") == 1
    password = out.split("password: ")[1].split()[0]
    assert _can_sign_in("owner", password)


def test_regression_owner_password_not_left_in_logs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """stdout that is not a terminal is a log: the password goes to a 0600 file in the data dir instead."""
    import os
    import stat
    import sys

    from otklik.bootstrap import OWNER_PASSWORD_FILE, Otklik

    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)

    async def start() -> None:
        otk = Otklik.build(Settings())
        try:
            await otk.start(demo_owner=True)
        finally:
            await otk.close()

    asyncio.run(start())
    path = tmp_path / "data" / OWNER_PASSWORD_FILE
    password = path.read_text().split("password: ")[1].split()[0]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    out = capsys.readouterr().out
    assert str(path.resolve()) in out and password not in out and password not in caplog.text
    assert _can_sign_in("owner", password)
