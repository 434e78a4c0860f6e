"""Bad input in the conversation (quantities 0, negative, fractions, "un millón", unknown and ambiguous
products, forged buttons), the cart's expiry notice, and order numbers under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.bootstrap import Otklik
from otklik.capabilities.sales import jobs, orders
from otklik.capabilities.sales.importer import import_catalog
from otklik.capabilities.sales.models import cart_lines, carts
from otklik.capabilities.sales.talk import read
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx
from otklik.platform.plugins import folder
from otklik.registry import CAPABILITIES
from otklik.web.app import create_app
from tests.capabilities.sales.shop_catalog import rows
from tests.capabilities.sales.test_journey_webchat import _open, buttons
from tests.conftest import make_settings


@pytest.fixture
async def shop(tmp_path: Path, db_url: str) -> AsyncIterator[tuple[Otklik, httpx.AsyncClient]]:
    app = Otklik.build(make_settings(tmp_path, db_url, default_pack="sales-es"))
    await app.start()
    await import_catalog(app.db, rows())
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield app, http
    finally:
        await app.close()


async def _lines(app: Otklik) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(cart_lines)) or 0)


async def test_bad_quantities_and_products(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    chat = await _open(http)
    await chat.send(text="quiero 0 de la DS-2CD1143G2-I")
    *_hello, zero = await chat.replies(3)
    assert "Con 0 unidades no agrego nada" in zero["text"]
    await chat.send(text="quiero -3 de la DS-2CD1143G2-I")
    assert "No puedo agregar -3 unidades" in (await chat.texts(1))[0]
    await chat.send(text="quiero 1,5 de la DS-2CD1143G2-I")
    assert "unidades enteras" in (await chat.texts(1))[0]
    await chat.send(text="quiero un millón de la DS-2CD1143G2-I")
    (huge,) = await chat.replies(1)
    assert "hay 12 unidades disponibles: no llego a un millón. ¿Agrego 12?" in huge["text"]
    assert list(buttons(huge)) == ["Agregar 12"]
    assert await _lines(app) == 0  # nothing was added by any of them
    await chat.send(text="quiero 2 de la XZ-99999-QQ")
    assert "No encontré «xz-99999-qq» en el catálogo" in (await chat.texts(1))[0]
    await chat.send(text="quiero 2 discos")
    (which,) = await chat.replies(1)
    assert which["text"].startswith("¿Cuál de estos querés")
    assert set(buttons(which)) == {"WD10PURZ", "ST2000VX015"}  # the out-of-stock one is listed, not offered
    await chat.send(button=buttons(which)["ST2000VX015"])
    assert "Agregué 2 × Disco rígido 2TB SkyHawk" in (await chat.replies(2))[0]["text"]
    for forged in ("sales:add:999999:1", "sales:add:1:-5", "sales:ok:1:1:x", "sales:zzz", "sales:add:" + "9" * 40):
        await chat.send(button=forged)
        (answer,) = await chat.replies(1)
        assert "$" not in answer["text"] or "Ese producto" in answer["text"], (forged, answer["text"])
    assert await _lines(app) == 1


def test_reading_quantities() -> None:
    reading = read("quiero 3 de la DS-2CD1043 y 2 discos de 1 TB")
    assert [(i.quantity, i.text) for i in reading.items] == [(3, "ds-2cd1043"), (2, "discos de 1 tb")]
    assert read("¿qué NVR de 16 canales hay?").kind == "ask"  # 16 is channels, not a quantity
    assert read("dame 2 nvr 8 canales").items[0].quantity == 2
    assert [i.problem for i in read("quiero un millón de cámaras").items] == ["huge"]
    assert read("cambiá la DS-2CD1143 a 5").number == 5
    assert read("¿Recibieron mi pago?").kind == "status"
    assert read("x" * 5000).kind == "ask"


async def test_an_old_cart_expires_with_a_notice(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    chat = await _open(http)
    await chat.send(text="quiero 2 de la DS-2CD1143G2-I")
    await chat.replies(4)
    assert await _lines(app) == 1
    async with app.db.write() as session:
        await session.execute(update(carts).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert await jobs.expire_due(app.ctx, utcnow()) == 1
    assert await jobs.expire_due(app.ctx, utcnow()) == 0  # one notice only
    (notice,) = await chat.replies(1)
    assert "Tu carrito venció" in notice["text"]
    assert await _lines(app) == 0


async def test_order_numbers_are_unique_under_concurrency(db_url: str) -> None:
    db = Database(db_url)
    try:
        await upgrade(db, locations=[folder(c.migrations) for c in CAPABILITIES if c.migrations])

        async def take() -> str:
            async with db.write() as session:
                return await orders.next_number(as_tx(session))

        numbers = await asyncio.gather(*(take() for _ in range(20)))
        assert sorted(numbers) == [f"PV-{n:06d}" for n in range(1, 21)]
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30-71234567-1", "30-71234567-1"),
        ("30712345671", "30-71234567-1"),
        ("20.12345678.6", "20-12345678-6"),
        ("30-71234567-2", None),  # check digit
        ("99-71234567-1", None),  # no such type
        ("3071234567", None),  # 10 digits
        ("30-71234567-1; DROP TABLE contacts", None),
        ("", None),
        ("1" * 5000, None),
    ],
)
def test_cuit_check_digit(text: str, expected: str | None) -> None:
    from otklik.capabilities.sales.customer import cuit

    assert cuit(text) == expected
