"""`otklik api-tokens create|list|revoke`: the token is printed once, only its hash is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from otklik.adapters.db.models import ApiToken, EventLog
from otklik.platform.apitokens import authenticate, digest
from tests.fixtures.cli import in_db

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("cli_home")


def test_create_list_revoke() -> None:
    from otklik.cli.main import app

    created = runner.invoke(app, ["api-tokens", "create", "--name", "shop-site", "--scopes", "financing, orders"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("otk_") and len(token) == 47

    async def stored(otk):  # type: ignore[no-untyped-def]
        async with otk.db.read() as session:
            row = await session.scalar(select(ApiToken))
            kinds = (
                (await session.execute(select(EventLog.kind).where(EventLog.kind.like("api_token.%")))).scalars().all()
            )
        caller = await authenticate(otk.db, token)
        return row, list(kinds), caller

    row, kinds, caller = in_db(stored)
    assert row.token_hash == digest(token) and row.scopes == "financing,orders" and token not in row.prefix * 2
    assert kinds == ["api_token.create"] and caller is not None and caller.scopes == {"financing", "orders"}

    listed = runner.invoke(app, ["api-tokens", "list"])
    assert listed.exit_code == 0 and "shop-site" in listed.output and token not in listed.output
    assert "active" in listed.output

    again = runner.invoke(app, ["api-tokens", "create", "--name", "shop-site", "--scopes", "financing"])
    assert again.exit_code == 2 and "exists" in again.output
    for bad in (["--name", "", "--scopes", "financing"], ["--name", "x", "--scopes", "Fin Ancing"],
                ["--name", "x", "--scopes", ","], ["--name", "<script>", "--scopes", "financing"]):  # fmt: skip
        result = runner.invoke(app, ["api-tokens", "create", *bad])
        assert result.exit_code == 2, (bad, result.output)

    assert runner.invoke(app, ["api-tokens", "revoke", "shop-site"]).exit_code == 0
    assert runner.invoke(app, ["api-tokens", "revoke", "nobody"]).exit_code == 2
    assert "revoked" in runner.invoke(app, ["api-tokens", "list"]).output
    assert in_db(lambda otk: authenticate(otk.db, token)) is None
