"""`otklik channels add wildberries`, `otklik wb sync` and the incremental card cache (fake WB server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from otklik.adapters.db.models import ChannelAccount
from otklik.adapters.wildberries import WBClient, WBHosts
from otklik.capabilities.care.catalog import find_barcode, sync_cards
from otklik.capabilities.care.models import WBBarcode
from otklik.testing.fake_wb import FakeSize, FakeWB, make_token, sample_feedbacks
from tests.capabilities.care.conftest import OUR_L, OUR_M, Care

runner = CliRunner()


async def test_cards_sync_is_incremental_and_follows_moved_barcodes(care: Care) -> None:
    card = care.wb.cards[123456789]
    card.sizes.append(FakeSize(chrt_id=9, tech_size="XL", skus=["4601234567897"]))
    card.sizes[1].skus = []  # L's barcode moved to another card
    other = care.wb.cards[234567890]
    other.sizes[0].skus.append(OUR_L)
    for changed in (card, other):
        changed.updated_at = datetime.now(UTC) + timedelta(minutes=1)
    async with WBClient(care.wb.token, hosts=WBHosts.single(care.wb.url)) as wb:
        report = await sync_cards(care.app.db, wb, care.account_id)
    assert report.cards == 2  # only the changed cards since the saved cursor
    async with care.app.db.read() as session:
        moved = await find_barcode(session, OUR_L)
        assert moved is not None and moved.nm_id == 234567890
        assert (await find_barcode(session, OUR_M)) is not None
        codes = (await session.execute(select(WBBarcode.barcode))).scalars().all()
    assert len(codes) == len(set(codes))


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_wb: FakeWB) -> FakeWB:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OTKLIK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OTKLIK_DATABASE_URL", raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")
    monkeypatch.setenv("OTKLIK_WB_API_URL", fake_wb.url)
    return fake_wb


async def invoke(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(runner.invoke, __import__("otklik.cli.main").cli.main.app, list(args))
    return result.exit_code, result.output


async def test_add_a_wb_key_then_sync_from_the_command_line(cli_env: FakeWB, tmp_path: Path) -> None:
    cli_env.add_feedbacks(sample_feedbacks(12, seed=5))
    code, out = await invoke("channels", "add", "wildberries", "--token", cli_env.token)
    assert code == 0, out
    assert cli_env.token not in out and "added Wildberries account" in out
    code, out = await invoke("channels", "add", "wildberries", "--token", cli_env.token, "--name", "second")
    assert code == 2 and "already stored" in out
    code, out = await invoke("wb", "sync")
    assert code == 0, out
    assert "ok" in out and "error" not in out.lower()
    db_file = (tmp_path / "data" / "otklik.db").read_bytes()
    assert cli_env.token.encode() not in db_file  # the token is stored encrypted


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-token", "not a Wildberries API token"),
        (make_token(categories=("statistics",)), "Контент"),
        (make_token(expires_at=datetime.now(UTC) - timedelta(days=1)), "истёк"),
    ],
)
async def test_bad_wb_tokens_are_refused_with_a_reason(cli_env: FakeWB, token: str, message: str) -> None:
    cli_env.allow(token)
    code, out = await invoke("channels", "add", "wildberries", "--token", token, "--no-check")
    assert code == 2 and message.lower() in out.lower()
    code, out = await invoke("channels", "list")
    assert "wildberries" not in out


async def test_sync_without_an_account_says_what_to_do(cli_env: FakeWB) -> None:
    code, out = await invoke("wb", "sync")
    assert code == 2 and "channels add wildberries" in out
    assert ChannelAccount.__tablename__ == "channel_accounts"
