"""The tiny example capability, plugged in the way `otklik/registry.py` lists the real ones: its own
migration creates its table, its action runs in a flow, its admin page is mounted behind the login
guard with a menu entry, its job runs under the worker's supervisor — nothing outside its folder changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect, select

from otklik.adapters.db.models import Message
from otklik.bootstrap import Otklik
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
    operator = await sign_in(web, "operator")
    assert (await operator.http.get("/admin/example/notes")).status_code == 403
    assert 'data-nav="/admin/example/notes"' not in (await operator.http.get("/admin")).text
