from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from otklik.cli.nlu import app
from otklik.conversations.nlu.packdata import pack_dir

runner = CliRunner()
LAST_LINE = re.compile(r"^accuracy=\d\.\d{3} macro_f1=\d\.\d{3}$")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu-cache")


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_train_prints_counts_and_time(cache: Path) -> None:
    code, out, _ = run("train", "--pack", "sales-es", "--cache-dir", str(cache))
    assert code == 0, out
    assert "financing" in out and "total" in out
    assert re.search(r"trained in \d+\.\d\d s", out)
    assert list(cache.glob("sales-es-*.joblib"))


def test_predict_prints_json(cache: Path) -> None:
    code, out, _ = run(
        "predict", "--pack", "care-ru", "--cache-dir", str(cache), "пришёл не тот цвет, штрихкод 4006381333931, 300р"
    )
    assert code == 0, out
    payload = json.loads(out)
    assert set(payload) == {"intent", "confidence", "entities", "red_flag"}
    assert payload["intent"] == "wrong_item"
    assert 0 <= payload["confidence"] <= 1
    assert payload["entities"] == [
        {"kind": "barcode", "value": "4006381333931", "text": "4006381333931"},
        {"kind": "money", "value": "300.00 RUB", "text": "300р"},
    ]
    assert payload["red_flag"] is None
    assert '"300р"' in out  # ensure_ascii=False: Cyrillic is printed as is


def test_predict_red_flag(cache: Path) -> None:
    code, out, _ = run("predict", "--pack", "care-ru", "--cache-dir", str(cache), "ожог после геля, была в больнице")
    assert code == 0
    assert json.loads(out)["red_flag"] == "ожог"


def test_pack_can_be_a_folder_path(cache: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mypack"
    folder.mkdir()
    shutil.copy(pack_dir("sales-es") / "intents.yaml", folder / "intents.yaml")
    code, out, _ = run("predict", "--pack", str(folder), "--cache-dir", str(cache), "cuántas cuotas sin interés?")
    assert code == 0, out
    assert json.loads(out)["intent"] == "financing"


def test_eval_report_and_last_line(cache: Path, tmp_path: Path) -> None:
    data = tmp_path / "small.csv"
    data.write_text(
        "text,intent\nhola buenas,greeting\nquiero hablar con un vendedor,operator_request\n"
        '"cuánto sale el dvr, y hay stock?",price_stock\ncuotas sin interés?,greeting\n',
        encoding="utf-8",
    )
    code, out, _ = run("eval", str(data), "--pack", "sales-es", "--cache-dir", str(cache))
    assert code == 0, out
    lines = out.rstrip("\n").splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    assert lines[-1].startswith("accuracy=0.750 ")
    assert "misclassified: 1" in out
    assert "[greeting -> financing" in out
    assert "precision" in out and "recall" in out


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("text,intent\n", "no data rows"),
        ("message,label\nhola,greeting\n", "missing column(s) text, intent"),
        ("text\nhola\n", "missing column(s) intent"),
        ("text,intent\nhola,saludo\nchau,despedida\n", "unknown intent(s) despedida, saludo"),
        ("text,intent\nhola,\n", "empty text or intent on line(s) 2"),
        ("hola,greeting\nchau,other\n", "missing column"),
        ("text,intent\nhola,greeting\n".encode("utf-16"), "not UTF-8"),
        ("text,intent\ncámara,price_stock\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_eval_malformed_csv_exits_2_with_a_message(
    cache: Path, tmp_path: Path, content: str | bytes, message: str
) -> None:
    data = _write(tmp_path / "bad.csv", content)
    result = runner.invoke(app, ["eval", str(data), "--pack", "sales-es", "--cache-dir", str(cache)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


def test_eval_missing_file(cache: Path, tmp_path: Path) -> None:
    code, _, err = run("eval", str(tmp_path / "nope.csv"), "--pack", "sales-es", "--cache-dir", str(cache))
    assert code == 2
    assert "no such file" in err


def test_unknown_pack(cache: Path) -> None:
    code, _, err = run("predict", "--pack", "no-such-pack", "--cache-dir", str(cache), "hola")
    assert code == 2
    assert "unknown pack 'no-such-pack'" in err


def test_malformed_pack(cache: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "intents.yaml").write_text("intents: [", encoding="utf-8")
    code, _, err = run("train", "--pack", str(folder), "--cache-dir", str(cache))
    assert code == 2
    assert "invalid YAML" in err
