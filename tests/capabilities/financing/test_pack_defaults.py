"""A default rates table per pack: the chat of a pack's conversations uses it, else the install's default
table; the API's `table` parameter is unchanged (no table: the install default). Chosen in the financing
admin page (audited); bad input saves nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from otklik.adapters.db.models import EventLog
from otklik.bootstrap import Otklik
from otklik.capabilities.financing import service
from otklik.capabilities.financing.models import pack_defaults
from otklik.core.errors import InvalidInput, NotFound
from otklik.platform.apitokens import create_token
from otklik.platform.users import Role
from otklik.web.app import create_app
from tests.capabilities.care.conftest import Chat
from tests.capabilities.financing.tables import ISSUE_YAML
from tests.conftest import make_settings

TARJETA = ISSUE_YAML.replace("tna: 48", "tna: 60")  # 150 000 in 6: other figures than the issue's table
PACKS = ("care-ru", "sales-es", "echo")


async def _load(app: Otklik, pack: str | None) -> str | None:
    async with app.db.read() as session:
        stored = await service.load(service.session_fetch(session), pack=pack)
    return stored.name if stored else None


async def _audits(app: Otklik) -> list[tuple[str, dict[str, object]]]:
    async with app.db.read() as session:
        rows = await session.execute(
            select(EventLog.subject_id, EventLog.data)
            .where(EventLog.kind == "financing.pack_default")
            .order_by(EventLog.id)
        )
        return [(str(s), dict(d)) for s, d in rows.all()]


async def _rows(app: Otklik) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(pack_defaults)) or 0)


async def test_the_pack_default_then_the_install_default(otklik: Otklik) -> None:
    assert await _load(otklik, "sales-es") is None  # no table at all
    async with otklik.db.write() as session:
        await service.save(session, "visa", ISSUE_YAML, actor="test")  # the first: the install default
        await service.save(session, "tarjeta", TARJETA, actor="test")
    assert await _load(otklik, "sales-es") == "visa" and await _load(otklik, None) == "visa"

    async with otklik.db.write() as session:
        assert await service.set_pack_default(session, "sales-es", "tarjeta", actor="owner", packs=PACKS)
    assert await _load(otklik, "sales-es") == "tarjeta"
    assert await _load(otklik, "care-ru") == "visa" and await _load(otklik, None) == "visa"

    async with otklik.db.write() as session:  # the install default moves: the pack keeps its own table
        await service.set_default(session, "tarjeta", actor="owner")
        await service.set_default(session, "visa", actor="owner")
        assert not await service.set_pack_default(session, "sales-es", "tarjeta", actor="owner", packs=PACKS)
        assert await service.set_pack_default(session, "sales-es", "visa", actor="owner", packs=PACKS)  # upsert
    assert await _load(otklik, "sales-es") == "visa" and await _rows(otklik) == 1

    async with otklik.db.write() as session:
        assert await service.set_pack_default(session, "sales-es", None, actor="owner", packs=PACKS)
        assert not await service.set_pack_default(session, "sales-es", "", actor="owner", packs=PACKS)
        assert await service.pack_default_names(session) == {}
    assert await _rows(otklik) == 0
    assert await _audits(otklik) == [
        ("sales-es", {"table": "tarjeta", "was": None}),
        ("sales-es", {"table": "visa", "was": "tarjeta"}),
        ("sales-es", {"table": None, "was": "visa"}),
    ]


@pytest.mark.parametrize(
    ("pack", "table", "error"),
    [
        ("nope", "visa", InvalidInput),
        ("", "visa", InvalidInput),
        ("x" * 5000, "visa", InvalidInput),
        ("../care-ru", "visa", InvalidInput),
        ("sales-es", "nope", NotFound),
        ("sales-es", "Visa Card", InvalidInput),
    ],
)
async def test_bad_input_saves_nothing(otklik: Otklik, pack: str, table: str, error: type[Exception]) -> None:
    async with otklik.db.write() as session:
        await service.save(session, "visa", ISSUE_YAML, actor="test")
    with pytest.raises(error):
        async with otklik.db.write() as session:
            await service.set_pack_default(session, pack, table, actor="owner", packs=PACKS)
    assert await _rows(otklik) == 0 and await _audits(otklik) == []


@pytest.fixture
async def shop(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Otklik, httpx.AsyncClient]]:
    app = Otklik.build(make_settings(tmp_path, db_url, default_pack="sales-es"))
    await app.start()
    async with app.db.write() as session:
        await service.save(session, "visa", ISSUE_YAML, actor="test")
        await service.save(session, "tarjeta", TARJETA, actor="test")
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield app, http
    finally:
        await app.close()


async def _six(http: httpx.AsyncClient) -> str:
    response = await http.post("/api/webchat/sessions", json={"language": "es"})
    chat = Chat(http, str(response.json()["session_id"]))
    await chat.send(text="quiero pagar 150000 en 6 cuotas")
    return (await chat.texts(3))[-1]


async def test_the_chat_uses_its_packs_table_and_the_api_the_default(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    assert "$ 29.401,58" in await _six(http)  # the install default (visa, TNA 48)
    async with app.db.write() as session:
        await service.set_pack_default(session, "sales-es", "tarjeta", actor="owner", packs=PACKS)
    tarjeta = await _six(http)
    assert "TNA 60,00 %" in tarjeta and "$ 29.401,58" not in tarjeta

    _id, secret = await create_token(app.db, "shop", "financing", actor="test")
    body = {"amount": "150000", "installments": 6}
    api = await http.post("/api/v1/financing/simulate", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 200 and api.json()["installment"] == "29401.58" and api.json()["tna"] == "48.00"
    named = await http.post(
        "/api/v1/financing/simulate", json={**body, "table": "tarjeta"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert named.json()["tna"] == "60.00" and named.json()["installment"] in tarjeta.replace(".", "").replace(",", ".")


async def test_the_admin_form(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    page = await owner.http.get("/admin/financing")
    assert 'data-testid="pack-defaults"' not in page.text  # no table yet: nothing to choose
    await owner.post("/admin/financing", {"name": "visa", "source": ISSUE_YAML})
    await owner.post("/admin/financing", {"name": "tarjeta", "source": TARJETA})
    page = await owner.http.get("/admin/financing")
    assert all(f'data-pack="{p}"' in page.text for p in PACKS)

    saved = await owner.post("/admin/financing/packs", {"pack": "sales-es", "table": "tarjeta"})
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/financing?packs_saved=1"
    page = await owner.http.get("/admin/financing?packs_saved=1")
    assert 'data-testid="packs-saved"' in page.text and '<option value="tarjeta" selected>' in page.text
    assert await _load(otklik, "sales-es") == "tarjeta"
    (audit,) = await _audits(otklik)
    assert audit == ("sales-es", {"table": "tarjeta", "was": None})
    assert "s rates table chosen" in (await owner.http.get("/admin/audit")).text

    for form, status, shown in [
        ({"pack": "nope", "table": "visa"}, 422, "unknown pack"),
        ({"pack": "<script>alert(1)</script>", "table": "visa"}, 422, "unknown pack"),
        ({"pack": "x" * 100_000, "table": "visa"}, 422, "unknown pack"),
        ({"pack": "care-ru", "table": "nope"}, 404, "no rates table named"),
        ({"pack": "care-ru", "table": "../visa"}, 422, "the table&#39;s name"),
        ({"table": "visa"}, 422, "unknown pack"),
    ]:
        response = await owner.post("/admin/financing/packs", form)
        assert response.status_code == status, (form, response.text[:300])
        assert shown in response.text and 'data-testid="pack-errors"' in response.text
        assert "<script>alert" not in response.text
    assert await _rows(otklik) == 1 and len(await _audits(otklik)) == 1

    # a table may not take the name of the page's address
    reserved = await owner.post("/admin/financing", {"name": "packs", "source": ISSUE_YAML})
    assert reserved.status_code == 422 and "reserved" in reserved.text

    # back to the install default
    assert (await owner.post("/admin/financing/packs", {"pack": "sales-es", "table": ""})).status_code == 303
    assert await _load(otklik, "sales-es") == "visa" and await _rows(otklik) == 0


async def test_the_admin_form_needs_the_permission_and_csrf(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    async with otklik.db.write() as session:
        await service.save(session, "visa", ISSUE_YAML, actor="test")
    form = {"pack": "sales-es", "table": "visa"}
    for role in (Role.OPERATOR, Role.MODERATOR, Role.ANALYST):
        other = await as_role(role)
        assert (await other.post("/admin/financing/packs", form)).status_code == 403
    admin = await as_role(Role.ADMIN)
    forged = await admin.http.post("/admin/financing/packs", data=form)  # no csrf_token
    assert forged.status_code == 403
    anonymous = await admin.http.post("/admin/financing/packs", data={**form, "csrf_token": "forged"})
    assert anonymous.status_code == 403
    assert await _rows(otklik) == 0 and await _audits(otklik) == []
    assert (await admin.post("/admin/financing/packs", form)).status_code == 303  # an admin may
