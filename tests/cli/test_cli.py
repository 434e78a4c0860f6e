"""The command line with good, malformed and hostile arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from otklik.cli.main import app

runner = CliRunner()
GOOD = "id: shop.ok\nstart: a\nnodes:\n  a: {type: message, text: hi, next: b}\n  b: {type: end}\n"
BAD = "id: shop.bad\nstart: a\nnodes:\n  a: {type: message, text: hi, next: nowhere}\n  b: {type: bogus}\n"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("OTKLIK_DATABASE_URL", "OTKLIK_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OTKLIK_NLU", "keywords")


def test_flows_validate_reports_each_error_and_exit_code(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "ok.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "flows" / "bad.yaml").write_text(BAD, encoding="utf-8")
    ok = runner.invoke(app, ["flows", "validate", str(tmp_path / "flows" / "ok.yaml")])
    assert ok.exit_code == 0 and "flow shop.ok (2 nodes)" in ok.output
    both = runner.invoke(app, ["flows", "validate", str(tmp_path / "flows")])
    assert both.exit_code == 1
    assert "node a / next: goes to unknown node 'nowhere'" in both.output
    assert "node b / type: unknown node type" in both.output


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01binary", b"", b"[unclosed"])
def test_flows_validate_survives_unreadable_or_hostile_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    result = runner.invoke(app, ["flows", "validate", str(path)])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert "x.yaml" in result.output


def test_flows_validate_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["flows", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "no flow files" in result.output


def test_flows_diagram_prints_mermaid_and_rejects_unknown_ids() -> None:
    result = runner.invoke(app, ["flows", "diagram", "care.main"])
    assert result.exit_code == 0 and result.output.startswith("flowchart TD") and "n_menu" in result.output
    missing = runner.invoke(app, ["flows", "diagram", "no.such"])
    assert missing.exit_code == 2 and "no flow 'no.such'" in missing.output
    bad_pack = runner.invoke(app, ["flows", "diagram", "care.main", "--pack", "../etc"])
    assert bad_pack.exit_code == 2 and "unknown pack" in bad_pack.output


def test_run_rejects_bad_role_and_bad_port() -> None:
    assert runner.invoke(app, ["run", "--role", "everything"]).exit_code == 2
    assert runner.invoke(app, ["run", "--port", "70000"]).exit_code == 2


def test_invalid_configuration_is_reported_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTKLIK_ENV", "production")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2 and "OTKLIK_SECRET_KEY must be set" in result.output


def test_chat_in_the_terminal_walks_the_demo_flow() -> None:
    result = runner.invoke(app, ["chat", "--pack", "care-ru"], input="3\nне фото\nне фото\nне фото\n")
    assert result.exit_code == 0, result.output
    assert "бот: Здравствуйте!" in result.output
    assert "3. 🔧 Брак или повреждение" in result.output  # buttons degrade to a numbered list
    assert "Пришлите, пожалуйста, фото повреждения" in result.output
    assert "Нужна именно фотография" in result.output
    assert "Бракованный товар можно вернуть" in result.output  # on_fail after the retries


def test_chat_with_an_unknown_pack_is_a_clear_error() -> None:
    result = runner.invoke(app, ["chat", "--pack", "nope"], input="")
    assert result.exit_code == 2 and "unknown pack 'nope'" in result.output


def test_channels_add_webhook_validates_and_masks(tmp_path: Path) -> None:
    added = runner.invoke(app, ["channels", "add", "webhook", "--url", "http://127.0.0.1:9/hook", "--name", "crm"])
    assert added.exit_code == 0 and "signing secret" in added.output
    secret = added.output.split("keep it safe):")[1].split()[0]
    listed = runner.invoke(app, ["channels", "list"])
    assert "crm" in listed.output and secret not in listed.output and "…" in listed.output
    assert runner.invoke(app, ["channels", "add", "webhook", "--url", "ftp://x"]).exit_code == 2
    dup = runner.invoke(app, ["channels", "add", "webhook", "--url", "http://x", "--name", "crm"])
    assert dup.exit_code == 2 and "already exists" in dup.output
    hostile = runner.invoke(app, ["channels", "add", "webhook", "--url", "http://x", "--name", "<script>"])
    assert hostile.exit_code == 2 and "account name" in hostile.output


def test_regression_chat_labels_turns_in_the_packs_language() -> None:
    result = runner.invoke(app, ["chat", "--pack", "sales-es"], input="hola\n")
    assert result.exit_code == 0, result.output
    assert "bot: " in result.output and "tú: " in result.output
    assert "бот:" not in result.output and "вы:" not in result.output


def test_regression_flows_validate_reports_every_file_after_a_non_utf8_one(tmp_path: Path) -> None:
    (tmp_path / "a_bad.yaml").write_bytes(b"id: shop.a\ntext: \xff\xfe caf\xe9\n")
    (tmp_path / "b_broken.yaml").write_text("id: shop.b\nstart: nowhere\nnodes: {}\n", encoding="utf-8")
    (tmp_path / "c_good.yaml").write_text(
        "id: shop.c\nstart: hi\nnodes:\n  hi: {type: message, text: hi, next: bye}\n  bye: {type: end}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["flows", "validate", str(tmp_path)])
    assert result.exit_code == 1
    # Rich wraps long lines, inside a word too (the paths are long under pytest-xdist: …/popen-gw1/…)
    output = "".join(result.output.split())
    assert "a_bad.yaml:notUTF-8" in output
    assert "b_broken.yaml" in output and output.count("✗") >= 2
    assert "c_good.yaml:flowshop.c" in output


def test_regression_help_imports_no_heavy_module() -> None:
    """`otklik --help` took ~4 s: scikit-learn, SQLAlchemy and aiogram were imported to list commands."""
    import subprocess
    import sys

    probe = (
        "import sys, otklik.cli.main as m; "
        "print(sorted(n for n in ('sklearn', 'sqlalchemy', 'aiogram', 'scipy', 'argon2') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout


def test_regression_production_bad_fernet_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTKLIK_ENV", "production")
    monkeypatch.setenv("OTKLIK_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("OTKLIK_FERNET_KEY", "notakey")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "configuration error fernet_key" in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.slow
def test_regression_busy_port_is_a_clear_error_without_banner(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")} | {"OTKLIK_NLU": "keywords"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "otklik.cli", "run", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        busy.close()
    assert done.returncode == 1
    assert "already in use" in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert "otklik on http" not in done.stdout
