"""`financing.simulate` with an LLM configured (the fake OpenAI-compatible server on loopback): the model may
phrase the reply, but its text goes out only when every number in it is one the simulator produced; a
changed digit, an invented number, a number in a format that reads differently, a timeout or a 5xx → the
templated reply. Buttons are always the simulator's; the figures stay those of the CLI."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from otklik.adapters.db.models import Conversation, EventLog, Timer
from otklik.bootstrap import Otklik
from otklik.capabilities.financing import service
from otklik.cli.main import app as cli
from otklik.core.figures import find_figures
from otklik.testing.fake_openai import FakeOpenAI, FakeReply, RecordedRequest
from otklik.web.app import create_app
from tests.capabilities.care.conftest import Chat
from tests.capabilities.financing.tables import ISSUE_YAML
from tests.conftest import make_settings

PLAN_TEMPLATE = (
    "En 6 cuotas: 5 pagos de $ 29.401,58 y uno último de $ 29.401,57; total $ 176.409,47 "
    "(TNA 48,00 %, TEA 60,10 %, CFTEA 76,33 %)."
)
ASK = "quiero pagar 150000 en 6 cuotas"


class Model:
    """The fake model: classification requests get "none" (the offline reading stands); a phrasing request
    gets `phrase(draft)` or the scripted `reply`."""

    def __init__(self) -> None:
        self.phrase: Callable[[str], str] = lambda draft: draft
        self.reply: FakeReply | None = None
        self.phrasing_requests: list[RecordedRequest] = []

    def __call__(self, request: RecordedRequest) -> FakeReply:
        if "<draft>" not in request.message("user"):
            return FakeReply.json({"intent": "none", "confidence": 0})
        self.phrasing_requests.append(request)
        if self.reply is not None:
            return self.reply
        draft = re.search(r"<draft>\n(.*)\n</draft>", request.message("user"), re.S)
        assert draft is not None
        return FakeReply.json({"reply": self.phrase(draft.group(1))})


@pytest.fixture
async def shop(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Otklik, httpx.AsyncClient, Model]]:
    model = Model()
    async with FakeOpenAI(api_key="sk-test", responder=model) as fake:
        settings = make_settings(
            tmp_path, db_url, default_pack="sales-es", llm_base_url=fake.base_url, llm_api_key="sk-test",
            llm_model="fake-model", llm_timeout=1.0,
        )  # fmt: skip
        app = Otklik.build(settings)
        await app.start()
        async with app.db.write() as session:
            await service.save(session, "visa", ISSUE_YAML, actor="test")
        app.start_worker()
        web = create_app(app, worker=False, manage_lifecycle=False)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
                yield app, http, model
        finally:
            await app.close()


async def _ask(http: httpx.AsyncClient, text: str = ASK) -> tuple[Chat, dict[str, Any]]:
    response = await http.post("/api/webchat/sessions", json={"language": "es"})
    assert response.status_code == 201
    chat = Chat(http, str(response.json()["session_id"]))
    await chat.send(text=text)
    (*_greeting, reply) = await chat.replies(3)
    return chat, reply


async def _fallbacks(app: Otklik) -> list[dict[str, Any]]:
    async with app.db.read() as session:
        rows = (await session.execute(select(EventLog.data).where(EventLog.kind == "llm_fallback"))).scalars()
        return [dict(r) for r in rows]


async def _phrasing(app: Otklik) -> Any:
    async with app.db.read() as session:
        state = (await session.execute(select(Conversation.state))).scalar_one()
    return state["vars"]["financing"].get("phrasing")


def _cli(tmp_path: Path, amount: str, n: int) -> dict[str, Any]:
    path = tmp_path / "rates.yaml"
    path.write_text(ISSUE_YAML, encoding="utf-8")
    result = CliRunner().invoke(cli, ["financing", "simulate", "--rates", str(path), "--amount", amount,
                                      "--installments", str(n), "--json"])  # fmt: skip
    return json.loads(result.output)  # type: ignore[no-any-return]


async def test_a_phrasing_with_the_simulators_numbers_is_sent(
    shop: tuple[Otklik, httpx.AsyncClient, Model], tmp_path: Path
) -> None:
    app, http, model = shop
    assert not app.actions.is_quick("financing.simulate", app.ctx)  # slow: the LLM is called outside the step
    model.phrase = lambda draft: f"¡Buenísimo! {draft.replace('En 6 cuotas:', 'Pagándolo en 6 cuotas tenés')}"
    chat, reply = await _ask(http)
    assert reply["text"].startswith("¡Buenísimo! Pagándolo en 6 cuotas tenés 5 pagos de $ 29.401,58")
    assert reply["buttons"] == [{"title": "Elegir 6 cuotas", "payload": "fin:6"}]  # the simulator's
    # the same figures as the CLI's
    cli_plan = _cli(tmp_path, "150000", 6)
    money = {f.value for f in find_figures(reply["text"]) if f.kind == "money"}
    assert money == {Decimal(cli_plan[k]) for k in ("installment", "last_installment", "total")}
    assert await _phrasing(app) == {"source": "llm"}
    assert await _fallbacks(app) == []
    sent = model.phrasing_requests[-1]
    assert PLAN_TEMPLATE in sent.message("user") and ASK not in json.dumps(sent.body, ensure_ascii=False)
    assert "21.826,01" in sent.message("user")  # the interest is offered to the model, formatted

    # a plan button: chosen, phrased, and the flow goes on exactly as without an LLM
    model.phrase = lambda draft: f"Listo: {draft}"
    await chat.send(button="fin:6")
    chosen, confirm = await chat.replies(2)
    assert chosen["text"].startswith("Listo: Anoté el plan de 6 cuotas de $ 29.401,58 (total $ 176.409,47)")
    assert "¿Avanzamos con la compra" in confirm["text"]
    async with app.db.read() as session:
        state = (await session.execute(select(Conversation.state))).scalar_one()
        payloads = (await session.execute(select(Timer.payload).where(Timer.kind == "action"))).scalars().all()
    assert state["vars"]["financing"]["chosen"] == 6
    assert any((p.get("inbound") or {}).get("payload", {}).get("payload") == "fin:6" for p in payloads)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.replace("29.401,58", "29.401,59"), "figure:unknown:29.401,59"),  # one digit changed
        (lambda d: d + " En 24 cuotas sería menos.", "figure:unknown:24"),  # an invented number
        (lambda d: d.replace("$ 176.409,47", "$ 176.409"), "figure:unknown:176.409"),  # cents dropped
        (lambda d: d.replace("$ 29.401,58", "29,401"), "figure:unknown:29,401"),  # reads 29.401 in es
        (lambda d: d.replace("$", "US$"), "figure:currency:US$"),
    ],
    ids=["digit", "invented", "no-cents", "other-format", "currency"],
)
async def test_a_phrasing_with_other_numbers_gets_the_template(
    shop: tuple[Otklik, httpx.AsyncClient, Model], change: Callable[[str], str], reason: str
) -> None:
    app, http, model = shop
    model.phrase = change
    _chat, reply = await _ask(http)
    assert reply["text"] == PLAN_TEMPLATE
    assert reply["buttons"] == [{"title": "Elegir 6 cuotas", "payload": "fin:6"}]
    (fallback,) = await _fallbacks(app)
    assert fallback["purpose"] == "phrase_figures" and fallback["status"] == "plan"
    assert reason in fallback["reasons"], fallback
    phrasing = await _phrasing(app)
    assert phrasing["source"] == "template" and reason in phrasing["reasons"]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (FakeReply.slow(3.0, '{"reply": "En 6 cuotas de $ 29.401,58; total $ 176.409,47."}'), "unavailable:timeout"),
        (FakeReply.server_error(502), "unavailable:server_error"),
        (FakeReply.malformed(), "unavailable:malformed_response"),
        (FakeReply.text("no es JSON"), "unavailable:invalid_json"),
        (FakeReply.json({"answer": "sin la clave reply"}), "no_reply"),
    ],
    ids=["timeout", "5xx", "malformed", "not-json", "no-reply"],
)
async def test_an_unavailable_model_gets_the_template(
    shop: tuple[Otklik, httpx.AsyncClient, Model], reply: FakeReply, reason: str
) -> None:
    app, http, model = shop
    model.reply = reply
    _chat, sent = await _ask(http)
    assert sent["text"] == PLAN_TEMPLATE
    (fallback,) = await _fallbacks(app)
    assert reason in fallback["reasons"]


async def test_the_plans_list_is_phrased_and_its_buttons_kept(shop: tuple[Otklik, httpx.AsyncClient, Model]) -> None:
    _app, http, model = shop
    model.phrase = lambda draft: draft.replace("estos son los planes", "te paso los planes")
    _chat, plans = await _ask(http, "quiero pagar en cuotas, son 150000")
    assert "te paso los planes" in plans["text"] and "$ 176.409,47" in plans["text"]
    assert [b["payload"] for b in plans["buttons"]] == ["fin:3", "fin:6", "fin:9", "fin:12"]
    assert plans["buttons"][1]["title"] == "6 × $ 29.401,58 · total $ 176.409,47"


async def test_a_refusal_may_be_phrased_but_not_its_limits(shop: tuple[Otklik, httpx.AsyncClient, Model]) -> None:
    app, http, model = shop
    model.phrase = lambda draft: draft.replace("como máximo 18", "como máximo 24")
    _chat, refused = await _ask(http, "quiero pagar 150000 en 15 cuotas")
    assert refused["text"] == "No puedo calcular 15 cuotas: ofrecemos 1-12, 18 cuotas (como máximo 18)."
    (fallback,) = await _fallbacks(app)
    assert fallback["reasons"] == ["figure:unknown:24"]
