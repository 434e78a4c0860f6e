"""`otklik surveys validate|install|results|export` and `otklik abtests results` (SQLite in ./data), with bad
files refused clearly and nothing installed."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from otklik.core.messages import EventKind, InboundEvent
from tests.fixtures.cli import in_db

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("cli_home")
EXAMPLE = Path(__file__).parents[2] / "otklik" / "packs" / "sales-es" / "surveys" / "winback.yaml"


def _cli(*args: str) -> Any:
    from otklik.cli.main import app

    return runner.invoke(app, list(args))


def test_validate_install_answer_results_export(cli_home: Path) -> None:
    assert "ok: survey winback_es" in _cli("surveys", "validate", str(EXAMPLE)).output
    installed = _cli("surveys", "install", str(EXAMPLE), "--pack", "care-ru")
    assert installed.exit_code == 0, installed.output
    assert "installed survey.winback_es v1" in installed.output

    async def answer(otk: Any) -> None:
        account = next(a.id for a in otk.ctx.accounts.values() if a.kind == "webchat")
        for n, (kind, payload) in enumerate([(EventKind.BUTTON, "flow:survey.winback_es"), (EventKind.BUTTON, "no"),
                                              (EventKind.BUTTON, "cotizar")]):  # fmt: skip
            await otk.ingest(InboundEvent(account, f"x{n}", "cli-buyer", kind, payload=payload))

    in_db(answer)
    shown = _cli("surveys", "results", "winback_es", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {"rubro": {"no": 1}, "novedades": {"cotizar": 1}}
    out = cli_home / "answers.csv"
    exported = _cli("surveys", "export", "winback_es", "-o", str(out))
    assert exported.exit_code == 0 and "2 answers written" in exported.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r[3:5] for r in rows[1:]] == [["rubro", "no"], ["novedades", "cotizar"]]
    missing = _cli("abtests", "results", "nope")
    assert missing.exit_code == 2 and "no A/B test" in missing.output


def test_bad_survey_files_are_refused_and_nothing_is_installed(cli_home: Path) -> None:
    cyclic = cli_home / "cyclic.yaml"
    cyclic.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("next: novedades}", "next: rubro}", 1), encoding="utf-8"
    )
    refused = _cli("surveys", "install", str(cyclic))
    assert refused.exit_code == 1 and "cycle" in refused.output and "nothing was installed" in refused.output
    huge = cli_home / "huge.yaml"
    huge.write_text("x" * 70_000, encoding="utf-8")
    assert _cli("surveys", "validate", str(huge)).exit_code == 2
    binary = cli_home / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "cannot read" in _cli("surveys", "validate", str(binary)).output

    async def keys(otk: Any) -> set[str]:
        return set(await otk.flows.keys())

    assert "survey.winback_es" not in in_db(keys)
