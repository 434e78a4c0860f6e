"""Conversation repair on the care-ru pack, multi-turn through the web chat HTTP API with the offline
classifier trained on the pack: the buyer changes topic, cancels, cannot give what is asked, asks a question
at the rating, or reports an emergency mid-flow. Asserts the replies and what is stored (flow stack,
variables, incidents, event log). The buyer's sentences here are not training examples of the pack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from otklik.adapters.db.models import Conversation, EventLog, Timer
from otklik.adapters.wildberries.accounts import client_for, wb_accounts
from otklik.bootstrap import Otklik
from otklik.capabilities.care.catalog import sync_cards
from otklik.capabilities.care.models import CareIncident
from otklik.channels.wildberries.accounts import add_wb_account
from otklik.clock import utcnow
from otklik.testing.fake_wb import FakeWB
from otklik.web.app import create_app
from tests.capabilities.care.conftest import FOREIGN, OUR_L, OUR_NM, Care, Chat, label_png, plain_png
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu-cache")  # the classifier trains once for the module


@pytest.fixture
async def care(tmp_path: Path, db_url: str, fake_wb: FakeWB, model_cache: Path) -> AsyncIterator[Care]:
    app = Otklik.build(make_settings(tmp_path, db_url, wb_api_url=fake_wb.url, nlu="auto", cache_path=model_cache))
    await app.start()
    account_id, _ = await add_wb_account(app.db, app.vault, fake_wb.token)
    await app.reload()
    (account,) = await wb_accounts(app.db, app.vault)
    async with client_for(account, app.settings, limiters=app.ctx.wb_limiters) as client:
        await sync_cards(app.db, client, account.id)
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield Care(app, http, fake_wb, account_id)
    finally:
        await app.close()


async def incidents(care: Care) -> list[CareIncident]:
    async with care.app.db.read() as session:
        return list((await session.execute(select(CareIncident).order_by(CareIncident.id))).scalars())


async def state(care: Care) -> dict[str, Any]:
    async with care.app.db.read() as session:
        return dict((await session.execute(select(Conversation.state))).scalar_one())


async def events(care: Care, kind: str) -> list[dict[str, Any]]:
    async with care.app.db.read() as session:
        rows = await session.execute(select(EventLog.data).where(EventLog.kind == kind).order_by(EventLog.id))
        return [dict(r) for r in rows.scalars()]


async def open_chat(care: Care, **session: Any) -> Chat:
    response = await care.http.post("/api/webchat/sessions", json=session)
    assert response.status_code == 201, response.text
    chat = Chat(care.http, str(response.json()["session_id"]))
    await chat.replies(2)  # greeting + menu
    return chat


async def test_a_side_effect_in_the_middle_of_the_barcode_check_is_answered_then_the_check_resumes(
    care: Care,
) -> None:
    chat = await open_chat(care)
    await chat.send(text="здравствуйте, мне привезли чужой товар, не то что я заказывала")
    assert "штрихкод" in (await chat.texts(1))[0]
    await chat.send(text="а ещё от вашего крема щиплет и чешется кожа на руках")
    article, which = await chat.texts(2)
    assert "Не вижу здесь штрихкода" not in article and "смойте" in article
    assert "Каким средством" in which
    stored = await state(care)
    assert [(f["flow"], f["node"]) for f in stored["stack"]] == [("care.wrong_item", "ask")]
    assert stored["flow"] == "care.side_effect" and stored["vars"]["interrupted_flow"] == "care.wrong_item"
    (why,) = await events(care, "interrupted")
    assert why["explain"].startswith("interrupted care.wrong_item/ask by side_effect ")
    await chat.send(text="крем для рук с ромашкой")  # a product name is a value here, not "не понял"
    assert "Позвать менеджера" in (await chat.texts(1))[0]
    await chat.send(text="нет, спасибо")
    assert (await chat.texts(1)) == ["Вернёмся к штрихкоду?"]  # no rating in the middle of another case
    await chat.send(button="repair:resume")
    assert "Пришлите фото этикетки" in (await chat.texts(1))[0]
    stored = await state(care)
    assert stored["stack"] == [] and stored["node"] == "ask" and stored["vars"]["category"] == "wrong_item"
    await chat.upload(label_png(OUR_L))
    (confirm,) = await chat.texts(1)
    assert "размер L" in confirm
    await chat.send(button="other")
    apology, rate = await chat.texts(2)
    assert "Оцените" in rate
    await chat.send(text="5")  # a good rating confirms the bot's answers in this conversation
    await chat.texts(1)
    wrong, side = sorted(await incidents(care), key=lambda i: i.category, reverse=True)
    assert (wrong.category, wrong.outcome, wrong.product) == ("wrong_item", "resolved_by_bot", str(OUR_NM))
    assert (side.category, side.outcome, side.product) == ("side_effect", "resolved_by_bot", "крем для рук с ромашкой")


async def test_an_emergency_mid_flow_hands_off_at_once_in_russian_and_the_case_is_kept(care: Care) -> None:
    chat = await open_chat(care, language="en")  # an English browser; the pack speaks Russian
    await chat.send(button="intent:defective_item")
    assert "фото повреждения" in (await chat.texts(1))[0]
    await chat.send(text="ой, у меня отёк лица и трудно дышать")
    (urgent,) = await chat.texts(1)
    assert urgent.startswith("Это важно — срочно зову оператора")
    async with care.app.db.read() as session:
        row = (await session.execute(select(Conversation.status, Conversation.priority))).one()
    assert (row.status, row.priority) == ("waiting_operator", True)
    (handoff,) = await events(care, "handoff")
    assert handoff["reason"] == "red_flag:отек лица" and handoff["context"]["node"] == "photo"
    (incident,) = await incidents(care)  # the case is kept, and counted as handed over, not as resolved
    assert (incident.category, incident.outcome) == ("defective_item", "handed_off")
    assert incident.details["red_flag"] == "отек лица" and incident.details["urgent"] is True


async def test_cancel_ends_the_flow_and_closes_the_case_with_a_reason(care: Care) -> None:
    chat = await open_chat(care)
    await chat.send(button="intent:wrong_item")
    await chat.texts(1)
    await chat.send(text="Ой, всё, не надо")
    assert (await chat.texts(1)) == ["Хорошо, отменил. Если захотите вернуться к вопросу — просто напишите."]
    stored = await state(care)
    assert (stored["flow"], stored["node"], stored["stack"]) == (None, None, [])
    (closed,) = await events(care, "drafts_closed")
    assert closed["flow"] == "care.wrong_item" and closed["reason"] == "cancelled_by_buyer" and closed["case"]
    (incident,) = await incidents(care)
    assert incident.outcome == "unresolved"
    await chat.send(text="товар с браком пришёл")  # afterwards the entry flow routes again
    assert "фото повреждения" in (await chat.texts(2))[-1]


async def test_no_label_takes_the_alternative_instead_of_asking_again(care: Care) -> None:
    chat = await open_chat(care)
    await chat.send(button="intent:wrong_item")
    await chat.texts(1)
    await chat.send(text="этикетку я уже выкинула, штрихкода нет")
    explained, enough = await chat.texts(2)
    assert "можно и без штрихкода" in explained and "Не вижу здесь штрихкода" not in explained
    await chat.send(button="ok")
    assert "Оцените" in (await chat.texts(1))[0]
    (incident,) = await incidents(care)
    assert incident.outcome == "resolved_by_bot"  # the buyer said it was enough


async def test_a_question_at_the_rating_is_answered_not_dropped(care: Care) -> None:
    chat = await open_chat(care)
    await chat.send(button="intent:defective_item")
    await chat.texts(1)
    await chat.upload(plain_png())
    explained, rate = await chat.texts(2)
    assert "Оцените" in rate
    await chat.send(text="а деньги за возврат когда на карту придут?")
    replies = await chat.texts(2)
    assert "Возврат оформляется через Wildberries" in replies[0] and "Хорошо!" not in " ".join(replies)
    stored = await state(care)
    assert stored["stack"] == [] and stored["flow"] == "care.return_refund"  # the rating is not offered again


async def test_the_buyer_corrects_the_product_name_and_the_case_follows(care: Care) -> None:
    chat = await open_chat(care)
    await chat.send(text="после вашего средства жжение и краснота на коже")
    article, which = await chat.texts(2)
    assert "Каким средством" in which
    await chat.send(text="крем с ромашкой для рук")
    assert "Позвать менеджера" in (await chat.texts(1))[0]
    await chat.send(text="нет, не крем, а разогревающий гель")
    assert "Позвать менеджера" in (await chat.texts(1))[0]  # asked again after the case was updated
    stored = await state(care)
    assert stored["vars"]["product_name"] == "разогревающий гель"
    assert stored["vars"]["product"] == str(OUR_NM)  # matched to the seller's card this time
    (why,) = await events(care, "corrected")
    assert why["var"] == "product_name" and why["node"] == "ask_product"
    (incident,) = await incidents(care)
    assert (incident.category, incident.product, incident.outcome) == ("side_effect", str(OUR_NM), "unresolved")


async def test_an_urgent_first_message_is_handed_off_and_recorded_as_an_urgent_case(care: Care) -> None:
    chat = await open_chat(care)
    await chat.send(text="у ребёнка отёк губ после вашего шампуня")
    (urgent,) = await chat.texts(1)
    assert urgent.startswith("Это важно — срочно зову оператора")
    (incident,) = await incidents(care)  # no care flow had started: the red flag opens a case of its own
    assert (incident.category, incident.outcome) == ("side_effect", "handed_off")
    assert incident.details == {"red_flag": "отек губ", "urgent": True}
    assert "шампун" in incident.phrase and incident.case_key.startswith("urgent-")


async def test_an_answer_is_resolved_by_the_bot_only_on_a_good_rating_or_a_quiet_day(care: Care) -> None:
    # a low rating: the answer did not help, the case stays open
    chat = await open_chat(care)
    await chat.send(button="intent:defective_item")
    await chat.texts(1)
    await chat.upload(plain_png())
    explained, rate = await chat.texts(2)
    assert "Оцените" in rate
    (incident,) = await incidents(care)
    assert (incident.outcome, incident.details["answered"]) == ("unresolved", True)  # answered, not confirmed
    await chat.send(text="2")
    await chat.texts(1)
    (incident,) = await incidents(care)
    assert (incident.outcome, incident.rating) == ("unresolved", 2)

    # no word for a day after the answer: the case closes without a hand-off, resolved by the bot
    other = await open_chat(care)
    await other.send(button="intent:defective_item")
    await other.texts(1)
    await other.upload(plain_png())
    await other.texts(2)
    async with care.app.db.write() as session:
        pending = (
            await session.execute(select(Timer).where(Timer.status == "pending", Timer.kind == "timeout"))
        ).scalars()
        ids = [t.id for t in pending if timedelta(hours=23) < t.due_at - utcnow() <= timedelta(hours=24)]
        assert ids  # the rating question waits a day
        await session.execute(update(Timer).where(Timer.id.in_(ids)).values(due_at=utcnow()))
    for _ in range(100):
        second = [i for i in await incidents(care) if i.id != incident.id]
        if second and second[0].outcome != "unresolved":
            break
        await asyncio.sleep(0.05)
    (closed,) = second
    assert (closed.outcome, closed.rating) == ("resolved_by_bot", None)
    assert await other.texts(0) == []  # closed quietly: no message to a buyer who has gone


async def test_a_quiet_day_does_not_resolve_a_case_the_bot_could_not_answer(care: Care) -> None:
    care.wb.fail_next(10, status=503, path="/content")
    chat = await open_chat(care)
    await chat.send(button="intent:wrong_item")
    await chat.texts(1)
    await chat.send(text=f"штрихкод {FOREIGN}")
    general, rate = await chat.texts(2)
    assert "Оцените" in rate
    async with care.app.db.write() as session:
        await session.execute(
            update(Timer).where(Timer.status == "pending", Timer.kind == "timeout").values(due_at=utcnow())
        )
    for _ in range(100):
        async with care.app.db.read() as session:
            if not (await session.execute(select(Timer.id).where(Timer.status == "pending"))).first():
                break
        await asyncio.sleep(0.05)
    (incident,) = await incidents(care)
    assert (incident.outcome, incident.needs_check) == ("unresolved", True)  # nothing was answered: still open
