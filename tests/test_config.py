"""Settings: environment and otklik.toml, validated at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from otklik.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith("OTKLIK_"):
            monkeypatch.delenv(key)


def test_defaults_are_the_embedded_sqlite_setup() -> None:
    settings = Settings()
    assert settings.db_url.startswith("sqlite+aiosqlite:///") and settings.db_url.endswith("data/otklik.db")
    assert (settings.host, settings.port, settings.default_pack) == ("127.0.0.1", 8000, "care-ru")


def test_toml_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "otklik.toml").write_text('port = 9001\ndefault_pack = "care-ru"\nmax_upload_bytes = 4096\n')
    assert Settings().port == 9001 and Settings().max_upload_bytes == 4096
    monkeypatch.setenv("OTKLIK_PORT", "9002")
    assert Settings().port == 9002


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTKLIK_PORT": "not-a-number"}, "port"),
        ({"OTKLIK_PORT": "0"}, "port"),
        ({"OTKLIK_ENV": "staging"}, "env"),
        ({"OTKLIK_ENV": "production"}, "OTKLIK_SECRET_KEY"),
        ({"OTKLIK_ENV": "production", "OTKLIK_SECRET_KEY": "x" * 40}, "OTKLIK_FERNET_KEY"),
    ],
)
def test_invalid_settings_are_refused_with_the_field_named(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    message: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert message in str(info.value)


def test_malformed_toml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "otklik.toml").write_text("port = [unclosed\n")
    with pytest.raises(Exception, match=r"(?i)toml|expected|invalid"):
        Settings()
