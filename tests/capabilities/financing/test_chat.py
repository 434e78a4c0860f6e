"""The simulator in the sales-es web chat: the suggested plans as buttons, an arbitrary count computed or
refused with its limits, a chosen plan kept — figures in es-AR, equal to the CLI's and the API's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from otklik.bootstrap import Otklik
from otklik.capabilities.financing import service
from otklik.capabilities.financing.chat import read
from otklik.capabilities.financing.rules import format_money
from otklik.cli.main import app as cli
from otklik.web.app import create_app
from tests.capabilities.care.conftest import Chat
from tests.capabilities.financing.tables import ISSUE_YAML
from tests.conftest import make_settings


@pytest.fixture
async def shop(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Otklik, httpx.AsyncClient]]:
    app = Otklik.build(make_settings(tmp_path, db_url, default_pack="sales-es"))
    await app.start()
    async with app.db.write() as session:
        await service.save(session, "visa", ISSUE_YAML, actor="test")
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield app, http
    finally:
        await app.close()


async def _open(http: httpx.AsyncClient) -> Chat:
    response = await http.post("/api/webchat/sessions", json={"language": "es"})
    assert response.status_code == 201, response.text
    return Chat(http, str(response.json()["session_id"]))


def _cli(amount: str, n: int) -> dict[str, Any]:
    path = Path("rates.yaml")
    path.write_text(ISSUE_YAML, encoding="utf-8")
    result = CliRunner().invoke(cli, ["financing", "simulate", "--rates", str(path), "--amount", amount,
                                      "--installments", str(n), "--json"])  # fmt: skip
    return json.loads(result.output)  # type: ignore[no-any-return]


async def test_plans_any_count_refusals_and_a_choice(
    shop: tuple[Otklik, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    app, http = shop
    assert app.actions.is_quick("financing.simulate", app.ctx)  # no LLM: inside the step, as always
    chat = await _open(http)
    await chat.send(text="¿en cuántas cuotas puedo pagar?")
    (*_greeting, ask) = await chat.replies(3)  # the greeting and the menu's question, then the simulator
    assert "monto" in ask["text"]

    await chat.send(text="150.000")
    (plans,) = await chat.replies(1)
    figures = {n: _cli("150000", n) for n in (3, 6, 9, 12)}
    for n, plan in figures.items():
        assert f"{n} cuotas" in plans["text"]
        assert format_money(Decimal(plan["total"])) in plans["text"]
    assert "• 6 cuotas: 5 de $ 29.401,58 y una última de $ 29.401,57 (total $ 176.409,47)" in plans["text"]
    buttons = {b["payload"]: b["title"] for b in plans["buttons"]}
    assert buttons["fin:6"] == "6 × $ 29.401,58 · total $ 176.409,47"
    assert list(buttons) == ["fin:3", "fin:6", "fin:9", "fin:12"]

    await chat.send(text="¿cómo queda en 6 cuotas?")
    (six,) = await chat.replies(1)
    assert six["text"] == (
        "En 6 cuotas: 5 pagos de $ 29.401,58 y uno último de $ 29.401,57; total $ 176.409,47 "
        "(TNA 48,00 %, TEA 60,10 %, CFTEA 76,33 %)."
    )
    assert six["buttons"] == [{"title": "Elegir 6 cuotas", "payload": "fin:6"}]

    await chat.send(text="y en 10?")
    (ten,) = await chat.replies(1)
    expected = _cli("150000", 10)
    assert "En 10 cuotas" in ten["text"]
    assert format_money(Decimal(expected["installment"])) in ten["text"]
    assert format_money(Decimal(expected["total"])) in ten["text"]

    await chat.send(text="y en 15?")
    (fifteen,) = await chat.replies(1)
    assert fifteen["text"] == "No puedo calcular 15 cuotas: ofrecemos 1-12, 18 cuotas (como máximo 18)."

    await chat.send(text="y en 24?")
    (too_many,) = await chat.replies(1)
    assert "como máximo 18" in too_many["text"]

    await chat.send(button="fin:9")
    chosen, confirm = await chat.replies(2)
    assert (
        chosen["text"] == "Anoté el plan de 9 cuotas de $ 22.344,18 (total $ 201.097,61) para un monto de $ 150.000,00."
    )
    assert "¿Avanzamos con la compra" in confirm["text"]


async def test_min_installment_names_the_largest_count(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    _app, http = shop
    chat = await _open(http)
    await chat.send(text="cuánto pagaría en 12 cuotas por 5 mil")
    (*_greeting, reply) = await chat.replies(3)
    assert reply["text"] == (
        "No puedo calcular 12 cuotas: la cuota mínima es $ 1.000,00; para un monto de $ 5.000,00 el máximo es 5 cuotas."
    )
    await chat.send(text="y en 5?")
    (five,) = await chat.replies(1)
    assert five["text"].startswith("En 5 cuotas:")


async def test_something_else_leaves_the_simulator(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    _app, http = shop
    chat = await _open(http)
    await chat.send(text="quiero pagar en cuotas, son 200000")
    (*_greeting, plans) = await chat.replies(3)
    assert "$ 200.000,00" in plans["text"]
    await chat.send(text="hola")
    (menu,) = await chat.replies(1)
    assert "¿Qué estás buscando?" in menu["text"]


async def test_without_a_rates_table_the_article_answers(tmp_path: Path, db_url: str) -> None:
    app = Otklik.build(make_settings(tmp_path, db_url, default_pack="sales-es"))
    await app.start()
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            chat = await _open(http)
            await chat.send(text="¿tienen financiación en cuotas?")
            replies = await chat.replies(4)  # greeting, menu, the article, "¿Te sirvió?"
            assert not any("$ " in m["text"] for m in replies)
            assert any("cuotas" in m["text"].lower() for m in replies[1:]), [m["text"] for m in replies]
    finally:
        await app.close()


@pytest.mark.parametrize(
    ("text", "n", "amount"),
    [
        ("¿cómo queda en 6 cuotas?", 6, None),
        ("y en 10?", 10, None),
        ("en doce cuotas", 12, None),
        ("a 18 meses", 18, None),
        ("$ 150.000", None, "150000"),
        ("cuánto pagaría en 3 cuotas por 500 mil", 3, "500000"),
        ("150.000,50 en 18", 18, "150000.50"),
        ("1,5 millones en 9 pagos", 9, "1500000"),
        ("¿en cuántas cuotas puedo pagar?", None, None),
    ],
)
def test_reading_the_buyer(text: str, n: int | None, amount: str | None) -> None:

    asked = read(text)
    assert asked.installments == n
    assert asked.amount == (Decimal(amount) if amount else None)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu-cache")


async def test_with_the_offline_classifier(tmp_path: Path, model_cache: Path) -> None:
    """The pack's own classifier (not keywords) routes the questions to the simulator and keeps the follow-ups
    there ("y en 10?" is a count, not another topic)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'nlu.db'}"
    app = Otklik.build(make_settings(tmp_path, url, default_pack="sales-es", nlu="auto", cache_path=model_cache))
    await app.start()
    async with app.db.write() as session:
        await service.save(session, "visa", ISSUE_YAML, actor="test")
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            chat = await _open(http)
            await chat.send(text="¿en cuántas cuotas puedo pagar?")
            assert "monto" in (await chat.texts(3))[-1]
            await chat.send(text="150000")
            assert "$ 176.409,47" in (await chat.texts(1))[0]
            await chat.send(text="¿cómo queda en 6 cuotas?")
            assert (await chat.texts(1))[0].startswith("En 6 cuotas: 5 pagos de $ 29.401,58")
            await chat.send(text="y en 10?")
            assert (await chat.texts(1))[0].startswith("En 10 cuotas:")
    finally:
        await app.close()
