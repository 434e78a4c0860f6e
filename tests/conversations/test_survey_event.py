"""`survey.answered`: emitted in the step's transaction for each recorded answer (masked free text, the run
that sent the survey), not for a repeat that records nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from otklik.adapters.db.models import Conversation, SurveyAnswer, WebhookEvent
from otklik.bootstrap import Otklik
from otklik.conversations import surveys
from otklik.platform.webhooks.service import add_endpoint
from tests.conversations.test_abtests_surveys import RU_SURVEY, _contact_of, _ingest


async def test_each_recorded_answer_is_an_event_and_a_repeat_is_not(otklik: Otklik) -> None:
    await add_endpoint(otklik.db, otklik.vault, "http://127.0.0.1:9/hook", "survey.*", actor="test")
    await surveys.install(otklik.flows, RU_SURVEY, pack="care-ru", author="test")
    await otklik._rebuild_engines()
    await _ingest(otklik, "buyer-s", "s1", button="flow:survey.winback_ru")
    contact = await _contact_of(otklik, "buyer-s")
    async with otklik.db.write() as session:
        conv = (await session.execute(select(Conversation).where(Conversation.contact_id == contact))).scalar_one()
        conv.state = {**conv.state, "vars": {**conv.state.get("vars", {}), surveys.SOURCE_VAR: "winback:3"}}
    await _ingest(otklik, "buyer-s", "s2", button="yes")
    await _ingest(otklik, "buyer-s", "s3", button="other")
    await _ingest(otklik, "buyer-s", "s4", text="карта 4111 1111 1111 1111, дорого")
    await _ingest(otklik, "buyer-s", "s5", button="order")
    await _ingest(otklik, "buyer-s", "s6", button="flow:survey.winback_ru")  # the same run again
    await _ingest(otklik, "buyer-s", "s7", button="yes")  # already answered in this run: no row, no event
    async with otklik.db.read() as session:
        rows = (await session.execute(select(WebhookEvent).where(WebhookEvent.type == "survey.answered")
                                      .order_by(WebhookEvent.id))).scalars().all()  # fmt: skip
        answers = await session.scalar(select(func.count()).select_from(SurveyAnswer))
    data = [r.payload["data"] for r in rows]
    assert answers == 3 and len(data) == 3
    assert [(d["question"], d["option"]) for d in data] == [("trade", "yes"), ("supplier", "other"), ("news", "order")]
    assert all(r.subject == f"conversation:{conv.id}" for r in rows)
    first, other = data[0], data[1]
    assert first["survey"] == "winback_ru" and first["source"] == "winback:3" and first["contact_id"] == contact
    assert first["channel"] == "webchat" and first["conversation_id"] == conv.id and first["text"] is None
    assert first["answered_at"].endswith("Z")
    assert "дорого" in other["text"] and "4111 1111 1111 1111" not in other["text"]
