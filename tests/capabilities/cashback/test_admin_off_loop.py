# ruff: noqa: F811  (the admin fixtures are imported by name)
"""Issue 14: no blocking work in the cashback admin's async routes. The campaigns page issues a fixed number
of SQL statements however many campaigns it lists; the QR card and the payout registry (CSV, XLSX) are built
in a worker thread, never on the event loop's thread, and are still valid files. No timings asserted."""

from __future__ import annotations

import csv
import io
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import event, select

from otklik.adapters.db.models import ChannelAccount, Conversation
from otklik.bootstrap import Otklik
from otklik.capabilities.cashback import admin as cashback_admin
from otklik.capabilities.cashback import payouts
from otklik.capabilities.cashback.campaigns import usage, usage_of
from otklik.capabilities.cashback.models import CashbackClaim
from otklik.capabilities.cashback.payouts import seal
from otklik.capabilities.cashback.rules import PayoutDetails, Stage
from otklik.clock import utcnow
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.users import Role
from tests.capabilities.cashback.conftest import add_campaign
from tests.fixtures.admin import app, as_role, users  # noqa: F401 - fixtures

CARD = "4276160000000008"


async def _conversation(otklik: Otklik, sender: str) -> tuple[int, int, int]:
    """(contact, conversation, channel account) of a fresh web-chat buyer."""
    async with otklik.db.read() as session:
        account = await session.scalar(select(ChannelAccount.id).where(ChannelAccount.kind == "webchat"))
    result = await otklik.ingest(InboundEvent(int(account or 0), f"m-{sender}", sender, EventKind.TEXT, text="/start"))
    assert result.conversation_id is not None
    async with otklik.db.read() as session:
        conv = await session.get(Conversation, result.conversation_id)
    assert conv is not None
    return int(conv.contact_id), int(conv.id), int(conv.channel_account_id)


async def _claims(otklik: Otklik, campaign_id: int, buyer: tuple[int, int, int], *states: str, **values: Any) -> None:
    contact, conversation, account = buyer
    async with otklik.db.write() as session:
        for n, state in enumerate(states):
            session.add(
                CashbackClaim(
                    campaign_id=campaign_id,
                    contact_id=contact,
                    conversation_id=conversation,
                    channel_account_id=account,
                    state=state,
                    nm_id=123456789,
                    product_name="Гель",
                    amount_kopecks=15000 + 100 * n,
                    checks={},
                    reasons={},
                    matched={},
                    nudges={},
                    created_at=utcnow(),
                    updated_at=utcnow(),
                    decided_at=utcnow() if state in (Stage.APPROVED, Stage.PAID) else None,
                    **values,
                )
            )


@contextmanager
def statements(otklik: Otklik) -> Iterator[list[str]]:
    """Every SQL statement sent through the app's engines while the block runs (the session "last seen"
    touch, once a minute, is left out: it depends on the clock, not on the page)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not (statement.lstrip().upper().startswith("UPDATE") and "admin_sessions" in statement):
            seen.append(statement)

    engines = {id(e.sync_engine): e.sync_engine for e in (otklik.db.write_engine, otklik.db.read_engine)}
    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines.values():
            event.remove(engine, "before_cursor_execute", record)


def _row(html: str, campaign_id: int) -> str:
    match = re.search(rf'<tr data-campaign="{campaign_id}">(.*?)</tr>', html, re.S)
    assert match, f"campaign {campaign_id} is not listed"
    return match.group(1)


async def test_the_campaigns_page_issues_the_same_statements_for_1_and_20_campaigns(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    buyer = await _conversation(otklik, "buyer-1")
    first = await add_campaign(otklik, name="Первая")
    await _claims(otklik, first, buyer, Stage.APPROVED, Stage.PAID, Stage.MODERATION, Stage.REJECTED)
    assert (await admin.http.get("/admin/campaigns")).status_code == 200  # warm: templates, caches
    with statements(otklik) as one:
        page = await admin.http.get("/admin/campaigns")
    assert page.status_code == 200
    # 150 + 151 RUB committed by the approved and the paid claim; moderation and rejected do not count.
    assert "301 ₽" in _row(page.text, first) and "· 2" in _row(page.text, first)

    ids = [first]
    for n in range(19):
        campaign_id = await add_campaign(otklik, name=f"Кампания {n}", budget_kopecks=1_000_000 + n)
        ids.append(campaign_id)
        states = [Stage.APPROVED] * (n % 3) + [Stage.PAID] * (n % 2) + [Stage.MODERATION]
        await _claims(otklik, campaign_id, buyer, *states)
    with statements(otklik) as twenty:
        page = await admin.http.get("/admin/campaigns")
    assert page.status_code == 200
    assert all(f'data-campaign="{i}"' in page.text for i in ids)

    assert len(twenty) == len(one), "the campaigns page must not issue statements per campaign"
    assert len([s for s in twenty if "cashback_" in s]) <= 2  # the campaigns, and one aggregate of the claims
    async with otklik.db.read() as session:
        expected = {i: await usage(session, i) for i in ids}
        together = await usage_of(session, ids)
    assert together == expected  # one GROUP BY answers what the per-campaign query answered
    for campaign_id, figures in expected.items():
        assert f"· {figures.rewarded}" in _row(page.text, campaign_id)


async def test_usage_of_no_campaigns_asks_nothing(otklik: Otklik) -> None:
    with statements(otklik) as seen:
        async with otklik.db.read() as session:
            assert await usage_of(session, []) == {}
    assert not [s for s in seen if "cashback_" in s]


def _recording(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[threading.Thread]:
    """Wrap `owner.name` to record the thread each call runs on (the real function still runs)."""
    threads: list[threading.Thread] = []
    real: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return threads


async def test_the_qr_card_is_rendered_off_the_event_loop_and_cached(
    otklik: Otklik, as_role, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    loop_thread = threading.current_thread()
    rendered = _recording(monkeypatch, cashback_admin, "render_qr")
    admin = await as_role(Role.ADMIN)
    campaign_id = await add_campaign(otklik)

    png = await admin.http.get(f"/admin/campaigns/{campaign_id}/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert f'cashback-{campaign_id}-webchat.png"' in png.headers["content-disposition"]
    with Image.open(io.BytesIO(png.content)) as image:
        image.load()
        assert image.format == "PNG" and round(image.info["dpi"][0]) == 300
        assert [b.text for b in zxingcpp.read_barcodes(image)] == [f"http://admin.test/chat?start=cb_{campaign_id}"]
    assert len(rendered) == 1 and rendered[0] is not loop_thread

    again = await admin.http.get(f"/admin/campaigns/{campaign_id}/qr.png")
    assert again.content == png.content and len(rendered) == 1  # served from the cache

    svg = await admin.http.get(f"/admin/campaigns/{campaign_id}/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.content)  # noqa: S314 - our own output
    assert root.tag.endswith("svg") and root.attrib["height"].endswith("mm")
    assert len(rendered) == 2 and rendered[1] is not loop_thread

    async with otklik.db.write() as session:
        bot = ChannelAccount(
            kind="telegram", name="shop-bot", pack="care-ru", config={"username": "ShopBot"}, created_at=utcnow()
        )
        session.add(bot)
        await session.flush()
        bot_id = int(bot.id)
    card = await admin.http.get(f"/admin/campaigns/{campaign_id}/qr.png", params={"target": f"telegram-{bot_id}"})
    assert (
        card.status_code == 200
        and f'cashback-{campaign_id}-telegram-{bot_id}.png"' in card.headers["content-disposition"]
    )
    with Image.open(io.BytesIO(card.content)) as image:
        # Another link of the same campaign: its own card, not the web chat's from the cache.
        assert [b.text for b in zxingcpp.read_barcodes(image)] == [f"https://t.me/ShopBot?start=cb_{campaign_id}"]
    assert len(rendered) == 3 and all(t is not loop_thread for t in rendered)


async def test_the_payout_registry_is_built_off_the_event_loop(
    otklik: Otklik, as_role, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    loop_thread = threading.current_thread()
    xlsx_threads = _recording(monkeypatch, payouts, "registry_xlsx")
    csv_threads = _recording(monkeypatch, payouts, "registry_csv")
    unseal_threads = _recording(monkeypatch, payouts, "_unseal_rows")
    details = PayoutDetails("card", card=CARD)
    secret = seal(otklik.vault, details)
    campaign_id = await add_campaign(otklik, ends_at=utcnow() + timedelta(days=30))
    buyer = await _conversation(otklik, "buyer-2")
    await _claims(
        otklik,
        campaign_id,
        buyer,
        Stage.APPROVED,
        Stage.APPROVED,
        Stage.APPROVED,
        payout_secret=secret,
        payout_masked=details.masked(),
        payout_method="card",
    )
    moderator = await as_role(Role.MODERATOR)

    xlsx = await moderator.http.get("/admin/payouts/registry.xlsx")
    assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    assert [c.value for c in sheet[1]] == list(payouts.REGISTRY_HEADER)
    assert [c.value for c in sheet["G"]][1:] == [CARD] * 3
    assert [c.value for c in sheet["C"]][1:] == [150.0, 151.0, 152.0]
    assert len(xlsx_threads) == 1 and xlsx_threads[0] is not loop_thread

    text = await moderator.http.get("/admin/payouts/registry.csv")
    rows = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == list(payouts.REGISTRY_HEADER) and [r[6] for r in rows[1:]] == [CARD] * 3
    assert len(csv_threads) == 1 and csv_threads[0] is not loop_thread
    assert len(unseal_threads) == 2 and all(t is not loop_thread for t in unseal_threads)
