"""Demo data on SQLite and PostgreSQL: seeded on the server's first start on an empty demo install (never
by CLI starts, never twice, never into an install with data), shown on the admin pages, and removed with
one owner-only, confirmed, audited click that deletes exactly the demo rows and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import (
    Base,
    ChannelAccount,
    Contact,
    ContactIdentity,
    Conversation,
    EventLog,
    Message,
    Setting,
)
from otklik.bootstrap import Otklik
from otklik.capabilities.care.models import CareIncident, WBFeedback
from otklik.capabilities.cashback.models import CashbackCampaign, CashbackClaim
from otklik.clock import utcnow
from otklik.demo_data import DEMO_KEY, removal_order, seed_demo_data
from otklik.platform.users import Role, create_user, set_password
from tests.conftest import make_settings
from tests.fixtures.admin import PASSWORD, Admin

SEEDED = (WBFeedback, CareIncident, CashbackCampaign, CashbackClaim, Contact, Conversation, Message)


async def count(otklik: Otklik, model: type[Base]) -> int:
    async with otklik.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def counts(otklik: Otklik) -> dict[str, int]:
    return {model.__tablename__: await count(otklik, model) for model in SEEDED}


def build(tmp_path: Path, db_url: str, **overrides: object) -> Otklik:
    return Otklik.build(make_settings(tmp_path, db_url, demo=True, **overrides))


@pytest.fixture
async def otklik(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    """The server's first start on an empty demo install (as `otklik serve` does it)."""
    app = build(tmp_path, db_url)
    await app.start(demo_owner=True)
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
async def users(otklik: Otklik) -> dict[Role, str]:
    """The demo owner (its password reset for the test) plus one user of every other role."""
    await set_password(otklik.db, "owner", PASSWORD)
    for role in Role:
        if role != Role.OWNER:
            await create_user(otklik.db, role.value, role, password=PASSWORD, language="en")
    return {role: role.value for role in Role}


async def test_the_first_server_start_seeds_demo_data_for_every_area(otklik: Otklik) -> None:
    seeded = await counts(otklik)
    assert all(n > 0 for n in seeded.values()), seeded
    async with otklik.db.read() as session:
        states = set((await session.execute(select(CashbackClaim.state))).scalars())
        categories = set((await session.execute(select(WBFeedback.category))).scalars())
        demo_account = (
            await session.execute(select(ChannelAccount).where(ChannelAccount.kind == "wildberries"))
        ).scalar_one()
        campaign_status = (await session.execute(select(CashbackCampaign.status))).scalar_one()
        recorded = (await session.get(Setting, DEMO_KEY)).value["rows"]  # type: ignore[union-attr]
    assert {"moderation", "approved", "rejected", "paid"} <= states  # several states and a payout
    assert len(categories - {None}) >= 4
    assert demo_account.secret is None and demo_account.config == {"demo": True}  # the sync job skips it
    assert campaign_status != "active"  # never offered to a real buyer
    assert recorded["cashback_claims"] and recorded["wb_feedbacks"] and recorded["care_incidents"]


async def test_a_second_start_does_not_seed_again(tmp_path: Path, db_url: str, otklik: Otklik) -> None:
    before = await counts(otklik)
    again = build(tmp_path, db_url)
    await again.start(demo_owner=True)
    try:
        assert await counts(again) == before
    finally:
        await again.close()


async def test_cli_starts_never_seed_demo_data(tmp_path: Path, db_url: str) -> None:
    cli = build(tmp_path, db_url)
    await cli.start()  # what every `otklik …` command does
    try:
        assert set((await counts(cli)).values()) == {0}
        async with cli.db.read() as session:
            assert await session.get(Setting, DEMO_KEY) is None  # the server's first start still seeds
    finally:
        await cli.close()


async def test_an_install_with_real_data_gets_no_demo_data(tmp_path: Path, db_url: str) -> None:
    app = build(tmp_path, db_url)
    await app.start()
    try:
        now = utcnow()
        async with app.db.write() as session:
            session.add(
                CashbackCampaign(name="real", reward_kopecks=100, starts_at=now, created_at=now, updated_at=now)
            )
        seeded = await seed_demo_data(
            app.db, app.vault, pack="care-ru", chat_account_id=1, capabilities=app.capabilities
        )
        assert seeded is None
        await app.start(demo_owner=True)
        assert await count(app, CashbackCampaign) == 1 and await count(app, WBFeedback) == 0
    finally:
        await app.close()


async def test_the_admin_pages_show_the_demo_rows(as_role) -> None:  # type: ignore[no-untyped-def]
    owner: Admin = await as_role(Role.OWNER)
    for path, marker in (
        ("/admin/care/reviews", "demo-wildberries"),
        ("/admin/care/incidents", "wrong_item"),
        ("/admin/campaigns", "Демо"),
        ("/admin/claims", "Демо"),
        ("/admin/payouts", "Демо"),
    ):
        page = await owner.http.get(path)
        assert page.status_code == 200 and marker in page.text, path


async def test_remove_demo_data_deletes_only_the_demo_rows(as_role, otklik: Otklik) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    async with otklik.db.write() as session:  # real rows made after the seeding, next to the demo ones
        account = ChannelAccount(kind="wildberries", name="wildberries", pack="care-ru", config={}, created_at=now)
        contact = Contact(display_name="Real buyer", created_at=now)
        session.add_all([account, contact])
        await session.flush()
        identity = ContactIdentity(contact_id=contact.id, channel_account_id=1, external_id="real", created_at=now)
        session.add(identity)
        await session.flush()
        conversation = Conversation(
            contact_id=contact.id, identity_id=identity.id, channel_account_id=1, created_at=now, updated_at=now
        )
        session.add(conversation)
        await session.flush()
        session.add_all(
            [
                Message(
                    conversation_id=conversation.id,
                    direction="in",
                    author="buyer",
                    kind="text",
                    text="hi",
                    status="received",
                    created_at=now,
                ),  # fmt: skip
                CareIncident(
                    conversation_id=conversation.id,
                    case_key="real",
                    channel_account_id=1,
                    category="other",
                    outcome="handed_off",
                    created_at=now,
                    updated_at=now,
                ),  # fmt: skip
                WBFeedback(
                    channel_account_id=account.id,
                    feedback_id="real-1",
                    nm_id=1,
                    created_date=now,
                    imported_at=now,
                    updated_at=now,
                ),  # fmt: skip
                CashbackCampaign(name="real", reward_kopecks=100, starts_at=now, created_at=now, updated_at=now),
            ]
        )
    seeded = await counts(otklik)

    admin: Admin = await as_role(Role.ADMIN)
    assert 'data-testid="demo"' not in (await admin.http.get("/admin")).text  # owners only
    refused = await admin.post("/admin/demo/remove", {"confirm": "yes"})
    assert refused.status_code == 403 and await counts(otklik) == seeded

    owner: Admin = await as_role(Role.OWNER)
    home = await owner.http.get("/admin")
    assert 'data-testid="demo-remove"' in home.text
    unconfirmed = await owner.post("/admin/demo/remove", {})
    assert unconfirmed.status_code == 422 and await counts(otklik) == seeded
    no_csrf = await owner.http.post("/admin/demo/remove", data={"confirm": "yes"})
    assert no_csrf.status_code == 403 and await counts(otklik) == seeded

    removed = await owner.post("/admin/demo/remove", {"confirm": "yes"}, follow_redirects=True)
    assert removed.status_code == 200 and 'data-testid="demo-removed"' in removed.text
    assert 'data-testid="demo-remove"' not in removed.text
    assert await counts(otklik) == {
        "wb_feedbacks": 1,
        "care_incidents": 1,
        "cashback_campaigns": 1,
        "cashback_claims": 0,
        "contacts": 1,
        "conversations": 1,
        "messages": 1,
    }
    async with otklik.db.read() as session:
        names = set((await session.execute(select(ChannelAccount.name))).scalars())
        assert await session.scalar(select(WBFeedback.feedback_id)) == "real-1"
        assert await session.scalar(select(CareIncident.case_key)) == "real"
        assert await session.scalar(select(Contact.display_name)) == "Real buyer"
        entry = (await session.execute(select(EventLog).where(EventLog.kind == "demo.remove"))).scalar_one()
        state = (await session.get(Setting, DEMO_KEY)).value  # type: ignore[union-attr]
    assert names == {"webchat", "wildberries"}  # the demo WB account went, the real one stayed
    assert entry.actor == "user:owner" and entry.data["deleted"]["cashback_claims"] == seeded["cashback_claims"]
    assert state["removed_at"] and state["rows"] == {}
    assert set(removal_order(otklik.capabilities)) >= set(entry.data["deleted"])

    twice = await owner.post("/admin/demo/remove", {"confirm": "yes"})
    assert twice.status_code == 303 and await count(otklik, WBFeedback) == 1
