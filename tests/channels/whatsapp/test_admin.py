"""Connecting a WhatsApp number from the Settings page and the command line (token checked with a Graph call,
secrets encrypted and masked, the webhook URL and verify token shown once), the templates page and its sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import ChannelAccount, MessageTemplate
from otklik.bootstrap import Otklik
from otklik.platform.users import Role, create_user
from otklik.testing.fake_whatsapp import DEFAULT_APP_SECRET, DEFAULT_TOKEN, FakeWhatsAppServer
from otklik.web.app import create_app
from tests.conftest import make_settings
from tests.fixtures.admin import PASSWORD, sign_in


@pytest.fixture
async def app(tmp_path: Path, db_url: str, fake: FakeWhatsAppServer) -> AsyncIterator[Otklik]:
    otklik = Otklik.build(make_settings(tmp_path, db_url, whatsapp_api_url=fake.base_url))
    await otklik.start()
    try:
        yield otklik
    finally:
        await otklik.close()


def _form(fake: FakeWhatsAppServer, **changes: str) -> dict[str, str]:
    fields = {"phone_number_id": fake.phone_number_id, "waba_id": fake.waba_id, "token": DEFAULT_TOKEN,
              "app_secret": DEFAULT_APP_SECRET, "name": "ventas", "pack": "care-ru"}  # fmt: skip
    return {**fields, **changes}


async def _accounts(app: Otklik) -> list[ChannelAccount]:
    async with app.db.read() as session:
        return list((await session.execute(select(ChannelAccount).where(ChannelAccount.kind == "whatsapp"))).scalars())


async def test_connect_from_settings_then_the_templates_page(app: Otklik, fake: FakeWhatsAppServer) -> None:
    fake.add_template("pedido_listo", "es_AR", params=2)
    fake.add_template("promo_<b>", "es", status="REJECTED", category="MARKETING")
    await create_user(app.db, "owner", Role.OWNER, password=PASSWORD)
    admin = await sign_in(create_app(app, worker=False, manage_lifecycle=False), "owner")
    page = (await admin.http.get("/admin/settings")).text
    assert 'id="add-whatsapp"' in page

    for bad, message in (
        ({"token": "EAAwrong-token-that-meta-refuses"}, "Meta rejected the access token"),
        ({"phone_number_id": "+54 9 11 5555"}, "digits only"),
        ({"app_secret": "short"}, "app secret"),
        ({"token": "x" * 5000}, "access token"),
        ({"verify_token": "<script>"}, "verify token"),
    ):
        response = await admin.post("/admin/settings/accounts/whatsapp", _form(fake, **bad))
        assert response.status_code == 422, (bad, response.status_code)
        assert message in response.text and "<script>" not in response.text.split("<form")[0]
    assert await _accounts(app) == []

    done = await admin.post("/admin/settings/accounts/whatsapp", _form(fake))
    assert done.status_code == 200, done.text
    assert f'data-testid="whatsapp-webhook">/webhooks/whatsapp/{fake.phone_number_id}<' in done.text
    [account] = await _accounts(app)
    verify = app.vault.decrypt(account.config["verify_token"])
    assert f'data-testid="whatsapp-verify-token">{verify}<' in done.text  # shown once
    assert (
        DEFAULT_APP_SECRET not in str(account.config)
        and app.vault.decrypt(account.config["app_secret"]) == DEFAULT_APP_SECRET
    )
    assert account.secret and DEFAULT_TOKEN not in account.secret
    settings = (await admin.http.get("/admin/settings")).text
    assert DEFAULT_TOKEN not in settings and DEFAULT_APP_SECRET not in settings and verify not in settings
    assert f"/admin/whatsapp/{account.id}/templates" in settings

    templates = await admin.http.get(f"/admin/whatsapp/{account.id}/templates")
    assert templates.status_code == 200
    assert 'data-template="pedido_listo"' in templates.text and "es_AR" in templates.text
    assert "promo_&lt;b&gt;" in templates.text and "promo_<b>" not in templates.text  # escaped

    fake.add_template("nuevo", "es")
    assert (await admin.http.post(f"/admin/whatsapp/{account.id}/templates/sync")).status_code == 403  # no CSRF
    synced = await admin.post(f"/admin/whatsapp/{account.id}/templates/sync")
    assert synced.status_code == 303 and synced.headers["location"].endswith("notice=synced")
    async with app.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(MessageTemplate)) == 3
    assert (await admin.http.get("/admin/whatsapp/999999/templates")).status_code == 404
    assert (await admin.http.get("/admin/whatsapp/99999999999999999999999/templates")).status_code == 422

    again = await admin.post("/admin/settings/accounts/whatsapp", _form(fake, verify_token="new-verify-token"))
    assert again.status_code == 200  # the same number again: secrets replaced, one account
    [same] = await _accounts(app)
    assert same.id == account.id and app.vault.decrypt(same.config["verify_token"]) == "new-verify-token"


async def test_an_operator_cannot_see_or_sync_templates(app: Otklik, fake: FakeWhatsAppServer) -> None:
    from otklik.channels.whatsapp.admin import connect_whatsapp

    added = await connect_whatsapp(app, phone_number_id=fake.phone_number_id, waba_id=fake.waba_id, token=DEFAULT_TOKEN,
                                   app_secret=DEFAULT_APP_SECRET, actor="test")  # fmt: skip
    await create_user(app.db, "op", Role.OPERATOR, password=PASSWORD)
    operator = await sign_in(create_app(app, worker=False, manage_lifecycle=False), "op")
    assert (await operator.http.get(f"/admin/whatsapp/{added.id}/templates")).status_code == 403
    assert (await operator.post(f"/admin/whatsapp/{added.id}/templates/sync")).status_code == 403


async def test_meta_unreachable_is_a_clear_error_and_nothing_is_stored(app: Otklik, fake: FakeWhatsAppServer) -> None:
    from otklik.channels.whatsapp.admin import connect_whatsapp
    from otklik.core.errors import Unavailable

    with pytest.raises(Unavailable, match="did not answer"):
        await connect_whatsapp(app, phone_number_id=fake.phone_number_id, waba_id=fake.waba_id, token=DEFAULT_TOKEN,
                               app_secret=DEFAULT_APP_SECRET, actor="test", api_url="http://127.0.0.1:9/v21.0")  # fmt: skip
    assert await _accounts(app) == []
