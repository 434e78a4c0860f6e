"""Similar products when out of stock: the fixture catalog's cases with their Spanish reasons, configurable
weights and band, and properties over random catalogs (never out of stock, inactive, itself, another
category or outside the band)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.capabilities.sales import CAPABILITY
from otklik.capabilities.sales.importer import import_catalog, read_csv_bytes
from otklik.capabilities.sales.models import products
from otklik.capabilities.sales.similar import rank, similar
from otklik.platform.plugins import folder
from tests.capabilities.sales.catalog import CATALOG_CSV


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    assert CAPABILITY.migrations is not None
    await upgrade(database, locations=[folder(CAPABILITY.migrations)])
    await import_catalog(database, read_csv_bytes(CATALOG_CSV.encode()))
    try:
        yield database
    finally:
        await database.dispose()


async def _product(db: Database, sku: str) -> dict[str, Any]:
    async with db.read() as session:
        return dict((await session.execute(select(products).where(products.c.sku == sku))).mappings().one())


async def _similar(db: Database, sku: str, **kw: Any) -> list[Any]:
    product = await _product(db, sku)
    async with db.read() as session:
        return await similar(session, product, **kw)


async def test_the_out_of_stock_dome_gets_in_stock_domes(db: Database) -> None:
    found = await _similar(db, "DS-2CD1043G0-I")
    assert [a.product["sku"] for a in found] == ["IPC-HDW1431T1-S4", "DS-2CD1143G0-I", "DS-2CD1023G0E-I"]
    assert found[0].differs == [] and found[0].score == 1.0
    second = found[1]
    assert "misma resolución" in second.same and second.differs == ["lente 3.6 mm en lugar de 2.8 mm"]
    assert second.reason.startswith("misma resolución") and second.reason.endswith("lente 3.6 mm en lugar de 2.8 mm")
    assert "resolución 2MP en lugar de 4MP" in found[2].differs


async def test_recorders_and_disks(db: Database) -> None:
    assert [a.product["sku"] for a in await _similar(db, "DS-7616NI-Q2")] == ["NVR4216-4KS2"]
    disks = await _similar(db, "WD20PURZ")
    assert [a.product["sku"] for a in disks] == ["ST2000VX015", "WD10PURZ"]
    assert disks[1].differs == ["capacidad 1TB en lugar de 2TB"]
    narrow = await _similar(db, "IPC-HFW2441S-S", band=Decimal("0.05"))  # 86 400 ± 4 320
    assert [a.product["sku"] for a in narrow] == ["DS-2CD2043G2-I"]
    assert [a.product["sku"] for a in await _similar(db, "IPC-HFW2441S-S")] == ["DS-2CD2043G2-I", "DS-2CD1143G0-I"]


async def test_weights_change_the_order(db: Database) -> None:
    by_lens = await _similar(db, "DS-2CD1043G0-I", weights={"lens_mm": 1}, limit=20)
    assert by_lens[-1].product["sku"] == "DS-2CD1143G0-I" and by_lens[-1].score == 0
    assert by_lens[0].same == ["misma lente"] and by_lens[-1].differs == ["lente 3.6 mm en lugar de 2.8 mm"]
    by_resolution = await _similar(db, "DS-2CD1043G0-I", weights={"resolution": 1}, limit=20)
    assert by_resolution[-1].product["sku"] == "DS-2CD1023G0E-I" and by_resolution[-1].score == 0
    outdoor = await _similar(db, "DS-2CE16D0T-IRPF", weights={"outdoor": 1}, limit=20)
    assert outdoor[0].same == ["exterior"] and outdoor[-1].differs == ["interior en lugar de exterior"]


async def test_never_out_of_stock_inactive_or_itself(db: Database) -> None:
    async with db.write() as session:
        await session.execute(update(products).where(products.c.sku == "IPC-HDW1431T1-S4").values(active=False))
        await session.execute(update(products).where(products.c.sku == "DS-2CD1143G0-I").values(stock=0))
    found = [a.product["sku"] for a in await _similar(db, "DS-2CD1043G0-I", limit=20)]
    assert "IPC-HDW1431T1-S4" not in found and "DS-2CD1143G0-I" not in found and "DS-2CD1043G0-I" not in found
    assert found and all([(await _product(db, s))["stock"] > 0 for s in found])


ATTRS = st.fixed_dictionaries({}, optional={
    "tech": st.sampled_from(["ip", "analogica", "turbo", "wifi"]), "form": st.sampled_from(["domo", "bullet", "tubo"]),
    "resolution": st.sampled_from(["2MP", "4 MP", "5MP"]), "lens_mm": st.sampled_from(["2.8", "3.6", "2,8"]),
    "outdoor": st.sampled_from(["si", "no"]), "poe": st.sampled_from(["si", "no"]),
})  # fmt: skip
ROW = st.fixed_dictionaries({
    "category": st.sampled_from(["Cámaras", "camaras", "Grabadores"]), "currency": st.sampled_from(["ARS", "USD"]),
    "price": st.decimals(min_value=1, max_value=1000, places=2), "stock": st.integers(0, 3),
    "active": st.booleans(), "attributes": ATTRS,
})  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=25), st.data())
def test_alternatives_always_follow_the_rule(rows: list[dict[str, Any]], data: st.DataObject) -> None:
    catalog = [{**r, "id": n, "sku": f"S-{n}"} for n, r in enumerate(rows)]
    product = data.draw(st.sampled_from(catalog))
    band = data.draw(st.sampled_from([Decimal("0.1"), Decimal("0.3"), Decimal("1")]))
    found = rank(product, catalog, band=band, limit=50)
    for alt in found:
        p = alt.product
        assert p["id"] != product["id"] and p["stock"] > 0 and p["active"]
        assert p["category"].lower().replace("á", "a") == product["category"].lower().replace("á", "a")
        assert p["currency"] == product["currency"]
        assert abs(p["price"] - product["price"]) <= product["price"] * band
        assert 0 <= alt.score <= 1 and alt.reason == ", ".join(alt.same + alt.differs)
    assert [a.score for a in found] == sorted((a.score for a in found), reverse=True)
    eligible = [r for r in catalog if r["id"] != product["id"] and r["stock"] > 0 and r["active"]
                and r["currency"] == product["currency"] and abs(r["price"] - product["price"]) <= product["price"] * band
                and r["category"].lower().replace("á", "a") == product["category"].lower().replace("á", "a")]  # fmt: skip
    assert len(found) == len(eligible)
