"""`otklik metrics` through Typer's runner, on a SQLite file the fixture's rows were written to."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from otklik.bootstrap import Otklik
from otklik.capabilities.metrics.aggregate import recompute
from otklik.cli.main import app
from tests.capabilities.metrics import fixture as fx
from tests.fixtures.cli import in_db

runner = CliRunner()
RANGE = ["--from", "2026-03-01", "--to", "2026-03-10"]


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["metrics", *args])
    return result.exit_code, result.output


def _build(otk: Otklik) -> object:
    async def go() -> None:
        b = fx.Builder(otk)
        await fx.phase_one(b)
        await fx.phase_two(b)
        await recompute(otk.db, fx.COUNTERS, now=fx.NOW)

    return go()


def test_json_has_the_issues_keys_and_the_fixtures_numbers(cli_home: Path) -> None:
    in_db(_build)  # type: ignore[arg-type]
    code, out = _run(*RANGE, "--json")
    assert code == 0, out
    data = json.loads(out)
    for key in ("conversations", "handoffs", "handled_by_bot_share", "bot_response_ms", "operator_first_response_ms",
                "seen_unanswered", "leads", "bookings", "orders"):  # fmt: skip
        assert key in data, key
    assert (data["conversations"], data["handoffs"], data["seen_unanswered"], data["orders"]) == (8, 3, 3, 1)
    assert [data["bot_response_ms"][p] for p in ("p50", "p90", "p99")] == [2000, 15000, 30000]
    code, out = _run(*RANGE, "--channel", "webhook", "--json")
    assert code == 0 and json.loads(out)["conversations"] == 2
    code, out = _run(*RANGE)
    assert code == 0 and "conversations           8 (reopened 2)" in out and "lower bound" in out


def test_bad_arguments_exit_2_with_a_message(cli_home: Path) -> None:
    for args, words in (
        (["--from", "2026-03-10", "--to", "2026-03-01"], "reversed"),
        (["--from", "2010-01-01", "--to", "2026-01-01"], "at most 400"),
        (["--to", "31/12/2026"], "to: a date like"),
        (["--channel", "pigeon"], "no channel kind 'pigeon'"),
        (["--account", "-3"], "account: a channel account id"),
    ):
        code, out = _run(*args)
        assert code == 2 and words in out, (args, out)
