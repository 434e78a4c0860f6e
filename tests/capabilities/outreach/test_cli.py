"""`otklik broadcasts …` through Typer's runner against a SQLite file: create prints the id, the moves, status
(bar and JSON), and every refused input exits 2 with one clear line and nothing stored."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from otklik.capabilities.outreach import service
from otklik.cli.main import app
from otklik.platform.channel_accounts import add_account
from tests.capabilities.outreach.seed import seed_contacts, tag
from tests.fixtures.cli import in_db

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["broadcasts", *args])
    return result.exit_code, result.output


def test_create_start_pause_resume_cancel_status(cli_home: Path) -> None:
    async def seed(otk: object) -> None:
        account = await add_account(otk.db, otk.vault, kind="telegram", name="shop_bot", pack="care-ru",  # type: ignore[attr-defined]
                                    secret="1:x", config={})  # type: ignore[attr-defined]  # fmt: skip
        chats = await seed_contacts(otk.db, account, 6)  # type: ignore[attr-defined]
        for chat in chats[:4]:
            await tag(otk.db, chat, "vip")  # type: ignore[attr-defined]

    in_db(seed)
    code, out = run("segment", "vip", "--conditions", '{"tag": "vip"}')
    assert code == 0 and "vip: 4 contacts" in out, out
    code, out = run("create", "--name", "Promo", "--segment", "vip", "--text", "Hola", "--account", "shop_bot")
    assert code == 0, out
    broadcast = int(out.strip())
    assert run("start", str(broadcast)) == (0, f"broadcast {broadcast}: running\n")
    assert run("pause", str(broadcast)) == (0, f"broadcast {broadcast}: paused\n")
    code, out = run("pause", str(broadcast))
    assert code == 2 and "is paused: cannot pause it" in out
    assert run("resume", str(broadcast))[0] == 0
    code, out = run("status", str(broadcast), "--json")
    found = json.loads(out)
    assert code == 0 and found["status"] == "running" and found["id"] == broadcast
    code, out = run("status", str(broadcast))
    assert code == 0 and "Promo" in out and "running" in out
    assert run("cancel", str(broadcast)) == (0, f"broadcast {broadcast}: cancelled\n")


def test_refused_input_exits_2_and_stores_nothing(cli_home: Path) -> None:
    for args, says in (
        (["create", "--name", "x", "--text", "t"], "--segment NAME or --all"),
        (["create", "--name", "x", "--all", "--segment", "s", "--text", "t"], "--segment NAME or --all"),
        (["create", "--name", "x", "--all"], "--text, --template or --flow"),
        (["create", "--name", "x", "--all", "--text", "t", "--template", "p"], "--text, --template or --flow"),
        (["create", "--name", "x", "--all", "--flow", "survey"], "not available yet"),
        (["create", "--name", "x", "--all", "--text", "t", "--at", "2001-01-01T00:00"], "in the past"),
        (["create", "--name", "x", "--all", "--text", "t", "--at", "soon"], "not an ISO time"),
        (["create", "--name", "x", "--all", "--text", "t", "--quiet", "nine"], "two hours"),
        (["create", "--name", "x", "--all", "--text", "t", "--account", "nope"], "no channel account"),
        (["create", "--name", "x", "--segment", "ghost", "--text", "t"], "no segment named"),
        (["segment", "s", "--conditions", "{not json"], "is not JSON"),
        (["segment", "s", "--conditions", '{"sql": "DROP TABLE contacts"}'], "unknown condition"),
        (["segment", "s", "--conditions", "[" * 70000], "at most"),
        (["start", "999"], "no broadcast 999"),
    ):
        code, out = run(*args)
        assert code == 2 and says in out, (args, out)

    async def stored(otk: object) -> int:
        async with otk.db.read() as session:  # type: ignore[attr-defined]
            return len(await service.list_broadcasts(session))

    assert in_db(stored) == 0
    assert run("start", "0")[0] == 2  # ids start at 1 (Typer's range check)
