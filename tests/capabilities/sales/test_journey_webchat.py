"""The sales-es pack sells on the web chat: a list question, a specific price, out of stock → a similar
product in stock, the cart by text and buttons, bad quantities, the summary, a stale summary → a new one,
"Confirmar" twice → one order, the order's status. SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, update

from otklik.bootstrap import Otklik
from otklik.capabilities.sales import fulfil, orders
from otklik.capabilities.sales.importer import import_catalog
from otklik.capabilities.sales.models import order_history, order_lines, products
from otklik.capabilities.sales.models import orders as order_table
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx
from otklik.web.app import create_app
from tests.capabilities.care.conftest import Chat
from tests.capabilities.sales.shop_catalog import rows
from tests.conftest import make_settings


@pytest.fixture
async def shop(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Otklik, httpx.AsyncClient]]:
    monkeypatch.setattr(fulfil, "EVERY_SECONDS", 3600.0)  # the test runs the order step itself, when it wants
    app = Otklik.build(make_settings(tmp_path, db_url, default_pack="sales-es"))
    await app.start()
    report = await import_catalog(app.db, rows())
    assert report.applied and report.added == len(rows())
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            yield app, http
    finally:
        await app.close()


async def _open(http: httpx.AsyncClient) -> Chat:
    response = await http.post("/api/webchat/sessions", json={"language": "es"})
    assert response.status_code == 201, response.text
    return Chat(http, str(response.json()["session_id"]))


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {b["title"]: b["payload"] for b in message.get("buttons") or []}


async def test_the_whole_sale(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    chat = await _open(http)

    await chat.send(text="¿qué cámaras Hikvision tienen?")
    *_hello, listing = await chat.replies(3)

    text = listing["text"]
    assert "Encontré 6 productos en stock (página 1 de 2)" in text
    assert "DS-2CD1143G2-I" in text and "$ 61.500,00 (IVA incluido) · stock: 12 u." in text
    assert "DS-2CD1043G2-I" in text.split("Sin stock por ahora:")[1]  # out of stock: named, not offered
    assert "Dahua" not in text and "IPC-" not in text
    assert "Ver más" in buttons(listing) and "🛒 DS-2CD1043G2-I" not in buttons(listing)

    await chat.send(button="sales:more")
    (more,) = await chat.replies(1)
    assert "página 2 de 2" in more["text"] and "Ver más" not in buttons(more)

    await chat.send(text="¿qué NVR de 16 canales hay?")
    (nvr,) = await chat.replies(1)
    assert "NVR4216-4KS2" in nvr["text"] and "NVR5216-16P-4KS2" in nvr["text"]
    assert "DS-7608NI-Q1" not in nvr["text"] and "DS-7616NI-Q2" in nvr["text"].split("Sin stock")[1]

    await chat.send(text="cuánto sale la ds2cd1143g2")  # no dashes
    (card,) = await chat.replies(1)
    assert card["text"].startswith("Cámara IP domo 4MP 3.6mm — DS-2CD1143G2-I")
    assert "Precio: $ 61.500,00 (IVA incluido)" in card["text"] and "Stock: stock: 12 u." in card["text"]

    await chat.send(text="precio de la DS-2CD1043G2-I")  # out of stock
    (gone,) = await chat.replies(1)
    assert "Ahora no tiene stock" in gone["text"]
    assert "DS-2CD1143G2-I" in gone["text"] and "lente 3.6 mm en lugar de 2.8 mm" in gone["text"]
    assert "misma resolución" in gone["text"]
    assert all("DS-2CD1043G2-I" not in p for p in buttons(gone).values())

    await chat.send(text="quiero 3 de la DS-2CD1143G2 y 2 discos de 1 TB")
    replies = await chat.replies(3)
    assert "Agregué 3 × Cámara IP domo 4MP 3.6mm (DS-2CD1143G2-I)" in replies[0]["text"]
    assert "Agregué 2 × Disco rígido 1TB WD Purple (WD10PURZ)" in replies[1]["text"]
    cart = replies[2]["text"]
    assert "$ 184.500,00" in cart and "$ 128.000,00" in cart and "Total: $ 312.500,00" in cart

    await chat.send(text="quiero 50 de la DS-2CD1143G2")
    (beyond,) = await chat.replies(1)
    assert "hay 12 unidades disponibles y ya tenés 3 en el carrito" in beyond["text"]
    assert buttons(beyond) == {"Agregar 9": f"sales:add:{await _id(app, 'DS-2CD1143G2-I')}:9"}

    await chat.send(button=buttons(listing)["🛒 DS-2CD1023G2-I"])  # a button of the first list
    added = await chat.replies(2)
    assert "Agregué 1 × Cámara IP bullet 2MP 2.8mm" in added[0]["text"]

    await chat.send(text="sacá la DS-2CD1023G2")
    removed = await chat.replies(2)
    assert "Saqué Cámara IP bullet 2MP 2.8mm" in removed[0]["text"]

    await chat.send(text="pasame el resumen")
    (summary,) = await chat.replies(1)
    s = summary["text"]
    assert "DS-2CD1143G2-I — Cámara IP domo 4MP 3.6mm\n  3 × $ 61.500,00 = $ 184.500,00" in s
    assert "Subtotal sin IVA: $ 258.264,46" in s and "IVA 21 %: $ 54.235,54" in s
    assert "Total: $ 312.500,00 (ARS)" in s and "Precios válidos hasta" in s
    confirm = buttons(summary)["✅ Confirmar"]

    async with app.db.write() as session:  # the seller changes a price after the summary
        await session.execute(update(products).where(products.c.sku == "WD10PURZ")
                              .values(price=66000, updated_at=utcnow()))  # fmt: skip
    await chat.send(button=confirm)
    stale = await chat.replies(2)
    assert "el precio de Disco rígido 1TB WD Purple (WD10PURZ) pasó de $ 64.000,00 a $ 66.000,00" in stale[0]["text"]
    assert "Total: $ 316.500,00" in stale[1]["text"]
    assert await _orders(app) == 0  # the old price was never confirmed
    fresh = buttons(stale[1])["✅ Confirmar"]
    assert fresh != confirm

    await chat.send(button=fresh)
    need, ask = await chat.replies(2)  # the pre-invoice data, asked once
    assert "necesito unos datos" in need["text"] and "razón social" in ask["text"]
    assert await _orders(app) == 0
    await chat.send(text="Seguridad Norte SRL")
    assert "CUIT" in (await chat.texts(1))[0]
    await chat.send(text="30-71234567-2")  # a wrong check digit: asked at the end, again
    await chat.replies(1)  # IVA question
    await chat.send(text="Responsable Inscripto")
    await chat.replies(1)  # delivery question
    await chat.send(text="Retiro en el local")
    bad, again_cuit = await chat.replies(2)
    assert "no es válido" in bad["text"] and "CUIT" in again_cuit["text"]
    await chat.send(text="30 71234567 1")
    await chat.replies(1)
    await chat.send(text="Responsable Inscripto")
    await chat.replies(1)
    await chat.send(text="Retiro en el local")
    (done,) = await chat.replies(1)
    assert "Tu pedido PV-000001 quedó confirmado por $ 316.500,00" in done["text"]
    await chat.send(button=fresh)  # a double tap
    (again,) = await chat.replies(1)
    assert "PV-000001 ya está confirmado" in again["text"] and "No hice otro" in again["text"]
    assert await _orders(app) == 1

    assert await fulfil.process(app.ctx) >= 1  # the worker's step: the pre-invoice reaches the chat
    (pre,) = await chat.replies(1)
    (attachment,) = pre["attachments"]
    pdf = await http.get(f"/api/webchat/sessions/{chat.sid}/media/{attachment['media_id']}")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "PREFACTURA PV-000001" in text and "Seguridad Norte SRL" in text and "30-71234567-1" in text
    assert "$ 316.500,00" in text and "$ 261.570,25" in text and "$ 54.929,75" in text
    assert "3 $ 61.500,00 $ 184.500,00" in text

    async with app.db.read() as session:
        order = await orders.get_by_number(as_tx(session), "PV-000001")
        assert order is not None and order.status == "pre_invoiced" and str(order.total) == "316500.00"
        assert order.customer == {
            "name": "Seguridad Norte SRL",
            "cuit": "30-71234567-1",
            "iva": "Responsable Inscripto",
            "delivery": "pickup",
            "address": "",
        }
        lines = (await session.execute(select(order_lines.c.sku, order_lines.c.quantity, order_lines.c.unit_price)
                                       .order_by(order_lines.c.id))).all()  # fmt: skip
        assert [(a, b, str(c)) for a, b, c in lines] == [("DS-2CD1143G2-I", 3, "61500.00"), ("WD10PURZ", 2, "66000.00")]
        stock = await session.scalar(select(products.c.stock).where(products.c.sku == "DS-2CD1143G2-I"))
        assert stock == 9  # reserved
        history = (await session.execute(select(order_history.c.to_status))).scalars().all()
        assert history == ["confirmed", "pre_invoiced"]

    await chat.send(text="¿Recibieron mi pago?")
    (status,) = await chat.replies(1)
    assert "PV-000001" in status["text"] and "todavía no registramos el pago" in status["text"]
    async with app.db.write() as session:
        await orders.set_status(as_tx(session), order.id, "paid", "test", utcnow())
    await chat.send(text="¿cuándo despachan?")
    (dispatch,) = await chat.replies(1)
    assert "pago acreditado" in dispatch["text"] and "preparación" in dispatch["text"]


async def _id(app: Otklik, sku: str) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(products.c.id).where(products.c.sku == sku)) or 0)


async def _orders(app: Otklik) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(order_table)) or 0)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nlu-cache")


async def test_with_the_offline_classifier(tmp_path: Path, model_cache: Path) -> None:
    """The pack's own classifier (trained on the pack's examples, not on these sentences) sends catalog and
    cart messages to the shop."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'nlu.db'}"
    app = Otklik.build(make_settings(tmp_path, url, default_pack="sales-es", nlu="auto", cache_path=model_cache))
    await app.start()
    await import_catalog(app.db, rows())
    app.start_worker()
    web = create_app(app, worker=False, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://chat") as http:
            chat = await _open(http)
            await chat.send(text="buenas, qué domos dahua manejan?")
            assert "IPC-HDW1431T1-S4" in (await chat.texts(3))[-1]
            other = await _open(http)
            await other.send(text="abrime el carrito así lo reviso")
            assert "Tu carrito está vacío" in (await other.texts(3))[-1]
    finally:
        await app.close()
