"""`/admin/sales/orders` and `/admin/sales/catalog`: filters, the detail with lines and history, cancel
(history, audit log, stock back), permissions and CSRF, hostile input escaped."""

from __future__ import annotations

from sqlalchemy import func, select

from otklik.adapters.db.models import EventLog
from otklik.bootstrap import Otklik
from otklik.capabilities.sales import cart as carts
from otklik.capabilities.sales import orders
from otklik.capabilities.sales.importer import import_catalog
from otklik.capabilities.sales.models import products
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx
from otklik.platform.users import Role
from tests.capabilities.sales.shop_catalog import rows


async def _order(otklik: Otklik) -> orders.Order:
    await import_catalog(otklik.db, rows())
    now = utcnow()
    async with otklik.db.write() as session:
        tx = as_tx(session)
        pid = int(await session.scalar(select(products.c.id).where(products.c.sku == "WD10PURZ")) or 0)
        cart = await carts.ensure(tx, 1, 1, now)
        cfg = await carts.load_config(tx)
        await carts.set_quantity(tx, cart, pid, 2, cfg, now)
        cart = await carts.get(tx, 1)
        assert cart is not None
        summary = await carts.summarise(tx, cart, cfg, now, None, fix=False)
        customer = {"name": "<script>alert(1)</script> SA", "cuit": "30-71234567-1", "iva": "Exento",
                    "delivery": "pickup", "address": ""}  # fmt: skip
        return await orders.create_from_cart(tx, cart, summary, customer, now)


async def test_a_line_that_no_longer_fits_gives_back_the_stock_of_the_others(otklik: Otklik) -> None:
    """Another buyer takes the last units between the summary and the confirmation: no order, and the stock
    of the lines reserved before the refused one is given back (it was leaked until the step committed)."""
    await import_catalog(otklik.db, rows())
    now = utcnow()
    async with otklik.db.write() as session:
        tx = as_tx(session)
        ids = {
            r.sku: int(r.id)
            for r in await session.execute(select(products.c.sku, products.c.id, products.c.stock).where(products.c.stock > 3))
        }
        first, second = sorted(ids.values())[:2]
        before = {int(r.id): int(r.stock) for r in await session.execute(select(products.c.id, products.c.stock))}
        cart = await carts.ensure(tx, 1, 1, now)
        cfg = await carts.load_config(tx)
        await carts.set_quantity(tx, cart, first, 2, cfg, now)
        await carts.set_quantity(tx, cart, second, 2, cfg, now)
        cart = await carts.get(tx, 1)
        assert cart is not None
        summary = await carts.summarise(tx, cart, cfg, now, None, fix=False)
        await session.execute(products.update().where(products.c.id == second).values(stock=1))  # taken meanwhile
        customer = {"name": "SA", "cuit": "30-71234567-1", "iva": "Exento", "delivery": "pickup", "address": ""}
        try:
            await orders.create_from_cart(tx, cart, summary, customer, now)
        except orders.StockChanged:
            pass
        else:
            raise AssertionError("an order was made with stock that is gone")
        after = {int(r.id): int(r.stock) for r in await session.execute(select(products.c.id, products.c.stock))}
    assert after[first] == before[first]  # the first line's 2 units are back
    assert after[second] == 1


async def test_orders_list_detail_and_cancel(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    order = await _order(otklik)
    assert order.number == "PV-000001" and order.created
    operator = await as_role(Role.OPERATOR)
    page = await operator.http.get("/admin/sales/orders?status=confirmed")
    assert page.status_code == 200 and 'data-order="PV-000001"' in page.text
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    assert 'data-order="PV-000001"' not in (await operator.http.get("/admin/sales/orders?status=paid")).text
    assert (await operator.http.get("/admin/sales/orders?since=not-a-date&status=' OR 1=1")).status_code == 200
    assert (await operator.http.get("/admin/sales/orders?until=9999-12-31&since=0001-01-01")).status_code == 200
    detail = await operator.http.get("/admin/sales/orders/PV-000001")
    assert "WD10PURZ" in detail.text and "$ 128.000,00" in detail.text and "confirmed" in detail.text
    assert (await operator.http.get("/admin/sales/orders/PV-999999")).status_code == 404

    forged = await operator.http.post("/admin/sales/orders/PV-000001/cancel", data={"note": "x"})
    assert forged.status_code in (400, 403)  # no CSRF token
    cancelled = await operator.post("/admin/sales/orders/PV-000001/cancel", {"note": "el cliente desistió"})
    assert cancelled.status_code == 303
    again = await operator.post("/admin/sales/orders/PV-000001/cancel", {"note": "otra vez"})
    assert again.status_code == 409
    async with otklik.db.read() as session:
        tx = as_tx(session)
        stored = await orders.get_by_number(tx, "PV-000001")
        history = await orders.history_of(tx, order.id)
        stock = await session.scalar(select(products.c.stock).where(products.c.sku == "WD10PURZ"))
        audits = await session.scalar(select(func.count()).where(EventLog.kind == "sales.order_cancel"))
    assert stored is not None and stored.status == "cancelled"
    assert [(h["from_status"], h["to_status"]) for h in history] == [(None, "confirmed"), ("confirmed", "cancelled")]
    assert stock == 20 and audits == 1  # the reserved stock came back


async def test_catalog_page_and_permissions(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    await import_catalog(otklik.db, rows())
    operator = await as_role(Role.OPERATOR)
    page = await operator.http.get("/admin/sales/catalog", params={"q": "nvr 16 canales", "stock": "in"})
    assert (
        page.status_code == 200
        and 'data-sku="NVR4216-4KS2"' in page.text
        and 'data-sku="DS-7616NI-Q2"' not in page.text
    )
    brand = await operator.http.get("/admin/sales/catalog", params={"brand": "Seagate"})
    assert 'data-sku="ST2000VX015"' in brand.text and 'data-sku="WD10PURZ"' not in brand.text
    assert (await operator.http.get("/admin/sales/catalog", params={"q": "x" * 5000})).status_code == 200
    analyst = await as_role(Role.ANALYST)
    assert (await analyst.http.get("/admin/sales/orders")).status_code == 403
    assert (await analyst.http.get("/admin/sales/catalog")).status_code == 403
