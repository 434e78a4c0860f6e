"""The tiny example capability, plugged in the way `otklik/registry.py` lists the real ones: its own
migration creates its table, its action runs in a flow, its admin page is mounted behind the login
guard with a menu entry, its job runs under the worker's supervisor — nothing outside its folder changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, inspect, select

from otklik.adapters.db.models import Conversation, EventLog, Message
from otklik.bootstrap import Otklik
from otklik.conversations.timers import QuickContext
from otklik.platform.plugins import Capability, Reaction
from otklik.platform.users import Role, create_user
from otklik.registry import CAPABILITIES
from otklik.web.app import create_app
from tests.capabilities.example import CAPABILITY
from tests.capabilities.example.models import notes
from tests.capabilities.inbox.inbox_helpers import say
from tests.conftest import make_settings
from tests.fixtures.admin import PASSWORD, sign_in

PACKS = Path(__file__).parent / "packs"


@pytest.fixture
async def plugged(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    settings = make_settings(tmp_path, db_url, packs_dirs=(PACKS,), default_pack="example")
    app = Otklik.build(settings, capabilities=(*CAPABILITIES, CAPABILITY))  # the registry's line, in a test
    await app.start(migrate=True)
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
async def without(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    settings = make_settings(tmp_path, db_url, packs_dirs=(PACKS,), default_pack="example")
    app = Otklik.build(settings)
    await app.start(migrate=True)
    try:
        yield app
    finally:
        await app.close()


async def _said(app: Otklik, text: str) -> None:
    for _ in range(200):
        async with app.db.read() as session:
            if await session.scalar(select(Message.id).where(Message.direction == "out", Message.text == text)):
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the bot never said {text!r}")


async def _tables(app: Otklik) -> set[str]:
    async with app.db.read_engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_its_migration_creates_its_table_only_when_it_is_plugged_in(plugged: Otklik) -> None:
    assert "example_notes" in await _tables(plugged)
    assert "example.note" in plugged.actions.names()


async def test_not_plugged_in_means_no_table_no_action_no_page(without: Otklik) -> None:
    assert "example_notes" not in await _tables(without)
    assert "example.note" not in without.actions.names()
    web = create_app(without, worker=False, manage_lifecycle=False)
    await create_user(without.db, "owner", Role.OWNER, password=PASSWORD)
    admin = await sign_in(web, "owner")
    assert (await admin.http.get("/admin/example/notes")).status_code == 404
    assert (await admin.http.get("/static/example/example.css")).status_code == 404


async def test_its_action_runs_in_a_flow_and_its_job_digests_the_notes(plugged: Otklik) -> None:
    plugged.start_worker()
    await say(plugged, "b1", "hello")  # the flow starts and asks
    await say(plugged, "b1", "first")
    await _said(plugged, "заметок: 1")  # the action's result moved the flow back to its question
    await say(plugged, "b1", "second")
    for _ in range(200):
        async with plugged.db.read() as session:
            rows = (await session.execute(select(notes.c.text, notes.c.digested).order_by(notes.c.id))).all()
        if len(rows) == 2 and all(r.digested for r in rows):
            break
        await asyncio.sleep(0.05)
    assert [r.text for r in rows] == ["first", "second"]
    assert all(r.digested for r in rows), "the example-digest job did not run"
    assert "example-digest" in plugged.supervisor.names()


async def test_its_admin_page_is_guarded_and_in_the_menu(plugged: Otklik) -> None:
    web = create_app(plugged, worker=False, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://admin.test") as anon:
        assert (await anon.get("/admin/example/notes")).status_code in (302, 303, 401)
    async with plugged.db.write() as session:
        from sqlalchemy import insert

        from otklik.clock import utcnow

        await session.execute(
            insert(notes).values(conversation_id=1, text="<b>hi</b>", digested=0, created_at=utcnow())
        )
    for role in (Role.OWNER, Role.OPERATOR):
        await create_user(plugged.db, role.value, role, password=PASSWORD, language="en")
    owner = await sign_in(web, "owner")
    page = await owner.http.get("/admin/example/notes")
    assert page.status_code == 200
    assert "&lt;b&gt;hi&lt;/b&gt;" in page.text and "<b>hi</b>" not in page.text  # escaped like every page
    home = (await owner.http.get("/admin")).text
    assert 'data-nav="/admin/example/notes">Notes of the example</a>' in home  # its own locale strings
    assert '<link rel="stylesheet" href="/static/example/example.css">' in page.text
    css = await owner.http.get("/static/example/example.css")  # its own static folder, served by the app
    assert css.status_code == 200 and '[data-testid="notes"]' in css.text
    assert (await owner.http.get("/static/example/../../app.py")).status_code == 404
    operator = await sign_in(web, "operator")
    assert (await operator.http.get("/admin/example/notes")).status_code == 403
    assert 'data-nav="/admin/example/notes"' not in (await operator.http.get("/admin")).text


async def _notes(app: Otklik) -> list[str]:
    async with app.db.read() as session:
        return list((await session.execute(select(notes.c.text).order_by(notes.c.id))).scalars())


async def test_its_reaction_runs_in_the_hand_off_step(plugged: Otklik) -> None:
    conversation = await say(plugged, "buyer-r", "оператор")
    assert await _notes(plugged) == ["handoff: buyer_request"]  # written by the step itself: no waiting
    async with plugged.db.read() as session:
        status = await session.scalar(select(Conversation.status).where(Conversation.id == conversation))
    assert status == "waiting_operator"


async def _broken(ctx: QuickContext, data: dict[str, Any]) -> None:
    await ctx.tx.execute(
        insert(notes),
        {"conversation_id": ctx.conversation_id, "text": "half-done", "digested": 0, "created_at": ctx.now},
    )
    raise RuntimeError("a bug in a capability")


BROKEN = (Reaction("handoff", _broken),)


async def test_a_failing_reaction_is_undone_and_the_hand_off_still_happens(tmp_path: Path, db_url: str) -> None:
    broken = Capability(name="broken", reactions=f"{__name__}:BROKEN")
    settings = make_settings(tmp_path, db_url, packs_dirs=(PACKS,), default_pack="example")
    app = Otklik.build(settings, capabilities=(*CAPABILITIES, CAPABILITY, broken))
    await app.start(migrate=True)
    try:
        conversation = await say(app, "buyer-b", "оператор")
        assert await _notes(app) == ["handoff: buyer_request"]  # the broken one's write is rolled back only
        async with app.db.read() as session:
            status = await session.scalar(select(Conversation.status).where(Conversation.id == conversation))
            handoffs = await session.scalar(
                select(func.count()).select_from(EventLog).where(EventLog.kind == "handoff")
            )
        assert (status, handoffs) == ("waiting_operator", 1)
    finally:
        await app.close()


def test_a_reaction_to_an_unknown_kernel_event_is_refused_at_build(tmp_path: Path) -> None:
    odd = Capability(name="odd", reactions=f"{__name__}:ODD")
    with pytest.raises(ValueError, match="no kernel event 'message_sent'"):
        Otklik.build(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 't.db'}"), capabilities=(odd,))


ODD = (Reaction("message_sent", _broken),)
