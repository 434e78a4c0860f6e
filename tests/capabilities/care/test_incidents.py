"""Incident records and the dashboard figures (real database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.bootstrap import Otklik
from otklik.capabilities.care.incidents import IncidentInput, Period, incident_stats, incidents_csv, record_incident
from otklik.core.errors import InvalidInput
from otklik.core.messages import EventKind, InboundEvent

NOW = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)


async def conversations(otklik: Otklik, n: int) -> tuple[int, list[int]]:
    async with otklik.db.read() as session:
        account = await session.scalar(select(ChannelAccount.id).where(ChannelAccount.kind == "webchat"))
    ids = []
    for i in range(n):
        result = await otklik.ingest(InboundEvent(int(account), f"e{i}", f"buyer{i}", EventKind.TEXT, text="/start"))
        assert result.conversation_id is not None
        ids.append(result.conversation_id)
    return int(account), ids


async def test_record_is_idempotent_and_stats_add_up(otklik: Otklik) -> None:
    account, conv = await conversations(otklik, 4)
    cases = [
        (conv[0], "wrong_item", "resolved_by_bot", "123", 5, "пришёл не тот размер штанов", 0),
        (conv[1], "wrong_item", "handed_off", "123", None, "прислали не тот размер", 1),
        (conv[2], "defective_item", "resolved_by_bot", "456", 3, "флакон треснул", 8),
        (conv[3], "side_effect", "unresolved", "", 1, "жжёт после геля", 9),
    ]
    for conversation_id, category, outcome, product, rating, phrase, days in cases:
        data = IncidentInput(
            conversation_id, account, "case-1", category, outcome, product, rating=rating, phrase=phrase
        )
        async with otklik.db.write() as session:
            first = await record_incident(session, data, NOW - timedelta(days=days))
            again = await record_incident(session, data, NOW - timedelta(days=days))  # an action re-run
        assert first == again
    async with otklik.db.write() as session:  # a later call without an outcome keeps it and adds the rating
        later = IncidentInput(conv[1], account, "case-1", "wrong_item", rating=4)
        await record_incident(session, later, NOW - timedelta(days=1))
    stats = await incident_stats(otklik.db, Period(NOW - timedelta(days=30), NOW + timedelta(seconds=1)), bucket="week")
    assert stats.total == 4
    assert stats.by_category == {"wrong_item": 2, "defective_item": 1, "side_effect": 1}
    assert stats.by_product == {"123": 2, "456": 1, "—": 1}
    assert stats.by_outcome == {"resolved_by_bot": 2, "handed_off": 1, "unresolved": 1}
    assert stats.resolved_by_bot_share == 0.5
    assert (stats.rated, stats.average_rating, stats.ratings[4]) == (4, 3.25, 1)
    assert sum(sum(c.values()) for _, c in stats.series) == 4 and len(stats.series) == 2
    assert ("размер", 2) in stats.top_phrases
    recent = await incident_stats(otklik.db, Period(NOW - timedelta(days=2), NOW + timedelta(seconds=1)))
    assert recent.total == 2
    csv_text = await incidents_csv(otklik.db, Period(NOW - timedelta(days=30), NOW + timedelta(seconds=1)))
    assert csv_text.splitlines()[0] == "id,created_at,category,product,barcode,outcome,rating,needs_check,phrase"
    assert len(csv_text.splitlines()) == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"category": "nope"}, "category"),
        ({"outcome": "maybe"}, "outcome"),
        ({"rating": 9}, "rating"),
        ({"case_key": ""}, "case"),
    ],
)
async def test_bad_incident_input_is_refused(otklik: Otklik, change: dict[str, object], message: str) -> None:
    account, (conversation_id,) = await conversations(otklik, 1)
    values: dict[str, object] = {"conversation_id": conversation_id, "channel_account_id": account,
                                 "case_key": "c", "category": "wrong_item"}  # fmt: skip
    values.update(change)
    with pytest.raises(InvalidInput, match=message):
        async with otklik.db.write() as session:
            await record_incident(session, IncidentInput(**values), NOW)  # type: ignore[arg-type]
