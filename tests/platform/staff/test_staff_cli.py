"""`otklik staff add|list|remove`, with bad input refused clearly and nothing stored."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("cli_home")


def _cli(*args: str):  # type: ignore[no-untyped-def]
    from otklik.cli.main import app

    return runner.invoke(app, ["staff", *args])


def test_add_list_remove() -> None:
    added = _cli("add", "--name", "Ana Pérez", "--email", "ana@microcom.example", "--telegram", "-1001234567890",
                 "--packs", "sales-es", "--rules", "category:nvr")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert _cli("add", "--name", "Bruno", "--telegram", "@microcom_ventas").exit_code == 0
    listed = _cli("list")
    assert listed.exit_code == 0
    lines = listed.output.strip().splitlines()
    assert lines[0].split("\t")[1:] == [
        "Ana Pérez", "ana@microcom.example", "-1001234567890", "sales-es", "category:nvr", "active",
    ]  # fmt: skip
    assert lines[1].split("\t")[1:5] == ["Bruno", "-", "@microcom_ventas", "*"]
    again = _cli("add", "--name", "Bruno", "--email", "b@x.example")
    assert again.exit_code == 2 and "exists" in again.output
    removed = _cli("remove", "Ana Pérez")
    assert removed.exit_code == 0 and "removed Ana Pérez" in removed.output
    assert "Ana" not in _cli("list").output
    missing = _cli("remove", "Nadie")
    assert missing.exit_code == 2 and "no member of staff" in missing.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--name", "Ana", "--email", "not-an-address"], "e-mail"),
        (["--name", "Ana", "--email", "ana@example.com\r\nBcc: x@y.z"], "e-mail"),
        (["--name", "Ana", "--telegram", "12ab"], "chat id"),
        (["--name", "Ana", "--telegram", "99999999999999999999"], "chat id"),
        (["--name", "Ana", "--email", "a@b.example", "--packs", "no-such-pack"], "no pack"),
        (["--name", "Ana"], "e-mail address, a Telegram chat id"),
        (["--name", "", "--email", "a@b.example"], "name"),
        (["--name", "x" * 500, "--email", "a@b.example"], "name"),
        (["--name", "Ana", "--email", "a@b.example", "--rules", "<script>"], "rules"),
    ],
)
def test_bad_input_is_refused_and_nothing_stored(args: list[str], says: str) -> None:
    result = _cli("add", *args)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert _cli("list").output.strip() == ""
