"""The sales-es pack sells on Telegram: the real aiogram runtime (webhook) against the fake Bot API on
loopback. A list question → products with inline buttons → add by button → the cart by text → the summary →
Confirmar → the buyer's data → the confirmation; a double tap on Confirmar makes one order. Every price shown
is the catalog row's. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from otklik.bootstrap import Otklik
from otklik.capabilities.sales import fulfil
from otklik.capabilities.sales.importer import import_catalog
from otklik.capabilities.sales.models import order_lines
from otklik.capabilities.sales.models import orders as order_table
from otklik.channels.telegram.adapter import SECRET_HEADER
from otklik.platform.channel_accounts import add_account
from otklik.testing.fake_telegram import DEFAULT_TOKEN, FakeTelegramServer
from otklik.web.app import create_app
from tests.capabilities.sales.shop_catalog import SHOP_ROWS, rows
from tests.conftest import make_settings

SECRET = "fake-webhook-secret-for-sales-tests"
CHAT = 7001
PRICE = {sku: Decimal(price) for sku, _name, _brand, _category, price, _stock, _attrs in SHOP_ROWS}


def ars(amount: Decimal) -> str:
    """How the pack writes money: $ 61.500,00."""
    whole, cents = f"{amount:.2f}".split(".")
    return f"$ {int(whole):,}".replace(",", ".") + f",{cents}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as server:
        yield server


@pytest.fixture
async def shop(
    tmp_path: Path, db_url: str, fake: FakeTelegramServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Otklik, Callable[..., Any]]]:
    monkeypatch.setattr(fulfil, "EVERY_SECONDS", 3600.0)  # the tests run the order step when they want it
    app = Otklik.build(make_settings(tmp_path, db_url, telegram_api_url=fake.base_url, default_pack="sales-es"))
    await app.start()
    report = await import_catalog(app.db, rows())
    assert report.applied and report.added == len(rows())
    account = await add_account(
        app.db,
        app.vault,
        kind="telegram",
        name="shop_bot",
        pack="sales-es",
        secret=DEFAULT_TOKEN,
        config={"username": "otklik_shop_bot", "webhook_secret": app.vault.encrypt(SECRET)},
    )
    await app.reload()
    web = create_app(app, worker=False, manage_lifecycle=False)
    app.start_worker()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:

            async def post(update: dict[str, Any]) -> None:
                response = await http.post(f"/webhooks/telegram/{account}", content=json.dumps(update).encode(),
                                           headers={"Content-Type": "application/json", SECRET_HEADER: SECRET})  # fmt: skip
                assert response.status_code == 200, response.text

            yield app, post
    finally:
        await app.close()


async def replies(fake: FakeTelegramServer, seen: int, expect: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The next `expect` messages the bot sent to the chat after the first `seen`; exactly that many."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(fake.sent_messages(CHAT)) < seen + expect:
        if loop.time() > deadline:
            got = [m.get("text") for m in fake.sent_messages(CHAT)[seen:]]
            raise AssertionError(f"expected {expect} replies, got {got}")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # nothing more comes
    got = fake.sent_messages(CHAT)[seen:]
    assert len(got) == expect, [m.get("text") for m in got]
    return got


def keyboard(message: dict[str, Any]) -> dict[str, str]:
    markup = message.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


async def _orders(app: Otklik) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(order_table)) or 0)


async def test_a_sale_on_telegram(fake: FakeTelegramServer, shop: tuple[Otklik, Callable[..., Any]]) -> None:
    app, post = shop
    seen = 0

    async def say(text: str, expect: int) -> list[dict[str, Any]]:
        nonlocal seen
        await post(fake.text_update(CHAT, text))
        got = await replies(fake, seen, expect)
        seen += expect
        return got

    async def tap(message: dict[str, Any], title: str, expect: int) -> list[dict[str, Any]]:
        nonlocal seen
        await post(fake.callback_update(CHAT, keyboard(message)[title], message_id=message["message_id"]))
        got = await replies(fake, seen, expect)
        seen += expect
        return got

    _hello, listing = await say("¿qué cámaras Hikvision tienen?", 2)
    text = listing["text"]
    assert "Encontré 6 productos en stock" in text
    shown = re.findall(r"— (\S+)\n   \$ ([\d.]+,\d\d) \(IVA incluido\)", text)
    assert len(shown) == 5 and "DS-2CD1143G2-I" in dict(shown)  # page 1: five products in stock
    for sku, price in shown:  # each with its catalog row's price
        assert price == ars(PRICE[sku])[2:], (sku, price)
    assert "DS-2CD1043G2-I" in text.split("Sin stock por ahora:")[1]
    assert "Dahua" not in text
    buttons = keyboard(listing)
    assert "🛒 DS-2CD1143G2-I" in buttons and "🛒 DS-2CD1043G2-I" not in buttons  # out of stock: no button
    assert all(len(data.encode()) <= 64 for data in buttons.values())  # Telegram's callback_data limit

    added = await tap(listing, "🛒 DS-2CD1143G2-I", 2)
    assert "Agregué 1 × Cámara IP domo 4MP 3.6mm (DS-2CD1143G2-I)" in added[0]["text"]
    assert fake.calls_of("answerCallbackQuery"), "button presses must be answered"

    await say("quiero 2 discos de 1 TB", 2)
    (cart,) = await say("mostrame el carrito", 1)
    total = PRICE["DS-2CD1143G2-I"] + 2 * PRICE["WD10PURZ"]
    assert ars(PRICE["DS-2CD1143G2-I"]) in cart["text"] and ars(2 * PRICE["WD10PURZ"]) in cart["text"]
    assert f"Total: {ars(total)}" in cart["text"]

    (summary,) = await say("pasame el resumen", 1)
    s = summary["text"]
    assert f"1 × {ars(PRICE['DS-2CD1143G2-I'])} = {ars(PRICE['DS-2CD1143G2-I'])}" in s
    assert f"2 × {ars(PRICE['WD10PURZ'])} = {ars(2 * PRICE['WD10PURZ'])}" in s
    assert f"Total: {ars(total)} (ARS)" in s
    amounts = {Decimal(a.replace(".", "").replace(",", ".")) for a in re.findall(r"\$ ([\d.]+,\d\d)", s)}
    net = (total / Decimal("1.21")).quantize(Decimal("0.01"))
    allowed = {PRICE["DS-2CD1143G2-I"], PRICE["WD10PURZ"], 2 * PRICE["WD10PURZ"], total, net, total - net}
    assert amounts <= allowed, amounts - allowed  # no number that is not the catalog's or derived from it
    assert "✅ Confirmar" in keyboard(summary)

    need, ask = await tap(summary, "✅ Confirmar", 2)
    assert "necesito unos datos" in need["text"] and "razón social" in ask["text"]
    assert await _orders(app) == 0
    for answer in ("Seguridad Norte SRL", "30-71234567-1", "Responsable Inscripto"):
        await say(answer, 1)
    (done,) = await say("Retiro en el local", 1)
    assert f"Tu pedido PV-000001 quedó confirmado por {ars(total)}" in done["text"]

    again = await tap(summary, "✅ Confirmar", 1)  # a double tap on the same button
    assert "PV-000001 ya está confirmado" in again[0]["text"] and "No hice otro" in again[0]["text"]
    assert await _orders(app) == 1
    async with app.db.read() as session:
        lines = (await session.execute(select(order_lines.c.sku, order_lines.c.quantity, order_lines.c.unit_price)
                                       .order_by(order_lines.c.id))).all()  # fmt: skip
    assert [(sku, n, Decimal(str(p))) for sku, n, p in lines] == [
        ("DS-2CD1143G2-I", 1, PRICE["DS-2CD1143G2-I"]),
        ("WD10PURZ", 2, PRICE["WD10PURZ"]),
    ]

    assert await fulfil.process(app.ctx) >= 1  # the worker's order step: the pre-invoice goes to the buyer
    for _ in range(200):
        documents = [m for m in fake.sent_messages(CHAT) if "document" in m]
        if documents:
            break
        await asyncio.sleep(0.05)
    [document] = documents
    assert document["document"]["mime_type"] == "application/pdf"
    assert "PV-000001" in document["document"]["file_name"]


async def test_two_taps_on_confirmar_at_once_make_one_order(
    fake: FakeTelegramServer, shop: tuple[Otklik, Callable[..., Any]]
) -> None:
    """The buyer's data is asked first; then two callback updates for the same Confirmar arrive together
    (two update ids: a real double tap, not a redelivery)."""
    app, post = shop
    await post(fake.text_update(CHAT, "quiero 2 de la DS-2CD1023G2"))
    await replies(fake, 0, 3)  # hello, added, cart
    await post(fake.text_update(CHAT, "pasame el resumen"))
    (summary,) = await replies(fake, 3, 1)
    data = keyboard(summary)["✅ Confirmar"]
    await post(fake.callback_update(CHAT, data, message_id=summary["message_id"]))
    await replies(fake, 4, 2)
    seen = 6
    for answer in ("Seguridad Norte SRL", "30-71234567-1", "Responsable Inscripto", "Retiro en el local"):
        await post(fake.text_update(CHAT, answer))
        await replies(fake, seen, 1)
        seen += 1
    assert await _orders(app) == 1
    await post(fake.text_update(CHAT, "quiero 1 de la DS-2CD1023G2"))
    await replies(fake, seen, 2)
    seen += 2
    await post(fake.text_update(CHAT, "pasame el resumen"))
    (second,) = await replies(fake, seen, 1)
    seen += 1
    data = keyboard(second)["✅ Confirmar"]
    taps = [fake.callback_update(CHAT, data, message_id=second["message_id"]) for _ in range(2)]
    await asyncio.gather(*(post(t) for t in taps))
    answers = await replies(fake, seen, 2)
    texts = " ".join(m["text"] for m in answers)
    assert "PV-000002 quedó confirmado" in texts and "PV-000002 ya está confirmado" in texts
    assert await _orders(app) == 2
