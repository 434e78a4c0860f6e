"""`otklik guard check [--json] [TEXT]`: one text or standard input line by line; malformed and huge input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from otklik.cli.guard import MAX_LINE_BYTES
from otklik.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_one_text_plain_and_json() -> None:
    blocked = runner.invoke(app, ["guard", "check", "Пишите в телегу @shop"])
    assert blocked.exit_code == 1
    lines = blocked.output.splitlines()
    assert lines[0] == "blocked: messenger, handle"
    assert any(line.startswith("  handle\t[16:21]\t") and '"@shop"' in line for line in lines)
    allowed = runner.invoke(app, ["guard", "check", "--json", "Спасибо, замену отправим сегодня."])
    assert allowed.exit_code == 0
    assert json.loads(allowed.output) == {"text": "Спасибо, замену отправим сегодня.", "allowed": True, "reasons": []}


def test_standard_input_one_json_object_per_line() -> None:
    texts = ["Позвоните 8 916 555 12 34", "Спасибо, разберёмся и ответим здесь.", "", "Ок"]
    result = runner.invoke(app, ["guard", "check", "--json"], input="\n".join(texts) + "\n")
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == texts
    assert [r["allowed"] for r in rows] == [False, True, False, False]
    assert rows[0]["reasons"] == ["offsite", "phone"] and rows[2]["reasons"] == ["empty"]
    assert all(set(r) == {"text", "allowed", "reasons"} for r in rows)


def test_all_allowed_exits_zero_and_plain_lines_quote_the_text() -> None:
    result = runner.invoke(app, ["guard", "check"], input="Спасибо за ожидание!\r\nЗамену отправили сегодня.\n")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        'allowed\t\t"Спасибо за ожидание!"',
        'allowed\t\t"Замену отправили сегодня."',
    ]


def test_control_characters_never_reach_the_terminal() -> None:
    result = runner.invoke(app, ["guard", "check"], input="пишите в\x1b[2J телегу\x07\n")
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\u001b" in result.stdout and "messenger" in result.stdout


def test_invalid_utf8_is_checked_with_a_warning_and_nothing_is_lost() -> None:
    data = (
        "первая строка, всё хорошо\n".encode()
        + b"\xff\xfe \xd0 "
        + "пишите в telegram\n".encode()
        + "третья строка тоже хорошая\n".encode()
    )
    result = runner.invoke(app, ["guard", "check", "--json"], input=data)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    assert rows[1]["reasons"] == ["messenger"] and "\ufffd" in rows[1]["text"]
    assert "line 2: not UTF-8" in result.stderr
    assert result.exit_code == 1


def test_a_line_too_long_to_read_is_reported_and_the_next_ones_are_checked() -> None:
    huge = b"a" * (MAX_LINE_BYTES * 2 + 7)
    data = huge + b"\n" + "Спасибо, ответим здесь.\n".encode()
    result = runner.invoke(app, ["guard", "check", "--json"], input=data)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows == [
        {"text": "", "allowed": False, "reasons": ["too_long"]},
        {"text": "Спасибо, ответим здесь.", "allowed": True, "reasons": []},
    ]
    assert "line 1: longer than" in result.stderr


def test_the_installed_command_reads_a_real_pipe() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "otklik.cli", "guard", "check", "--json"],
        input="wa.me/79165551234\nСпасибо!  Ждём фото здесь.\n".encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    rows = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [r["allowed"] for r in rows] == [False, True] and "link" in rows[0]["reasons"]
    assert done.returncode == 1
