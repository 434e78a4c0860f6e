"""Every metric on the hand-built fixture (tests/capabilities/metrics/fixture.py): the aggregate rows the job
writes — incrementally, in two runs, and again from scratch — equal the definitions applied by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from otklik.bootstrap import Otklik
from otklik.capabilities.metrics import models as m
from otklik.capabilities.metrics.aggregate import recompute
from otklik.capabilities.metrics.definitions import Filters, bucket_of, raw_percentile
from otklik.capabilities.metrics.query import behind, report
from otklik.platform import business_hours as bh
from tests.capabilities.metrics import fixture as fx

RANGE = Filters(fx.DAY1.date(), fx.NOW.date())


async def _rows(app: Otklik) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]:
    async with app.db.read() as session:
        daily = sorted(tuple(r[1:]) for r in (await session.execute(select(m.daily))).all())
        latency = sorted(tuple(r[1:]) for r in (await session.execute(select(m.latency))).all())
        sessions = sorted(tuple(r[1:]) for r in (await session.execute(select(m.sessions))).all())
    return daily, latency, sessions


@pytest.fixture
async def built(otklik: Otklik) -> fx.Builder:
    b = fx.Builder(otklik)
    await fx.phase_one(b)
    first = await recompute(otklik.db, fx.COUNTERS, now=fx.PHASE_ONE_NOW)
    assert first.sessions == 5  # conversations 1, 2 (twice), 3, 7
    await fx.phase_two(b)
    await recompute(otklik.db, fx.COUNTERS, now=fx.NOW)
    return b


async def test_every_metric_equals_its_definition(otklik: Otklik, built: fx.Builder) -> None:
    data = (await report(otklik.db, RANGE)).json()
    e = fx.EXPECTED
    assert data["conversations"] == e["conversations"]
    assert data["reopened"] == e["reopened"]
    assert (data["could_handoff"], data["bot_handled"]) == (e["could_handoff"], e["bot_handled"])
    assert data["handled_by_bot_share"] == round(5 / 8, 4)
    assert data["handoffs"] == e["handoffs"] and data["handoffs_by_reason"] == e["handoffs_by_reason"]
    assert data["handoff_rate"] == round(3 / 8, 4)
    bot = data["bot_response_ms"]
    assert bot["count"] == len(e["bot_ms"]) and bot["over_10s"] == 2 and bot["over_10s_share"] == round(2 / 11, 4)
    for p in (50, 90, 99):
        assert bot[f"p{p}"] == raw_percentile(e["bot_ms"], p), p
        assert data["operator_first_response_ms"][f"p{p}"] == raw_percentile(e["operator_ms"], p), p
    assert (bot["p50"], bot["p90"], bot["p99"]) == (2000, 15000, 30000)
    assert data["operator_first_response_ms"]["count"] == 2
    assert data["seen_unanswered"] == e["seen_unanswered"] and data["seen_unanswered_lower_bound"] is True
    assert (data["messages_in"], data["messages_out"]) == (e["messages_in"], e["messages_out"])
    assert data["orders"] == 1 and data["conversion_conversation_order"] == round(1 / 8, 4)
    assert data["leads"] == data["bookings"] == 0 and data["conversion_lead_booking"] is None


async def test_slices_by_channel_source_flow_operator(otklik: Otklik, built: fx.Builder) -> None:
    data = (await report(otklik.db, RANGE)).json()
    channels = {row["channel"]: row for row in data["by_channel"]}
    assert channels["telegram"]["conversations"] == 6 and channels["webhook"]["conversations"] == 2
    assert channels["webhook"]["orders"] == 1 and channels["webhook"]["bot_handled"] == 1
    sources = {row["source"]: row for row in data["by_source"]}
    assert sources["insta"]["conversations"] == 1 and sources["insta"]["seen_unanswered"] == 1
    flows = {row["flow"]: row for row in data["by_flow"]}
    assert flows["sales"]["handoffs"] == 2 and flows["greeting"]["bot_handled"] == 1
    operators = {row["operator"]: row for row in data["by_operator"]}
    assert operators["olga"]["operator_first_response_ms"]["count"] == 2
    only_tg = (await report(otklik.db, RANGE.narrowed(channel="telegram"))).json()
    assert only_tg["conversations"] == 6 and only_tg["orders"] == 0 and only_tg["seen_unanswered"] == 3
    insta = (await report(otklik.db, RANGE.narrowed(source="insta"))).json()
    assert insta["bot_response_ms"]["count"] == 2 and insta["bot_response_ms"]["over_10s"] == 1
    day3 = (await report(otklik.db, Filters(fx.at(3, 0).date(), fx.at(3, 0).date()))).json()
    assert day3["seen_unanswered"] == 2  # 5's, and 7's read that day (its message is of day 1)
    day2 = (await report(otklik.db, Filters(fx.at(2, 0).date(), fx.at(2, 0).date()))).json()
    assert day2["conversations"] == 2 and day2["reopened"] == 1  # 2's reopening and 3
    assert day2["operator_first_response_ms"]["p50"] == bucket_of(1_200_000)  # measured from the reopening


async def test_incremental_runs_equal_a_full_recompute_and_a_rerun_changes_nothing(
    otklik: Otklik, built: fx.Builder
) -> None:
    incremental = await _rows(otklik)
    again = await recompute(otklik.db, fx.COUNTERS, now=fx.NOW)
    assert await _rows(otklik) == incremental
    assert again.start > fx.DAY1.date()  # only the recent days were recomputed
    await recompute(otklik.db, fx.COUNTERS, now=fx.NOW, full=True)
    assert await _rows(otklik) == incremental


async def test_rollups_give_the_same_report_as_the_day_rows(otklik: Otklik, built: fx.Builder) -> None:
    """The rollup rows (per day and channel account, for all / source / flow / operator) are what the dashboard
    reads without a source, flow or operator filter: every number must equal the day rows' — for the range, a
    channel, a pack, one day and today — after two incremental runs and after a full recompute."""
    one_day = fx.at(2, 0).date()
    cases = [
        RANGE,
        RANGE.narrowed(channel="telegram"),
        RANGE.narrowed(channel="webhook"),
        Filters(one_day, one_day),
        Filters(fx.NOW.date(), fx.NOW.date()),
    ]
    async with otklik.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(m.rollup)) > 0
    for run in ("incremental", "full"):
        if run == "full":
            await recompute(otklik.db, fx.COUNTERS, now=fx.NOW, full=True)
        for filters in cases:
            from_rollups = (await report(otklik.db, filters)).json()
            from_days = (await report(otklik.db, filters, rollups=False)).json()
            assert from_rollups == from_days, (run, filters)
            assert from_days["conversations"] > 0 or filters.first == filters.last


async def test_the_conversations_behind_a_number(otklik: Otklik, built: fx.Builder) -> None:
    seen = await behind(otklik.db, RANGE, "seen_unanswered")
    assert {r.conversation_id for r in seen} == {built.conversations[n] for n in (1, 5, 7)}
    handoffs = await behind(otklik.db, RANGE, "handoffs")
    assert sorted(r.conversation_id for r in handoffs) == sorted(built.conversations[n] for n in (2, 2, 3))
    reopened = await behind(otklik.db, RANGE, "reopened")
    assert {r.conversation_id for r in reopened} == {built.conversations[2], built.conversations[5]}


async def test_today_is_kept_per_hour_and_folds_into_a_day(otklik: Otklik) -> None:
    b = fx.Builder(otklik)
    await fx.phase_one(b)
    await recompute(otklik.db, fx.COUNTERS, now=fx.PHASE_ONE_NOW)  # day 2 is today
    async with otklik.db.read() as session:
        hours = set(
            (await session.execute(select(m.daily.c.hour).where(m.daily.c.day == fx.at(2, 0).date()))).scalars()
        )
    assert hours == {8, 12}  # conversation 2's reopening, conversation 3
    today = await report(otklik.db, Filters(fx.at(2, 0).date(), fx.at(2, 0).date()))
    assert sorted(today.by_hour) == [8, 12] and today.total.counts["conversations"] == 2
    await recompute(otklik.db, fx.COUNTERS, now=fx.NOW)
    async with otklik.db.read() as session:
        hours = set(
            (await session.execute(select(m.daily.c.hour).where(m.daily.c.day == fx.at(2, 0).date()))).scalars()
        )
    assert hours == {-1}


async def test_operator_first_response_counts_business_hours_only(otklik: Otklik) -> None:
    b = fx.Builder(otklik)
    await b.account("tg", "telegram")
    await b.conversation(1, "tg")
    friday = datetime(2026, 3, 6, 17, 50, tzinfo=UTC)
    await b.buyer(1, friday)
    await b.bot(1, friday, after=1)
    await b.event(1, friday, "handoff", {"reason": "buyer_request"})
    await b.operator(1, datetime(2026, 3, 9, 9, 10, tzinfo=UTC), "olga")  # Monday
    hours = bh.parse_schedule({"enabled": True, "timezone": "UTC",
                               "week": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}})  # fmt: skip
    await recompute(otklik.db, (), hours, now=fx.NOW)
    data = (await report(otklik.db, RANGE)).json()
    assert data["operator_first_response_ms"]["p50"] == bucket_of(20 * 60 * 1000)  # 10 min Friday + 10 Monday
    await recompute(otklik.db, (), now=fx.NOW, full=True)  # without hours: the whole weekend
    data = (await report(otklik.db, RANGE)).json()
    assert data["operator_first_response_ms"]["p50"] == bucket_of(int((63 * 60 + 20) * 60 * 1000))


async def test_the_registrys_counters_count_orders_and_claims(otklik: Otklik) -> None:
    """Sales and cashback declare their counters (`Capability.counters`); the job reads them, never their tables."""
    from decimal import Decimal

    from sqlalchemy import insert

    from otklik.capabilities.metrics.aggregate import counters_of
    from otklik.capabilities.sales.models import orders
    from otklik.registry import CAPABILITIES

    counters = {c.name: c for c in counters_of(CAPABILITIES)}
    assert set(counters) >= {"orders", "claims"}
    b = fx.Builder(otklik)
    await b.account("tg", "telegram")
    conv = await b.conversation(1, "tg")
    async with otklik.db.write() as session:
        await session.execute(insert(orders).values(
            number="A-1", cart_generation=1, conversation_id=conv, status="new", currency="ARS",
            subtotal=Decimal(100), iva=Decimal(21), iva_rate=Decimal(21), total=Decimal(121), customer={},
            valid_until=fx.at(9, 0), created_at=fx.at(2, 11), updated_at=fx.at(2, 11),
        ))  # fmt: skip
    async with otklik.db.read() as session:
        assert await counters["orders"].fn(session, fx.at(2, 0), fx.at(3, 0)) == [(fx.at(2, 11), conv)]
        assert await counters["orders"].fn(session, fx.at(3, 0), fx.at(4, 0)) == []
        assert await counters["claims"].fn(session, fx.at(1, 0), fx.at(9, 0)) == []
    await b.buyer(1, fx.at(2, 10))
    await recompute(otklik.db, tuple(counters.values()), now=fx.NOW)
    assert (await report(otklik.db, RANGE)).json()["orders"] == 1
