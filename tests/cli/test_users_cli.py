"""`otklik users …` with good, malformed and hostile arguments, and the demo owner printed once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otklik.cli.main import app
from otklik.config import Settings
from otklik.runtime.users import LoginRefused, authenticate

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("OTKLIK_DATABASE_URL", "OTKLIK_DATA_DIR", "OTKLIK_ENV"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")


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


def test_the_server_start_prints_the_demo_owner_once(capsys: pytest.CaptureFixture[str]) -> None:
    from otklik.bootstrap import Otklik

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
