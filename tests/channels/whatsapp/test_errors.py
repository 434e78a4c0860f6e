"""Meta's refusals through the real dispatcher: a 130429 storm keeps each conversation's order and loses and
repeats nothing; an undeliverable number (131026) fails that message once, with no retry storm; a rejected
token (190) marks the account broken while its sends wait; 131048 pauses marketing and tells the admin."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import ChannelAccount, Message, OutboxRow
from otklik.channels.whatsapp import graph
from tests.channels.whatsapp.conftest import WA, body_text, wait_for

USERS = [f"54911000{n:05d}" for n in range(6)]


async def _outbox(wa: WA) -> list[tuple[str, int]]:
    async with wa.app.db.read() as session:
        return [(r[0], r[1]) for r in (await session.execute(select(OutboxRow.status, OutboxRow.send_count))).all()]


async def test_a_130429_storm_keeps_order_and_loses_nothing(wa: WA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(graph.RETRY_LATER, 130429, 0.2)
    monkeypatch.setitem(graph.RETRY_LATER, 131056, 0.2)
    fake = wa.fake
    fake.fail(130429, times=9)
    fake.fail(131056, times=2, after=3)
    for user in USERS:
        await wa.post(fake.text_message(user, "/start"))
    await wait_for(lambda: all(len(fake.sent_to(u)) >= 2 for u in USERS), timeout=30)
    await asyncio.sleep(0.5)
    for user in USERS:
        got = fake.sent_to(user)
        assert len(got) == 2, [body_text(b) for b in got]  # nothing twice
        assert "помощник магазина" in body_text(got[0]) and got[1]["type"] == "interactive"  # in order
    assert fake.state.refused.count(130429) == 9 and fake.state.refused.count(131056) == 2
    rows = await _outbox(wa)
    assert len(rows) == 12 and all(status == "sent" and count == 1 for status, count in rows)


async def test_an_undeliverable_number_fails_once_without_a_retry_storm(wa: WA) -> None:
    fake = wa.fake
    fake.fail(131026, times=100, to=USERS[0])
    await wa.post(fake.text_message(USERS[0], "/start"))

    async def failed() -> bool:
        return [s for s, _ in await _outbox(wa)] == ["failed", "failed"]

    for _ in range(200):
        if await failed():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    assert await failed()
    assert fake.state.refused.count(131026) == 2  # each of the two replies tried once: permanent, never retried
    async with wa.app.db.read() as session:
        error = await session.scalar(select(Message.error).where(Message.status == "failed"))
    assert error is not None and "131026" in error


async def test_a_rejected_token_marks_the_account_broken_and_sends_wait(wa: WA) -> None:
    fake = wa.fake
    fake.token = "EAArotated-token-the-old-one-no-longer-works"  # noqa: S105
    await wa.post(fake.text_message(USERS[1], "/start"))  # webhooks are signed with the app secret: still come in

    async def broken() -> bool:
        async with wa.app.db.read() as session:
            account = await session.get(ChannelAccount, wa.account)
            return bool(account is not None and account.config.get("broken"))

    for _ in range(200):
        if await broken() and all(status == "pending" for status, _ in await _outbox(wa)):
            break
        await asyncio.sleep(0.05)
    assert await broken()
    rows = await _outbox(wa)
    assert rows and all(status == "pending" for status, _ in rows)  # waiting, not failed, not lost
    async with wa.app.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Message).where(Message.status == "failed")) == 0
    from otklik.platform.channel_admin import list_accounts

    [view] = [a for a in await list_accounts(wa.app) if a.kind == "whatsapp"]
    assert "token rejected" in view.detail and view.manage == f"/admin/whatsapp/{wa.account}/templates"
    assert fake.token not in view.secret and view.secret.startswith("EAAf")


async def test_the_spam_limit_pauses_marketing_and_keeps_the_message(wa: WA) -> None:
    fake = wa.fake
    fake.fail(131048, times=1)
    await wa.post(fake.text_message(USERS[2], "/start"))

    async def paused() -> str | None:
        async with wa.app.db.read() as session:
            account = await session.get(ChannelAccount, wa.account)
            return account.config.get("marketing_paused_until") if account is not None else None

    for _ in range(200):
        if await paused():
            break
        await asyncio.sleep(0.05)
    assert await paused()
    assert ("pending", 0) in await _outbox(wa)  # the refused reply waits an hour; it is not dropped


def test_every_documented_code_is_classified() -> None:
    def of(code: int, status: int = 400) -> object:
        return graph.classify(graph.GraphError(status, code, "x"))

    for code in (130429, 131056, 80007, 4):
        assert of(code).retry_after, code  # type: ignore[attr-defined]
    assert of(131047).held  # type: ignore[attr-defined]
    for code in (131026, 131049, 131050, 130472):
        assert of(code).permanent and not of(code).retry_after, code  # type: ignore[attr-defined]
    assert isinstance(of(131048), graph.SpamLimited) and of(131048).retry_after  # type: ignore[attr-defined]
    assert isinstance(of(190, 401), graph.TokenRejected) and not of(190, 401).permanent  # type: ignore[attr-defined]
    transient = of(131000, 500)
    assert not transient.permanent and transient.retry_after is None  # type: ignore[attr-defined]
