"""Conversation repair on the sales-es pack through the web chat API, with the offline classifier trained
on the pack: a financing question in the middle of a product conversation, cancel in Spanish, a person
asked for while the bot collects free text, and system texts in Spanish whatever the browser says. The
buyer's sentences here are not training examples of the pack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from otklik.adapters.db.models import Conversation, EventLog
from otklik.bootstrap import Otklik
from otklik.web.app import create_app
from tests.channels.webchat.test_webchat_api import new_session, replies
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu-cache")


@pytest.fixture
async def sales(tmp_path: Path, db_url: str, model_cache: Path) -> AsyncIterator[tuple[Otklik, httpx.AsyncClient]]:
    app = Otklik.build(make_settings(tmp_path, db_url, nlu="auto", cache_path=model_cache, default_pack="sales-es"))
    await app.start()
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield app, http
    finally:
        await app.close()


class Buyer:
    def __init__(self, http: httpx.AsyncClient, sid: str, cursor: int) -> None:
        self.http, self.sid, self.cursor = http, sid, cursor

    @classmethod
    async def open(cls, http: httpx.AsyncClient, **session: Any) -> Buyer:
        sid = await new_session(http, **session)
        greeting, cursor = await replies(http, sid, 0, 2)
        assert greeting[0]["text"].startswith("¡Hola!")
        return cls(http, sid, cursor)

    async def say(self, expect: int, **body: Any) -> list[str]:
        response = await self.http.post(f"/api/webchat/sessions/{self.sid}/messages", json=body)
        assert response.status_code == 202, response.text
        got, self.cursor = await replies(self.http, self.sid, self.cursor, expect)
        assert len(got) == expect, [m["text"] for m in got]
        return [m["text"] for m in got]


async def stored(app: Otklik) -> dict[str, Any]:
    async with app.db.read() as session:
        return dict((await session.execute(select(Conversation.state))).scalar_one())


async def logged(app: Otklik, kind: str) -> list[dict[str, Any]]:
    async with app.db.read() as session:
        rows = await session.execute(select(EventLog.data).where(EventLog.kind == kind).order_by(EventLog.id))
        return [dict(r) for r in rows.scalars()]


async def test_a_financing_question_in_the_middle_is_answered_from_the_articles(
    sales: tuple[Otklik, httpx.AsyncClient],
) -> None:
    app, http = sales
    buyer = await Buyer.open(http)
    answer, more = await buyer.say(2, text="¿qué diferencia hay entre un NVR y un DVR?")
    assert "¿Te sirvió?" in more
    financing, again = await buyer.say(2, text="¿y si lo pago en 12 cuotas sin interés?")
    assert "cuota" in financing.lower() and financing != answer and "¿Te sirvió?" in again
    assert "No entendí" not in financing
    (why,) = await logged(app, "interrupted")
    assert why["explain"].startswith("left sales.main/more by financing ") and why["resumable"] is False
    state = await stored(app)
    assert state["stack"] == [] and state["node"] == "more"


async def test_cancel_in_spanish_ends_the_flow_with_a_short_confirmation(
    sales: tuple[Otklik, httpx.AsyncClient],
) -> None:
    app, http = sales
    buyer = await Buyer.open(http, language="ru")  # a Russian browser; the pack speaks Spanish
    (ask,) = await buyer.say(1, text="quiero algo para mi negocio")
    assert ask.startswith("No estoy seguro") or ask.startswith("Contame")
    (done,) = await buyer.say(1, text="Olvidate, ya no")
    assert done == "Listo, lo cancelé. Si querés retomarlo, escribime cuando quieras."
    state = await stored(app)
    assert (state["flow"], state["node"]) == (None, None)
    assert (await logged(app, "cancelled"))[0]["flow"] == "sales.main"


async def test_asking_for_a_person_while_the_bot_collects_free_text_hands_off_in_spanish(
    sales: tuple[Otklik, httpx.AsyncClient],
) -> None:
    app, http = sales
    buyer = await Buyer.open(http, language="en")
    await buyer.say(1, button="products")  # not a button of this step: the menu shows its choices
    (handoff,) = await buyer.say(1, text="prefiero que me atienda un humano")
    assert handoff == "Te paso con un ejecutivo de ventas; te responde por aquí en breve."
    async with app.db.read() as session:
        assert (await session.scalar(select(Conversation.status))) == "waiting_operator"
    (record,) = await logged(app, "handoff")
    assert record["reason"] == "buyer_request" and record["context"]["flow"] == "sales.main"
