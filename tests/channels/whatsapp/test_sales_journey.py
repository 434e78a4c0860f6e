"""sales-es on WhatsApp: products offered as list rows, added by a list reply, the summary with reply buttons,
Confirmar, the buyer's data, the confirmation, and the pre-invoice PDF uploaded to /media and sent as a
document by id. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from otklik.capabilities.sales import fulfil
from otklik.capabilities.sales.importer import import_catalog
from otklik.testing.fake_whatsapp import FakeWhatsAppServer
from otklik.web.app import create_app
from tests.capabilities.sales.shop_catalog import rows
from tests.channels.whatsapp.conftest import WA, body_text, choices, start_wa

BUYER = "5491144443333"


@pytest.fixture
async def shop(
    tmp_path: Path, db_url: str, fake: FakeWhatsAppServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WA]:
    monkeypatch.setattr(fulfil, "EVERY_SECONDS", 3600.0)  # the test runs the order step when it wants it
    app, account = await start_wa(tmp_path, db_url, fake, pack="sales-es")
    report = await import_catalog(app.db, rows())
    assert report.applied
    web = create_app(app, worker=False, manage_lifecycle=False)
    app.start_worker()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://bot") as http:
            yield WA(app, fake, http, account, f"/webhooks/whatsapp/{fake.phone_number_id}")
    finally:
        await app.close()


async def test_a_sale_on_whatsapp_ends_with_the_pre_invoice_as_a_document(shop: WA) -> None:
    fake = shop.fake
    seen = 0

    async def say(payload: dict[str, object], expect: int) -> list[dict[str, object]]:
        nonlocal seen
        await shop.post(payload)
        got = await shop.replies(BUYER, seen, expect)
        seen += expect
        return got

    _hello, listing = await say(fake.text_message(BUYER, "¿qué cámaras Hikvision tienen?"), 2)
    assert "Encontré 6 productos en stock" in body_text(listing)
    rows_ = choices(listing)
    assert listing["type"] == "interactive" and "🛒 DS-2CD1143G2-I" in rows_
    assert all(len(title) <= 24 for title in rows_)  # WhatsApp's row title limit
    added = await say(fake.list_reply(BUYER, rows_["🛒 DS-2CD1143G2-I"], "🛒 DS-2CD1143G2-I"), 2)
    assert "Agregué 1 × Cámara IP domo 4MP 3.6mm (DS-2CD1143G2-I)" in body_text(added[0])

    (summary,) = await say(fake.text_message(BUYER, "pasame el resumen"), 1)
    buttons = choices(summary)
    assert "✅ Confirmar" in buttons
    if summary["interactive"]["type"] == "button":  # type: ignore[index]
        assert len(buttons) <= 3 and all(len(t) <= 20 for t in buttons)
    need, ask = await say(fake.button_reply(BUYER, buttons["✅ Confirmar"], "✅ Confirmar"), 2)
    assert "necesito unos datos" in body_text(need) and "razón social" in body_text(ask)
    for answer in ("Seguridad Norte SRL", "30-71234567-1", "Responsable Inscripto"):
        await say(fake.text_message(BUYER, answer), 1)
    (done,) = await say(fake.text_message(BUYER, "Retiro en el local"), 1)
    assert "Tu pedido PV-000001 quedó confirmado" in body_text(done)

    uploads_before = sum(1 for m, p in fake.state.calls if m == "POST" and p.endswith("/media"))
    assert await fulfil.process(shop.app.ctx) >= 1  # the worker's order step: the pre-invoice goes to the buyer
    for _ in range(200):
        documents = [b for b in fake.sent_to(BUYER) if b.get("type") == "document"]
        if documents:
            break
        await asyncio.sleep(0.05)
    [document] = documents
    media_id = document["document"]["id"]  # type: ignore[index]
    assert "PV-000001" in document["document"]["filename"]  # type: ignore[index]
    stored = fake.state.media[media_id]
    assert stored.mime_type == "application/pdf" and stored.data.startswith(b"%PDF")
    assert sum(1 for m, p in fake.state.calls if m == "POST" and p.endswith("/media")) == uploads_before + 1
