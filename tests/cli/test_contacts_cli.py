"""`otklik contacts import`: the pack's region or --region, tags, dry run, JSON report, and bad arguments or
files refused with exit 2 and nothing written (SQLite in ./data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from otklik.adapters.db.models import Contact
from tests.fixtures.cli import in_db

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("cli_home")


def _cli(*args: str) -> Any:
    from otklik.cli.main import app

    return runner.invoke(app, list(args))


def _contacts() -> dict[str, tuple[str, list[str]]]:
    async def go(otk: Any) -> dict[str, tuple[str, list[str]]]:
        async with otk.db.read() as session:
            rows = (await session.execute(select(Contact))).scalars()
            return {c.fields["phone"]: (c.display_name, c.tags["list"]) for c in rows if "phone" in c.fields}

    result: dict[str, tuple[str, list[str]]] = in_db(go)
    return result


def test_import_dry_run_then_real_with_pack_region(cli_home: Path) -> None:
    source = cli_home / "clients.csv"
    source.write_text("phone;name\n011 2345-6789;Ana\n+7 917 123-45-67;Ivan\nnope;x\n", encoding="utf-8")
    dry = _cli("contacts", "import", str(source), "--pack", "sales-es", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "created 2" in dry.output and "skipped 1" in dry.output and "dry run" in dry.output
    assert "row 4: bad phone for region AR" in dry.output
    assert _contacts() == {}
    real = _cli("contacts", "import", str(source), "--pack", "sales-es", "--tag", "Promo", "--json")
    assert real.exit_code == 0, real.output
    report = json.loads(real.output)
    assert (report["created"], report["updated"], report["region"]) == (2, 0, "AR")
    assert report["skipped_rows"] == [{"row": 4, "reason": "bad phone for region AR"}]
    assert _contacts() == {"+541123456789": ("Ana", ["promo"]), "+79171234567": ("Ivan", ["promo"])}
    again = _cli("contacts", "import", str(source), "--region", "ar", "--json")
    assert (json.loads(again.output)["created"], json.loads(again.output)["updated"]) == (0, 2)


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["--region", "RU", "--pack", "care-ru"], b"phone\n+79171234567\n", "not both"),
        (["--region", "ZZ"], b"phone\n+79171234567\n", "unknown phone region"),
        (["--pack", "../etc"], b"phone\n+79171234567\n", "unknown pack"),
        (["--region", "RU"], b"", "empty"),
        (["--region", "RU"], b"name\nIvan\n", "no `phone` column"),
        (["--region", "RU"], b"phone\n\xff\xfe\n", "not UTF-8"),
        (["--region", "RU", "--tag", "a<b"], b"phone\n+79171234567\n", "bad tag"),
    ],
)
def test_bad_arguments_and_files_exit_2_and_write_nothing(
    cli_home: Path, args: list[str], content: bytes, message: str
) -> None:
    source = cli_home / "in.csv"
    source.write_bytes(content)
    result = _cli("contacts", "import", str(source), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output

    async def count(otk: Any) -> int:
        async with otk.db.read() as session:
            return int((await session.execute(select(func.count()).select_from(Contact))).scalar_one())

    assert in_db(count) == 0


def test_missing_file_and_directory(cli_home: Path) -> None:
    missing = _cli("contacts", "import", str(cli_home / "nope.csv"), "--region", "RU")
    assert missing.exit_code == 2 and "cannot read" in missing.output
    folder = _cli("contacts", "import", str(cli_home), "--region", "RU")
    assert folder.exit_code == 2 and "cannot read" in folder.output
