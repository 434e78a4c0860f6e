"""The Settings page's "connect" forms are declared by the channel kinds (`ChannelKind.form`): a kind added
in a test gets its form on the page, in its order, and its own route — nothing in the platform names it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from otklik.adapters.db.models import ChannelAccount
from otklik.bootstrap import Otklik
from otklik.core.errors import InvalidInput
from otklik.platform.channel_accounts import add_account
from otklik.platform.plugins import ChannelKind, Connected, ConnectForm
from otklik.platform.users import Role, create_user
from otklik.registry import CHANNEL_KINDS
from otklik.web.app import create_app
from tests.conftest import make_settings
from tests.fixtures.admin import PASSWORD, Admin, sign_in


async def connect_smsbox(otklik: Any, fields: Mapping[str, Any], actor: str, language: str) -> Connected:
    key, name = str(fields.get("key") or ""), str(fields.get("name") or "")
    if not key.startswith("sms-"):
        raise InvalidInput("this is not an SMS box key; it looks like sms-…")
    account_id = await add_account(
        otklik.db, otklik.vault, kind="smsbox", name=name or "smsbox", pack="care-ru", secret=key, config={}
    )
    return Connected(json={"id": account_id, "by": actor, "lang": language}, redirect={"notice": "sms_added"})


SMSBOX = ChannelKind(
    kind="smsbox",
    label="SMS box",
    form=ConnectForm(
        "admin/connect_smsbox.html",
        "tests.channels.test_connect_form:connect_smsbox",
        order=25,  # between Wildberries (20) and the API channel (30)
        keep=(("name", 8),),
        notices=(("sms_added", "settings.saved"),),
    ),
    templates="tests.channels:smsbox",
)


async def _owner(otklik: Otklik) -> Admin:
    await create_user(otklik.db, "owner", Role.OWNER, password=PASSWORD)
    return await sign_in(create_app(otklik, worker=False, manage_lifecycle=False), "owner")


@pytest.fixture
async def plugged(tmp_path: Path, db_url: str) -> AsyncIterator[Otklik]:
    app = Otklik.build(make_settings(tmp_path, db_url), channel_kinds=(*CHANNEL_KINDS, SMSBOX))
    await app.start()
    try:
        yield app
    finally:
        await app.close()


async def test_a_declared_form_is_on_the_page_in_its_order_and_connects(plugged: Otklik) -> None:
    admin = await _owner(plugged)
    page = (await admin.http.get("/admin/settings")).text
    order = [page.index(f'id="{form}"') for form in ("add-bot", "add-wb", "add-smsbox", "add-webhook")]
    assert order == sorted(order)

    bad = await admin.post("/admin/settings/accounts/smsbox", {"key": "sms", "name": "a-long-name"})
    assert bad.status_code == 422 and "not an SMS box key" in bad.text
    assert 'value="a-long-n" data-testid="smsbox-name"' in bad.text  # `keep`, capped; never the key
    assert 'value="a-long-n"' not in bad.text.split('id="add-smsbox"')[0]  # only into its own form

    done = await admin.post("/admin/settings/accounts/smsbox", {"key": "sms-1", "name": "box"})
    assert done.status_code == 303 and done.headers["location"] == "/admin/settings?notice=sms_added"
    shown = await admin.http.get(done.headers["location"])
    assert 'data-testid="notice"' in shown.text and "<td>box" in shown.text and "sms-1" not in shown.text

    as_json = await admin.post_json("/admin/settings/accounts/smsbox", {"key": "sms-2", "name": "box2"})
    assert as_json.status_code == 201 and as_json.json()["by"] == "user:owner"
    async with plugged.db.read() as session:
        names = (await session.execute(select(ChannelAccount.name).where(ChannelAccount.kind == "smsbox"))).scalars()
        assert sorted(names) == ["box", "box2"]


async def test_kinds_without_a_form_have_no_route(otklik: Otklik) -> None:
    admin = await _owner(otklik)
    assert 'id="add-smsbox"' not in (await admin.http.get("/admin/settings")).text
    for kind in ("smsbox", "console", "webchat"):
        response = await admin.post(f"/admin/settings/accounts/{kind}", {"key": "sms-1"})
        assert response.status_code == 404, kind
