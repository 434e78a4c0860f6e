"""A/B tests and survey trees on real SQLite and PostgreSQL: the survey end to end through the web chat
(answers, contact attributes, executives notified), exposures and conversions written by the ingest step,
results on a known fixture computed independently, ending a test keeping a variant, the admin pages."""

from __future__ import annotations

import csv
import io
import math
import re
from datetime import timedelta
from pathlib import Path
from statistics import NormalDist
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from otklik.adapters.db.models import (
    ABConversion,
    ABExposure,
    ABTest,
    Contact,
    ContactIdentity,
    Conversation,
    EventLog,
    StaffNotification,
    SurveyAnswer,
)
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.conversations import abtests, people, surveys
from otklik.core.abtest import AB_VAR, assign_variant
from otklik.core.errors import FlowInvalid
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.staff.members import add_member
from otklik.platform.users import Role

PACKS = Path(__file__).parents[2] / "otklik" / "packs"
RU_SURVEY = (PACKS / "care-ru" / "surveys" / "winback.yaml").read_text(encoding="utf-8")
AB_FLOW = """
id: promo.ab
start: offer
nodes:
  offer:
    type: message
    text: "Скидка 10 %"
    buttons: [{title: "Хочу", payload: "want"}]
    ab:
      id: promo_offer
      variants:
        - {key: a, split: 50, text: "Скидка 10 % на всё"}
        - {key: b, split: 50, text: "Подарок к заказу"}
      goal: {kind: clicked, button: want}
    next: done
  done: {type: end}
"""


def webchat(app: Otklik) -> int:
    return next(a.id for a in app.ctx.accounts.values() if a.kind == "webchat")


async def _ingest(app: Otklik, sender: str, ext: str, *, text: str = "", button: str | None = None) -> None:
    kind = EventKind.BUTTON if button else EventKind.TEXT
    result = await app.ingest(InboundEvent(webchat(app), ext, sender, kind, text=text, payload=button))
    assert not result.duplicate


async def _contact_of(app: Otklik, sender: str) -> int:
    async with app.db.read() as session:
        found = select(ContactIdentity.contact_id).where(ContactIdentity.external_id == sender)
        return int((await session.execute(found)).scalar_one())


# --- the survey end to end through the web chat -------------------------------------------------------


@pytest.fixture
async def chat(app: Any) -> Any:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chat") as http:
        yield http


async def _replies(chat: httpx.AsyncClient, sid: str, after: int) -> tuple[list[dict[str, Any]], int]:
    body = (await chat.get(f"/api/webchat/sessions/{sid}/messages", params={"after": after, "wait": 0})).json()
    messages = [m for m in body["messages"] if m.get("author") != "buyer"]
    last = max([after, *(int(m["id"]) for m in body["messages"])])
    return messages, last


async def test_survey_through_the_web_chat_stores_answers_and_tells_an_executive(
    otklik: Otklik, chat: httpx.AsyncClient
) -> None:
    tree, info = await surveys.install(otklik.flows, RU_SURVEY, pack="care-ru", author="test")
    assert info.active and info.flow_key == "survey.winback_ru"
    await otklik._rebuild_engines()
    await add_member(otklik.db, "Анна", telegram_chat_id="-1001234567890", actor="test")
    await add_member(otklik.db, "Other pack", email="x@shop.example", packs="sales-es", actor="test")

    sid = (await chat.post("/api/webchat/sessions", json={})).json()["session_id"]
    _, after = await _replies(chat, sid, 0)
    steps = [("flow:survey.winback_ru", "Вы всё ещё работаете"), ("yes", "Почему вы перестали"), ("call", "")]
    for button, expected in steps:
        sent = await chat.post(f"/api/webchat/sessions/{sid}/messages", json={"button": button})
        assert sent.status_code in (200, 201, 202), sent.text
        replies, after = await _replies(chat, sid, after)
        assert expected in " ".join(r["text"] for r in replies)
    assert "Спасибо за ответы" in replies[-1]["text"]  # "call" ends the survey

    async with otklik.db.read() as session:
        rows = (await session.execute(select(SurveyAnswer).order_by(SurveyAnswer.id))).scalars().all()
        contact = (await session.execute(select(Contact))).scalar_one()
        notes = (await session.execute(select(StaffNotification))).scalars().all()
    assert [(r.survey, r.question, r.option) for r in rows] == [
        ("winback_ru", "trade", "yes"),
        ("winback_ru", "supplier", "call"),
    ]
    assert all(r.contact_id == contact.id and r.source == "" for r in rows)
    assert contact.fields["still_in_trade"] == "yes" and contact.fields["churn_reason"] == "call"
    assert [(n.transport, n.address) for n in notes] == [("telegram", "-1001234567890")]  # only the pack's staff
    assert notes[0].subject == "Клиент просит перезвонить" and "supplier: call" in notes[0].body
    assert re.fullmatch(r"/admin/inbox/c/\d+", notes[0].link) and notes[0].dedupe_key
    assert tree.attribute("news") == "wants_news"


async def test_free_text_other_is_stored_masked_and_a_run_source_is_kept(otklik: Otklik) -> None:
    await surveys.install(otklik.flows, RU_SURVEY, pack="care-ru", author="test")
    await otklik._rebuild_engines()
    await _ingest(otklik, "buyer-o", "o1", button="flow:survey.winback_ru")
    contact = await _contact_of(otklik, "buyer-o")
    async with otklik.db.write() as session:  # the win-back run that sent the survey names itself
        conv = (await session.execute(select(Conversation).where(Conversation.contact_id == contact))).scalar_one()
        conv.state = {**conv.state, "vars": {**conv.state.get("vars", {}), surveys.SOURCE_VAR: "winback:7"}}
    await _ingest(otklik, "buyer-o", "o2", button="yes")
    await _ingest(otklik, "buyer-o", "o3", button="other")
    await _ingest(otklik, "buyer-o", "o4", text="=SUM(1+1) карта 4111 1111 1111 1111, цены выросли " + "x" * 600)
    await _ingest(otklik, "buyer-o", "o5", button="order")  # buying intent
    async with otklik.db.read() as session:
        rows = (await session.execute(select(SurveyAnswer).order_by(SurveyAnswer.id))).scalars().all()
        notes = (await session.execute(select(func.count()).select_from(StaffNotification))).scalar_one()
        counts = await surveys.distribution(session, "winback_ru", "winback:7")
        text = "".join([chunk async for chunk in surveys.csv_rows(session, "winback_ru")])
    assert [(r.question, r.option) for r in rows] == [("trade", "yes"), ("supplier", "other"), ("news", "order")]
    other = rows[1].text or ""
    assert "4111 1111 1111 1111" not in other and "цены выросли" in other and len(other) <= surveys.MAX_TEXT
    assert {r.source for r in rows} == {"winback:7"}
    assert notes == 0  # nobody on staff: nothing to write, the answer is stored anyway
    assert counts == {"trade": [("yes", 1)], "supplier": [("other", 1)], "news": [("order", 1)]}
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == list(surveys.CSV_HEADER) and len(lines) == 4
    assert [line[3:5] for line in lines[1:]] == [["trade", "yes"], ["supplier", "other"], ["news", "order"]]
    assert lines[2][5].startswith("'=SUM(")  # a spreadsheet shows it, never runs it
    async with otklik.db.read() as session:
        exported = await people.export(session, contact)
    assert [a["option"] for a in exported["survey_answers"]] == ["yes", "other", "order"]
    async with otklik.db.write() as session:
        counts, _ = await people.erase(session, contact, actor="test", now=utcnow())
    assert counts["survey_texts"] == 1
    async with otklik.db.read() as session:
        kept = (await session.execute(select(SurveyAnswer.option, SurveyAnswer.text).order_by(SurveyAnswer.id))).all()
    assert kept == [("yes", None), ("other", None), ("order", None)]  # the counts stay, the words go


async def test_a_cyclic_or_dangling_survey_is_not_installed(otklik: Otklik) -> None:
    cyclic = RU_SURVEY.replace('{id: price, title: "Цена", next: news}', '{id: price, title: "Цена", next: trade}')
    dangling = RU_SURVEY.replace(
        '{id: stock, title: "Нет в наличии", next: news}', '{id: stock, title: "Нет", next: gone}'
    )
    for source, message in ((cyclic, "cycle"), (dangling, "unknown question 'gone'")):
        with pytest.raises(FlowInvalid) as caught:
            await surveys.install(otklik.flows, source, pack="care-ru", author="test")
        assert any(message in str(i) for i in caught.value.errors)
    assert "survey.winback_ru" not in await otklik.flows.keys()


# --- A/B tests in a flow ----------------------------------------------------------------------------------


async def test_flow_test_exposes_each_contact_once_and_counts_clicks(otklik: Otklik) -> None:
    await otklik.flows.save(AB_FLOW, pack="care-ru", author="test")
    await otklik._rebuild_engines()
    clicked: dict[int, str] = {}
    for n in range(6):
        sender = f"ab-{n}"
        await _ingest(otklik, sender, f"{sender}-1", button="flow:promo.ab")
        await _ingest(otklik, sender, f"{sender}-2", button="flow:promo.ab")  # seen again: one exposure
        contact = await _contact_of(otklik, sender)
        if n % 2 == 0:
            await _ingest(otklik, sender, f"{sender}-3", button="want")
            clicked[contact] = ["a", "b"][assign_variant("promo_offer", contact, [50, 50])]
    async with otklik.db.read() as session:
        exposures = (await session.execute(select(ABExposure.contact_id, ABExposure.variant))).all()
        conversions = (await session.execute(select(ABConversion.contact_id, ABConversion.variant))).all()
        test = await session.get(ABTest, "promo_offer")
        results = await abtests.test_results(session, "promo_offer")
    assert len(exposures) == 6
    assert all(v == ["a", "b"][assign_variant("promo_offer", c, [50, 50])] for c, v in exposures)
    assert dict(conversions) == clicked
    assert test is not None and test.variants["keys"] == ["a", "b"] and test.source == "flow:promo.ab/offer"
    by = {r.variant: (r.sample, r.conversions) for r in results.variants}
    expected = {v: (sum(1 for _, x in exposures if x == v), sum(1 for x in clicked.values() if x == v)) for v in "ab"}
    assert by == expected


async def test_a_broadcast_exposure_watches_the_reply(otklik: Otklik) -> None:
    await _ingest(otklik, "bc-1", "bc-1-1", text="привет")
    contact = await _contact_of(otklik, "bc-1")
    variant = ["x", "y", "z"][assign_variant("bcast_1", contact, [40, 30, 30])]
    async with otklik.db.write() as session:
        conv_id = (
            await session.execute(select(Conversation.id).where(Conversation.contact_id == contact))
        ).scalar_one()
        first = await abtests.record_exposure(
            session, "bcast_1", contact, variant, goal={"kind": "replied", "window": "3d"},
            variants=[("x", 40), ("y", 30), ("z", 30)], source="broadcast:1", conversation_id=conv_id,
        )  # fmt: skip
        again = await abtests.record_exposure(
            session, "bcast_1", contact, variant, goal={"kind": "replied"}, conversation_id=conv_id
        )
    assert first and not again
    async with otklik.db.read() as session:
        state = (await session.execute(select(Conversation.state).where(Conversation.id == conv_id))).scalar_one()
    assert state["vars"][AB_VAR]["bcast_1"]["variant"] == variant
    await _ingest(otklik, "bc-1", "bc-1-2", text="интересно")
    async with otklik.db.read() as session:
        conversions = (await session.execute(select(ABConversion.test_key, ABConversion.variant))).all()
    assert conversions == [("bcast_1", variant)]


async def test_record_exposure_refuses_bad_input(otklik: Otklik) -> None:
    async with otklik.db.write() as session:
        for key, variant, goal in (("", "a", {"kind": "replied"}), ("k", "", {"kind": "replied"}),
                                   ("k" * 81, "a", {"kind": "replied"}), ("k", "a", {"kind": "won"}),
                                   ("k", "a", {"kind": "clicked", "window": "forever"})):  # fmt: skip
            with pytest.raises(Exception) as caught:
                await abtests.record_exposure(session, key, 1, variant, goal=goal)
            assert getattr(caught.value, "status_code", None) == 422


# --- results on a known fixture --------------------------------------------------------------------------


def _wilson(x: int, n: int) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.975)
    p = x / n
    centre = (2 * n * p + z * z) / (2 * (n + z * z))
    half = z * math.sqrt(z * z + 4 * n * p * (1 - p)) / (2 * (n + z * z))
    return centre - half, centre + half


async def _fixture(otklik: Otklik, goal: dict[str, Any], plan: dict[str, tuple[int, int]]) -> list[int]:
    """Contacts exposed per variant (sample, conversions), written in batches; returns the contact ids."""
    now = utcnow()
    ids: list[int] = []
    async with otklik.db.write() as session:
        session.add(ABTest(key="fx", source="broadcast:9", variants={"keys": list(plan), "splits": [50, 50]},
                           goal=goal, status="running", created_at=now))  # fmt: skip
        total = sum(n for n, _ in plan.values())
        await session.execute(insert(Contact), [{"display_name": f"c{i}", "created_at": now} for i in range(total)])
        ids = list((await session.execute(select(Contact.id).order_by(Contact.id))).scalars())
        rows, wins, at = [], [], 0
        for variant, (sample, conversions) in plan.items():
            for k, contact in enumerate(ids[at : at + sample]):
                rows.append(
                    {"test_key": "fx", "contact_id": contact, "variant": variant, "source": "", "exposed_at": now}
                )
                if k < conversions:
                    wins.append({"test_key": "fx", "contact_id": contact, "variant": variant, "goal": goal["kind"],
                                 "converted_at": now})  # fmt: skip
            at += sample
        await session.execute(insert(ABExposure), rows)
        if wins:
            await session.execute(insert(ABConversion), wins)
    return ids


async def test_results_on_a_known_fixture(otklik: Otklik) -> None:
    await _fixture(otklik, {"kind": "replied", "window": "7d"}, {"a": (400, 80), "b": (400, 112)})
    async with otklik.db.read() as session:
        results = await abtests.test_results(session, "fx")
    a, b = results.variants
    assert (a.variant, a.sample, a.conversions, b.sample, b.conversions) == ("a", 400, 80, 400, 112)
    assert a.rate == pytest.approx(0.2) and b.rate == pytest.approx(0.28)
    assert (a.low, a.high) == pytest.approx(_wilson(80, 400), abs=1e-12)
    assert (b.low, b.high) == pytest.approx(_wilson(112, 400), abs=1e-12)
    pooled = 192 / 800
    z = (0.28 - 0.2) / math.sqrt(pooled * (1 - pooled) * (2 / 400))
    assert b.z == pytest.approx(z, rel=1e-9)
    assert b.p_value == pytest.approx(2 * (1 - NormalDist().cdf(z)), rel=1e-6)
    assert b.significant and a.p_value is None


async def test_ordered_goal_reads_the_orders_counter_within_the_window(otklik: Otklik) -> None:
    ids = await _fixture(otklik, {"kind": "ordered", "window": "2d"}, {"a": (3, 0), "b": (3, 0)})
    now = utcnow()
    async with otklik.db.write() as session:
        account = webchat(otklik)
        convs = []
        for contact in ids:
            identity = ContactIdentity(contact_id=contact, channel_account_id=account, external_id=f"r{contact}",
                                       created_at=now)  # fmt: skip
            session.add(identity)
            await session.flush()
            conv = Conversation(channel_account_id=account, contact_id=contact, identity_id=identity.id,
                                state={}, created_at=now, updated_at=now)  # fmt: skip
            session.add(conv)
            convs.append(conv)
        await session.flush()
        conv_of = {c.contact_id: int(c.id) for c in convs}
    orders = [(now + timedelta(hours=1), conv_of[ids[0]]), (now + timedelta(days=3), conv_of[ids[1]]),
              (now + timedelta(hours=5), conv_of[ids[3]]), (now - timedelta(hours=1), conv_of[ids[4]]),
              (now + timedelta(hours=2), None)]  # fmt: skip

    async def counter(_session: Any, since: Any, until: Any) -> list[tuple[Any, int | None]]:
        return [(when, cid) for when, cid in orders if since <= when < until]

    async with otklik.db.read() as session:
        results = await abtests.test_results(session, "fx", {"orders": counter})
        without = await abtests.test_results(session, "fx", {})
    # a: contacts 0 (in time), 1 (too late), 2; b: 3 (in time), 4 (before the exposure), 5
    assert [(r.variant, r.sample, r.conversions) for r in results.variants] == [("a", 3, 1), ("b", 3, 1)]
    assert "orders" in without.note and [r.conversions for r in without.variants] == [0, 0]


# --- the admin -------------------------------------------------------------------------------------------


async def test_ending_a_flow_test_publishes_the_kept_variant(otklik: Otklik, as_role: Any) -> None:
    await otklik.flows.save(AB_FLOW, pack="care-ru", author="test")
    await otklik._rebuild_engines()
    await _ingest(otklik, "e-1", "e-1-1", button="flow:promo.ab")
    analyst = await as_role(Role.ANALYST)
    page = await analyst.http.get("/admin/abtests/promo_offer")
    assert page.status_code == 200 and 'data-variant="a"' in page.text and 'id="end-test"' not in page.text
    refused = await analyst.post("/admin/abtests/promo_offer/end", {"variant": "b"})
    assert refused.status_code == 403
    admin = await as_role(Role.ADMIN)
    bad = await admin.post("/admin/abtests/promo_offer/end", {"variant": "<script>"})
    assert bad.status_code == 422 and "<script>" not in bad.text
    no_csrf = await admin.http.post("/admin/abtests/promo_offer/end", data={"variant": "b"})
    assert no_csrf.status_code == 403
    ended = await admin.post("/admin/abtests/promo_offer/end", {"variant": "b"})
    assert ended.status_code == 303, ended.text
    live = await otklik.flows.source("promo.ab")
    assert "Подарок к заказу" in live and "ab:" not in live and "Скидка 10 % на всё" not in live
    async with otklik.db.read() as session:
        test = await session.get(ABTest, "promo_offer")
        kinds = list((await session.execute(select(EventLog.kind).where(EventLog.kind.like("flow.%")))).scalars())
    assert test is not None and (test.status, test.kept, test.ended_by) == ("ended", "b", "user:admin")
    assert "flow.ab_ended" in kinds and "flow.published" in kinds
    again = await admin.post("/admin/abtests/promo_offer/end", {"variant": "a"})
    assert again.status_code == 409
    await _ingest(otklik, "e-2", "e-2-1", button="flow:promo.ab")  # a new contact: the kept text, no exposure
    async with otklik.db.read() as session:
        exposed = (await session.execute(select(func.count()).select_from(ABExposure))).scalar_one()
    assert exposed == 1
    listing = await admin.http.get("/admin/abtests")
    assert 'data-test="promo_offer"' in listing.text
    for bad in ("/admin/abtests/%3Cscript%3E", "/admin/abtests/nope", "/admin/abtests/" + "k" * 81):
        missing = await admin.http.get(bad, headers={"Accept": "text/html"})
        assert missing.status_code == 404 and "<script>" not in missing.text
    assert (await admin.post("/admin/abtests/nope/end", {"variant": "a"})).status_code == 404


async def test_survey_admin_pages_csv_and_install(otklik: Otklik, as_role: Any) -> None:
    operator = await as_role(Role.OPERATOR)
    assert (await operator.http.get("/admin/surveys")).status_code == 403
    admin = await as_role(Role.ADMIN)
    hostile = RU_SURVEY.replace("id: winback_ru", "id: winback_ru\nname: <b>x</b>").replace(
        '{id: price, title: "Цена", next: news}', '{id: price, title: "<img src=x onerror=alert(1)>", next: nowhere}'
    )
    refused = await admin.post("/admin/surveys", {"source": hostile, "pack": "care-ru"})
    assert refused.status_code == 422 and "unknown question" in refused.text and "<img src=x" not in refused.text
    huge = await admin.post("/admin/surveys", {"source": "x" * 70_000, "pack": "care-ru"})
    assert huge.status_code == 413
    installed = await admin.post("/admin/surveys", {"source": RU_SURVEY, "pack": "care-ru"})
    assert installed.status_code == 303 and installed.headers["location"] == "/admin/surveys/winback_ru"
    await _ingest(otklik, "s-1", "s-1-1", button="flow:survey.winback_ru")
    await _ingest(otklik, "s-1", "s-1-2", button="no")
    await _ingest(otklik, "s-2", "s-2-1", button="flow:survey.winback_ru")
    await _ingest(otklik, "s-2", "s-2-2", button="no")
    await _ingest(otklik, "s-2", "s-2-3", text="=HYPERLINK(1)")  # not an option: asked again, nothing stored
    page = await admin.http.get("/admin/surveys/winback_ru")
    assert page.status_code == 200
    assert (
        'data-question="trade"' in page.text and "Уже нет" in page.text and '<td data-col="count">2</td>' in page.text
    )
    exported = await admin.http.get("/admin/surveys/winback_ru/answers.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(exported.text)))
    assert len(lines) == 3 and {tuple(line[3:5]) for line in lines[1:]} == {("trade", "no")}
    assert (await admin.http.get("/admin/surveys/Bad..id")).status_code == 404
    listing = await admin.http.get("/admin/surveys")
    assert 'data-survey="winback_ru"' in listing.text
