"""Segments and broadcasts on SQLite and PostgreSQL, sent through the real Telegram sender to the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from otklik.adapters.db.models import Contact, Message, OutboxRow
from otklik.bootstrap import Otklik
from otklik.capabilities.outreach import jobs, service
from otklik.capabilities.outreach.models import deliveries
from otklik.capabilities.outreach.segments import parse
from otklik.clock import utcnow
from otklik.core.errors import Conflict, InvalidInput, NotFound
from otklik.platform.channel_accounts import add_account
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from tests.capabilities.outreach.seed import message, seed_contacts, tag
from tests.conftest import make_settings


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def app(tmp_path: Path, db_url: str, fake: FakeTelegramServer) -> AsyncIterator[tuple[Otklik, int]]:
    otk = Otklik.build(make_settings(tmp_path, db_url, telegram_api_url=fake.base_url))
    await otk.start()
    account = await add_account(
        otk.db, otk.vault, kind="telegram", name="shop_bot", pack="care-ru", secret=DEFAULT_TOKEN,
        config={"username": "otklik_test_bot", "per_second": None},
    )  # fmt: skip
    await otk.reload()
    try:
        yield otk, account
    finally:
        await otk.close()


async def run_until_settled(otk: Otklik, broadcast_id: int, rounds: int = 200) -> str:
    for _ in range(rounds):
        await jobs.run_once(otk.ctx)
        await otk.dispatcher.run_once()
        async with otk.db.read() as session:
            status = (await service.get(session, broadcast_id)).status
        if status != service.RUNNING:
            return str(status)
    return "running"


def received(fake: FakeTelegramServer, chats: list[int]) -> dict[int, int]:
    return {chat: len(fake.sent_messages(chat)) for chat in chats}


async def create(otk: Otklik, **kw: Any) -> int:
    kw.setdefault("name", "promo")
    kw.setdefault("message", {"text": "Скидка 10%"})
    async with otk.db.write() as session:
        return await service.create(session, actor="test", **kw)


async def control(otk: Otklik, broadcast_id: int, action: str) -> str:
    async with otk.db.write() as session:
        return await service.control(session, broadcast_id, action, actor="test")


# --- segments --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        None, [], "tag", {}, {"tag": ""}, {"tag": "x" * 65}, {"all": []}, {"all": "x"}, {"nope": 1},
        {"tag": "a", "language": "b"}, {"subscribed": "yes"}, {"last_inbound": {"older_than_days": 0}},
        {"last_inbound": {"older_than_days": True}}, {"first_seen": {"after": "31/01/2026"}},
        {"first_seen": {"later": 3}}, {"attribute": {"key": "city"}}, {"attribute": {"key": "", "value": "x"}},
        {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"tag": "deep"}}}}}}}}}},
        {"any": [{"tag": f"t{i}"} for i in range(120)]},
    ],
)  # fmt: skip
def test_malformed_conditions_are_refused_with_a_clear_message(bad: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse(bad)
    assert refused.value.user_message


async def test_segments_select_the_right_contacts(app: tuple[Otklik, int]) -> None:
    otk, account = app
    now = utcnow()
    chats = await seed_contacts(
        otk.db, account, 12,
        language=lambda i: "es" if i % 2 else "ru",
        subscribed=lambda i: i != 3,  # 3 opted out
        reachable=lambda i: i != 5,  # 5 blocked the bot
        fields=lambda i: {"city": "Rosario"} if i < 4 else {},
        created_at=lambda i: now - timedelta(days=400 if i < 6 else 5),
    )  # fmt: skip
    for i in (0, 1, 3, 7):
        await tag(otk.db, chats[i], "vip")
    await message(otk.db, chats[0], "in", now - timedelta(days=300))
    await message(otk.db, chats[1], "in", now - timedelta(days=2))
    await message(otk.db, chats[2], "out", now - timedelta(days=1))

    async def ids(conditions: Any) -> set[int]:
        async with otk.db.read() as session:
            query = service.seg.audience_query(parse(conditions) if conditions else None, utcnow())
            contact_ids = [r.contact_id for r in (await session.execute(query)).all()]
            found = (await session.execute(select(Contact.display_name).where(Contact.id.in_(contact_ids)))).all()
        return {int(r.display_name.split()[1]) for r in found}

    everyone = set(range(12)) - {3, 5}  # opted-out and unreachable are never in an audience
    assert await ids(None) == everyone
    assert await ids({"tag": "vip"}) == {0, 1, 7}
    assert await ids({"not": {"tag": "vip"}}) == everyone - {0, 1, 7}
    assert await ids({"all": [{"tag": "vip"}, {"language": "es"}]}) == {1, 7}
    assert await ids({"any": [{"language": "es"}, {"attribute": {"key": "city", "value": "Rosario"}}]}) == {
        0, 1, 2, 7, 9, 11,
    }  # fmt: skip
    assert await ids({"first_seen": {"within_days": 30}}) == {6, 7, 8, 9, 10, 11}
    assert await ids({"last_inbound": {"within_days": 30}}) == {1}
    assert await ids({"last_inbound": {"older_than_days": 30}}) == everyone - {1}  # never wrote is included
    assert await ids({"last_outbound": {"after": (now - timedelta(days=3)).date().isoformat()}}) == {2}
    assert await ids({"channel": "telegram"}) == everyone and await ids({"channel": "whatsapp"}) == set()
    assert await ids({"account": "shop_bot"}) == everyone and await ids({"pack": "other"}) == set()
    assert await ids({"subscribed": False}) == set()  # opted-out contacts are excluded whatever the condition

    async with otk.db.write() as session:
        await service.save_segment(session, "vip es", {"all": [{"tag": "vip"}, {"language": "es"}]}, actor="t")
    async with otk.db.read() as session:
        count, sample = await service.preview(session, (await service.segment_by_name(session, "vip es")).conditions)
        with pytest.raises(NotFound):
            await service.segment_by_name(session, "nobody")
    assert count == 2 and {s["name"] for s in sample} == {"buyer 1", "buyer 7"}


# --- broadcasts ------------------------------------------------------------------------------------------


async def test_a_broadcast_reaches_each_subscribed_contact_exactly_once(
    app: tuple[Otklik, int], fake: FakeTelegramServer
) -> None:
    otk, account = app
    chats = await seed_contacts(otk.db, account, 30, subscribed=lambda i: i % 10 != 0)  # 3 opted out
    broadcast = await create(otk, message={"text": "Новинки", "buttons": [{"title": "Хочу", "payload": "want"}]})
    assert await control(otk, broadcast, "start") == "running"
    assert await run_until_settled(otk, broadcast) == "done"
    got = received(fake, chats)
    assert {c for c, n in got.items() if n != 1} == {chats[0], chats[10], chats[20]}
    assert all(got[c] == 0 for c in (chats[0], chats[10], chats[20]))  # opted out: never
    assert all(m["text"] == "Новинки" for c in chats[1:4] for m in fake.sent_messages(c))
    await jobs.run_once(otk.ctx)  # another round changes nothing
    await otk.dispatcher.run_once()
    assert received(fake, chats) == got
    async with otk.db.read() as session:
        progress = await service.progress(session, broadcast)
        rows = await session.scalar(select(func.count()).select_from(deliveries))
    assert rows == progress.total == 27
    assert progress.counts["sent"] == 27 and progress.done == 27 and progress.status == "done"
    # a reply after it counts as replied
    await message(otk.db, chats[1], "in", utcnow())
    async with otk.db.write() as session:
        await session.execute(update(Contact).where(Contact.display_name == "buyer 2").values(subscribed=False))
    async with otk.db.read() as session:
        progress = await service.progress(session, broadcast)
    assert progress.counts["replied"] == 1 and progress.counts["opted_out"] == 1


async def test_pause_resume_cancel_and_bad_moves(app: tuple[Otklik, int], fake: FakeTelegramServer) -> None:
    otk, account = app
    chats = await seed_contacts(otk.db, account, 50)
    broadcast = await create(otk)
    with pytest.raises(Conflict):
        await control(otk, broadcast, "pause")  # a draft cannot be paused
    await control(otk, broadcast, "start")
    with pytest.raises(Conflict):
        await control(otk, broadcast, "start")  # started twice
    await jobs.run_once(otk.ctx)  # delivery rows and the first window (30) queued
    assert await control(otk, broadcast, "pause") == "paused"
    with pytest.raises(Conflict):
        await control(otk, broadcast, "pause")  # pausing twice
    for _ in range(5):
        await jobs.run_once(otk.ctx)
        await otk.dispatcher.run_once()
    sent_while_paused = sum(received(fake, chats).values())
    assert sent_while_paused == 30  # the window already queued went, nothing more
    assert await control(otk, broadcast, "resume") == "running"
    assert await run_until_settled(otk, broadcast) == "done"
    assert set(received(fake, chats).values()) == {1}

    second = await create(otk, name="second")
    await control(otk, second, "start")
    await jobs.run_once(otk.ctx)
    assert await control(otk, second, "cancel") == "cancelled"
    for _ in range(3):
        await jobs.run_once(otk.ctx)
        await otk.dispatcher.run_once()
    async with otk.db.read() as session:
        progress = await service.progress(session, second)
    assert progress.counts["cancelled"] == 20 and progress.counts["sent"] == 30
    assert set(received(fake, chats).values()) <= {1, 2} and sum(received(fake, chats).values()) == 80
    with pytest.raises(Conflict):
        await control(otk, second, "resume")


async def test_quiet_hours_push_sends_to_the_morning(
    app: tuple[Otklik, int], fake: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    otk, account = app
    chats = await seed_contacts(otk.db, account, 5)
    night = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)  # 23:30 in Buenos Aires (UTC-3)
    monkeypatch.setattr(service, "utcnow", lambda: night)
    broadcast = await create(otk, timezone="America/Argentina/Buenos_Aires", quiet=(21, 9))
    await control(otk, broadcast, "start")
    for _ in range(3):
        await jobs.run_once(otk.ctx)
        await otk.dispatcher.run_once()
    assert sum(received(fake, chats).values()) == 0
    assert service.quiet_until(night, "America/Argentina/Buenos_Aires", 21, 9) == datetime(
        2026, 12, 5, 12, 0, tzinfo=UTC
    )  # 09:00 local
    monkeypatch.setattr(service, "utcnow", lambda: datetime(2026, 12, 5, 12, 1, tzinfo=UTC))
    assert await run_until_settled(otk, broadcast) == "done"
    assert set(received(fake, chats).values()) == {1}


def test_quiet_hours_edges() -> None:
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert service.quiet_until(at, "UTC", None, None) is None
    assert service.quiet_until(at, "UTC", 9, 9) is None
    assert service.quiet_until(at, "UTC", 13, 15) is None
    assert service.quiet_until(at, "UTC", 12, 15) == datetime(2026, 6, 1, 15, tzinfo=UTC)
    assert service.quiet_until(at, "UTC", 22, 13) == datetime(2026, 6, 1, 13, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        service.quiet_until(at, "Mars/Olympus", 1, 2)


async def test_bad_input_is_refused_and_nothing_is_created(app: tuple[Otklik, int]) -> None:
    otk, _ = app
    for kw in (
        {"at": "2001-01-01T10:00"},  # in the past
        {"at": "tomorrow"},
        {"timezone": "Nowhere/City"},
        {"name": ""},
        {"name": "<script>" * 20},
        {"message": {"text": ""}},
        {"message": {"text": "x" * 5000}},
        {"message": {"text": "a", "buttons": [{"title": ""}]}},
        {"message": {"text": "a", "html": "<b>"}},
        {"message": {"template": {"name": "promo", "params": [1]}}},
        {"segment": "missing"},
        {"quiet": (25, 3)},
    ):
        with pytest.raises((InvalidInput, NotFound)):
            await create(otk, **kw)
    async with otk.db.read() as session:
        assert await service.list_broadcasts(session) == []


async def test_a_missing_template_parameter_skips_that_contact_only(
    app: tuple[Otklik, int], fake: FakeTelegramServer
) -> None:
    otk, account = app
    chats = await seed_contacts(otk.db, account, 4, fields=lambda i: {"coupon": f"C{i}"} if i % 2 else {})
    broadcast = await create(
        otk, message={"text": "Ваш купон", "template": {"name": "coupon", "language": "ru", "params": ["{coupon}"]}}
    )
    await control(otk, broadcast, "start")
    assert await run_until_settled(otk, broadcast) == "done"
    assert received(fake, chats) == {chats[0]: 0, chats[1]: 1, chats[2]: 0, chats[3]: 1}
    async with otk.db.read() as session:
        progress = await service.progress(session, broadcast)
    assert progress.skipped_by_reason == {"missing template parameter coupon": 2}


async def test_a_revoked_token_pauses_the_run_with_a_clear_reason(
    app: tuple[Otklik, int], fake: FakeTelegramServer
) -> None:
    otk, account = app
    chats = await seed_contacts(otk.db, account, 40)
    fake.fail("sendMessage", 401, times=None, after=5)
    broadcast = await create(otk)
    await control(otk, broadcast, "start")
    assert await run_until_settled(otk, broadcast) == "paused"
    async with otk.db.read() as session:
        progress = await service.progress(session, broadcast)
        pending = await session.scalar(
            select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
        )
        queued = await session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "pending"))
    assert "token" in progress.reason and "resume" in progress.reason
    assert sum(received(fake, chats).values()) == 5
    assert pending == 10 and queued == 0  # the first window failed; the rest waits for a resume
    assert progress.counts["failed"] == 25 and list(progress.failed_by_reason.values()) == [25]
    failed = await _failed_messages(otk)
    assert failed == 25


async def _failed_messages(otk: Otklik) -> int:
    async with otk.db.read() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Message).where(Message.status == "failed")) or 0
        )
