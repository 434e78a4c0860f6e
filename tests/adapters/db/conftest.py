"""The migration tests start from EMPTY databases (the other storage tests get a migrated copy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PG_URL, reset_pg


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    if not PG_URL:
        pytest.skip("OTKLIK_TEST_PG_URL is not set")
    await reset_pg(PG_URL)
    return PG_URL
