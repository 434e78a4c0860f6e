"""Payout details are encrypted with the install's Fernet key: production refuses to start without one,
and with one the details are sealed with exactly that key (no key file is made up on the side)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from typer.testing import CliRunner

from otklik.bootstrap import Otklik
from otklik.capabilities.cashback.payouts import seal, unseal
from otklik.capabilities.cashback.rules import PayoutDetails
from otklik.cli.main import app
from otklik.config import Settings

SECRET_KEY = "s" * 40


@pytest.fixture(autouse=True)
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("OTKLIK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OTKLIK_ENV", "production")
    monkeypatch.setenv("OTKLIK_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("OTKLIK_DATA_DIR", str(tmp_path / "data"))


def test_production_refuses_to_start_without_a_fernet_key() -> None:
    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 2
    assert "OTKLIK_FERNET_KEY must be set in production" in " ".join(result.output.split())  # rich wraps lines
    with pytest.raises(ValidationError, match="OTKLIK_FERNET_KEY"):
        Settings()


async def test_with_a_key_payout_details_are_sealed_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("OTKLIK_FERNET_KEY", key)
    app = Otklik.build(Settings())
    try:
        assert app.ctx.vault is app.vault  # what ingest, actions and the admin seal with
        details = PayoutDetails("sbp", phone="+79265551234", bank="Т-Банк")
        secret = seal(app.ctx.vault, details)
        assert "9265551234" not in secret
        assert unseal(app.vault, secret) == details
        assert Fernet(key.encode()).decrypt(secret.encode())  # the configured key itself opens it
        assert not (tmp_path / "data" / "fernet.key").exists()
    finally:
        await app.close()
