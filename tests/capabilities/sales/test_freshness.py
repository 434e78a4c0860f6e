"""Freshness (issue 16): a product row not refreshed for longer than the sales settings' `freshness_hours`
is quoted "sujeto a confirmación" in the product card, the listing and the order summary; a recent
successful catalog sync vouches for unchanged rows; the setting's bad input is refused. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert, select, update

from otklik.bootstrap import Otklik
from otklik.capabilities.sales import cart as carts
from otklik.capabilities.sales import customer, fulfil, orders
from otklik.capabilities.sales.importer import import_catalog
from otklik.capabilities.sales.models import config, documents, products, sync_runs, sync_sources
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx
from otklik.platform.users import Role
from otklik.web.app import create_app
from tests.capabilities.sales.shop_catalog import rows
from tests.capabilities.sales.test_admin import _order
from tests.capabilities.sales.test_admin_settings import GOOD
from tests.capabilities.sales.test_journey_webchat import _open
from tests.conftest import make_settings

SKU = "DS-2CD1143G2-I"


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


async def _set(app: Otklik, hours: int, age_hours: int, sku: str = SKU) -> None:
    async with app.db.write() as session:
        await session.execute(update(config).values(freshness_hours=hours))
        await session.execute(
            update(products).where(products.c.sku == sku).values(updated_at=utcnow() - timedelta(hours=age_hours))
        )


async def test_a_fresh_row_is_quoted_plainly(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    await _set(app, 24, 2)  # two hours old, freshness 24 h
    chat = await _open(http)
    await chat.send(text=f"cuánto sale la {SKU}")
    *_hello, card = await chat.replies(3)
    assert "Precio: $ 61.500,00" in card["text"] and "sujeto" not in card["text"]


async def test_freshness_off_never_marks_a_row(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    await _set(app, 0, 24 * 400)  # off: a year-old row is quoted as is
    chat = await _open(http)
    await chat.send(text=f"cuánto sale la {SKU}")
    *_hello, card = await chat.replies(3)
    assert "Precio: $ 61.500,00" in card["text"] and "sujeto" not in card["text"]


async def test_a_stale_row_is_quoted_subject_to_confirmation(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    await _set(app, 24, 30)  # thirty hours old, freshness 24 h
    chat = await _open(http)
    await chat.send(text=f"cuánto sale la {SKU}")
    *_hello, card = await chat.replies(3)
    assert "Precio: $ 61.500,00" in card["text"]
    assert "⏳ Precio y stock sujetos a confirmación (datos del" in card["text"]

    await chat.send(text="¿qué cámaras Hikvision tienen?")
    (listing,) = await chat.replies(1)
    [line] = [ln for ln in listing["text"].split("\n") if "61.500,00" in ln]
    assert line.endswith("· sujeto a confirmación")
    assert listing["text"].count("sujeto a confirmación") == 1  # the other rows are fresh

    await chat.send(text=f"quiero 2 de la {SKU} y 2 discos de 1 TB")
    await chat.replies(3)
    await chat.send(text="pasame el resumen")
    (summary,) = await chat.replies(1)
    text = summary["text"]
    assert f"{SKU} — Cámara IP domo 4MP 3.6mm\n  2 × $ 61.500,00 = $ 123.000,00 (sujeto a confirmación)" in text
    assert "$ 128.000,00 (sujeto" not in text  # the disks' row is fresh
    assert f"⏳ Precio y stock sujetos a confirmación: {SKU}. Al confirmar, un ejecutivo verifica" in text
    async with app.db.read() as session:
        cart = (await session.execute(select(carts.carts))).mappings().one()
    assert cart["summary"]["stale"] == [SKU]  # kept with the summary the order is made from


async def test_a_recent_successful_sync_vouches_for_unchanged_rows(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    await _set(app, 24, 30)
    async with app.db.write() as session:
        source = (await session.execute(insert(sync_sources).values(
            name="erp", kind="sql", url="sqlite:///x.db", query="SELECT 1", options={}, mapping={},
            replace=False, prices_include_iva=True, every_minutes=60, timeout_seconds=10, enabled=False,
            next_run_at=utcnow() + timedelta(days=30), created_at=utcnow(),
        ).returning(sync_sources.c.id))).scalar_one()  # fmt: skip
        await session.execute(insert(sync_runs).values(  # a failed run vouches for nothing
            source_id=source, started_at=utcnow(), finished_at=utcnow(), status="failed"))  # fmt: skip
    chat = await _open(http)
    await chat.send(text=f"cuánto sale la {SKU}")
    *_hello, card = await chat.replies(3)
    assert "sujetos a confirmación" in card["text"]
    async with app.db.write() as session:
        await session.execute(insert(sync_runs).values(
            source_id=source, started_at=utcnow() - timedelta(hours=1), finished_at=utcnow() - timedelta(hours=1),
            status="ok"))  # fmt: skip
    await chat.send(text=f"cuánto sale la {SKU}")
    (again,) = await chat.replies(1)
    assert "Precio: $ 61.500,00" in again["text"] and "sujeto" not in again["text"]


async def test_the_setting_is_saved_and_bad_values_refused(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    page = await operator.http.get("/admin/sales/settings")
    assert page.status_code == 200 and 'name="freshness_hours" value="0"' in page.text
    saved = await operator.post("/admin/sales/settings", {**GOOD, "freshness_hours": " 36 "})
    assert saved.status_code == 303
    async with otklik.db.read() as session:
        cfg = await carts.load_config(as_tx(session))
    assert cfg.freshness_hours == 36
    for value in ("-1", "1.5", "abc", "99999", "9" * 40, "", "0x10", "1e3", "<script>"):
        refused = await operator.post("/admin/sales/settings", {**GOOD, "freshness_hours": value})
        assert refused.status_code == 422, value
        assert "freshness_hours: a whole number of hours from 0 (off) to 8760" in refused.text, value
    async with otklik.db.read() as session:
        assert (await carts.load_config(as_tx(session))).freshness_hours == 36  # nothing saved
    off = await operator.post("/admin/sales/settings", {**GOOD, "freshness_hours": "0"})
    assert off.status_code == 303
    async with otklik.db.read() as session:
        assert (await carts.load_config(as_tx(session))).freshness_hours == 0


async def _stale_order(otklik: Otklik) -> orders.Order:
    await import_catalog(otklik.db, rows())
    async with otklik.db.write() as session:
        await session.execute(update(config).values(freshness_hours=24))
        await session.execute(
            update(products).where(products.c.sku == "WD10PURZ").values(updated_at=utcnow() - timedelta(hours=30))
        )
    return await _order(otklik)  # two WD10PURZ, made from a summary like the chat's


async def _pre_invoices(otklik: Otklik, order_id: int) -> int:
    async with otklik.db.read() as session:
        found = await session.execute(
            select(documents.c.id).where(documents.c.order_id == order_id, documents.c.kind == fulfil.PRE_INVOICE)
        )
        return len(found.all())


async def test_an_order_with_a_stale_line_waits_for_the_executive(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    order = await _stale_order(otklik)
    assert order.to_check == ["WD10PURZ"] and order.status == orders.CONFIRMED
    text = fulfil.summary_text(order, [], "Ana")
    assert "⏳ Sujeto a confirmación (datos viejos del catálogo): WD10PURZ." in text  # in the staff message
    await fulfil.process(otklik.ctx)
    assert await _pre_invoices(otklik, order.id) == 0  # the pre-invoice waits
    operator = await as_role(Role.OPERATOR)
    listing = await operator.http.get("/admin/sales/orders")
    assert 'data-testid="needs-check"' in listing.text
    page = await operator.http.get(f"/admin/sales/orders/{order.number}")
    assert 'data-testid="to-check"' in page.text and "WD10PURZ" in page.text
    forged = await operator.http.post(f"/admin/sales/orders/{order.number}/check", data={})  # no CSRF token
    assert forged.status_code in (400, 403)
    async with otklik.db.read() as session:
        assert (await orders.get(as_tx(session), order.id)).to_check == ["WD10PURZ"]  # type: ignore[union-attr]
    done = await operator.post(f"/admin/sales/orders/{order.number}/check", {})
    assert done.status_code == 303
    async with otklik.db.read() as session:
        tx = as_tx(session)
        checked = await orders.get(tx, order.id)
        history = await orders.history_of(tx, order.id)
    assert checked is not None and checked.to_check is None and checked.status == orders.CONFIRMED
    assert any("precio y stock confirmados: WD10PURZ" in str(h["note"]) for h in history)
    again = await operator.post(f"/admin/sales/orders/{order.number}/check", {})
    assert again.status_code == 409 and "nothing waiting for a confirmation" in again.text
    await fulfil.process(otklik.ctx)
    assert await _pre_invoices(otklik, order.id) == 1  # now it goes out
    missing = await operator.post("/admin/sales/orders/PV-999999/check", {})
    assert missing.status_code == 404


async def test_a_fresh_order_needs_no_confirmation(otklik: Otklik) -> None:
    await import_catalog(otklik.db, rows())
    async with otklik.db.write() as session:
        await session.execute(update(config).values(freshness_hours=24))
    order = await _order(otklik)
    assert order.to_check is None
    assert "Sujeto a confirmación" not in fulfil.summary_text(order, [], "Ana")
    await fulfil.process(otklik.ctx)
    assert await _pre_invoices(otklik, order.id) == 1


async def test_the_buyer_confirming_a_stale_summary_is_told_it_waits(shop: tuple[Otklik, httpx.AsyncClient]) -> None:
    app, http = shop
    await _set(app, 24, 30)
    chat = await _open(http)
    await chat.send(text=f"quiero 2 de la {SKU}")
    await chat.replies(4)
    async with app.db.write() as session:  # the buyer's data, as the questions would have kept it
        contact_id = int((await session.execute(select(carts.carts.c.contact_id))).scalar_one())
        kept = await customer.save(
            as_tx(session),
            contact_id,
            {
                "name": "Seguridad Norte SRL",
                "cuit": "30-71234567-1",
                "iva": "responsable inscripto",
                "delivery": "pickup",
            },
        )
    assert kept["ok"], kept
    await chat.send(text="pasame el resumen")
    (summary,) = await chat.replies(1)
    confirm = [b["payload"] for b in summary["buttons"] if b["payload"].startswith("sales:ok:")][0]
    await chat.send(button=confirm)
    (ordered,) = await chat.replies(1)
    assert ordered["text"].startswith("📝 Registré tu pedido PV-000001 por $ 123.000,00.")
    assert f"Precio y stock de {SKU} están sujetos a confirmación: un ejecutivo los verifica" in ordered["text"]
    assert "quedó confirmado" not in ordered["text"]
    async with app.db.read() as session:
        order = await orders.get_by_number(as_tx(session), "PV-000001")
    assert order is not None and order.to_check == [SKU]
