"""Catalog search on the fixture price list: the buyer's Spanish (synonyms, units, brands, model codes with
typos), filters that exclude, and properties (inactive products never found, accents and case optional)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.capabilities.sales import CAPABILITY
from otklik.capabilities.sales.importer import import_catalog, read_csv_bytes, validate
from otklik.capabilities.sales.models import products
from otklik.capabilities.sales.search import CatalogIndex, IndexCache, fold, search
from otklik.clock import utcnow
from otklik.platform.plugins import folder
from tests.capabilities.sales.catalog import CATALOG_CSV


def _rows() -> list[dict]:
    good, errors, _ = validate(read_csv_bytes(CATALOG_CSV.encode()))
    assert not errors
    return [{**p.values(), "id": n, "active": True} for n, (_, p) in enumerate(good, start=1)]


INDEX = CatalogIndex(_rows())


def skus(text: str, limit: int = 50) -> list[str]:
    return [h.product["sku"] for h in INDEX.search(text, limit)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("¿Qué NVR de 16 canales hay?", {"NVR4216-4KS2", "DS-7616NI-Q2"}),
        ("disco de 2 teras", {"ST2000VX015", "WD20PURZ"}),
        ("disco rígido de 2000 GB", {"ST2000VX015", "WD20PURZ"}),
        ("camara tubo 4 megapíxeles", {"DS-2CD2043G2-I", "IPC-HFW2441S-S"}),
        ("cámara bala de 4mp", {"DS-2CD2043G2-I", "IPC-HFW2441S-S"}),
        ("grabador 8 canales con PoE", {"DS-7108NI-Q1/8P", "NVR2108HS-8P-S3"}),
        ("XVR 16 canales", {"XVR5116HS-I3"}),
        ("cámara wifi", {"DS-2CV1021G0-IDW1"}),
        ("camaras analogicas de interior", {"DS-2CE56D0T-IRPF", "HAC-HDW1200TRQ"}),
        ("turbo 1080p para exterior", {"DS-2CE16D0T-IRPF", "DS-2CE16D0T-ITPF"}),
        ("domo Dahua IP", {"IPC-HDW1431T1-S4"}),
        ("discos Seagate", {"ST2000VX015", "ST4000VX016"}),
        ("western digital", {"WD10PURZ", "WD20PURZ"}),
    ],
)
def test_filters_find_exactly_the_matching_products(text: str, expected: set[str]) -> None:
    assert set(skus(text)) == expected


@pytest.mark.parametrize(
    ("text", "sku"),
    [
        ("precio de la DS-2CD1043G0-I", "DS-2CD1043G0-I"),
        ("ds2cd1043g0i", "DS-2CD1043G0-I"),  # no dashes
        ("DS-2CD1034G0-I", "DS-2CD1043G0-I"),  # two digits swapped
        ("tienen la ipc hfw1230?", "IPC-HFW1230S-S5"),  # a space for the dash, the suffix missing
        ("hac-hfw1500", "HAC-HFW1500CM"),
        ("NVR4216 4KS2", "NVR4216-4KS2"),
        ("st4000vx", "ST4000VX016"),
    ],
)
def test_model_codes_with_typos_come_first(text: str, sku: str) -> None:
    assert skus(text)[0] == sku


def test_hits_say_why_and_rank_in_stock_first() -> None:
    hits = INDEX.search("¿Qué cámaras HIKVISION están disponibles?", 50)
    assert len(hits) == 8 and all(h.product["brand"] == "Hikvision" for h in hits)
    assert {h.product["category"] for h in hits} == {"Cámaras"}
    assert hits[0].product["stock"] > 0 and hits[-1].product["stock"] == 0
    assert "marca Hikvision" in hits[0].why and "sin stock" in hits[-1].why
    hit = INDEX.search("domo 2.8 mm exterior", 1)[0]
    assert "lente 2.8 mm" in hit.why and "exterior" in hit.why and "formato domo" in hit.why


def test_brand_typo_and_words() -> None:
    assert set(skus("hikvison domo")) == {"DS-2CD1043G0-I", "DS-2CD1143G0-I", "DS-2CE56D0T-IRPF"}
    assert skus("acusense") == ["DS-2CD2043G2-I"]
    assert skus("acusens") == ["DS-2CD2043G2-I"]  # a typo in a word of the name


@pytest.mark.parametrize(
    "text", ["", "   ", "hola", "¿qué tienen?", "precio", "zzzzzz", "😀" * 50, "camara 99 canales"]
)
def test_nothing_to_find(text: str) -> None:
    assert skus(text) == []


def test_limit() -> None:
    assert len(skus("camara", 3)) == 3 and skus("camara", 0) == []


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(
        [
            "cámara domo",
            "disco de 2 teras",
            "NVR 16 canales",
            "cámaras Hikvision",
            "bala 4mp",
            "DS-2CD1043",
            "grabador poe",
            "analógica exterior",
        ]
    ),  # fmt: skip
    st.booleans(),
    st.booleans(),
)
def test_accents_and_case_are_optional(text: str, upper: bool, strip: bool) -> None:
    variant = fold(text) if strip else text
    variant = variant.upper() if upper else variant
    assert skus(variant) == skus(text) and skus(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_any_text_is_safe(text: str) -> None:
    hits = INDEX.search(text, 5)
    assert len(hits) <= 5 and all(h.score > 0 and h.why for h in hits)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    assert CAPABILITY.migrations is not None
    await upgrade(database, locations=[folder(CAPABILITY.migrations)])
    try:
        yield database
    finally:
        await database.dispose()


async def test_an_inactive_product_is_never_found(db: Database) -> None:
    await import_catalog(db, read_csv_bytes(CATALOG_CSV.encode()))
    async with db.read() as session:
        before = [h.product["sku"] for h in await search(session, "DS-2CD1143G0-I")]
    assert before[0] == "DS-2CD1143G0-I"
    async with db.write() as session:
        await session.execute(update(products).where(products.c.sku == "DS-2CD1143G0-I").values(active=False))
    queries = ["DS-2CD1143G0-I", "ds2cd1143", "camara domo 4mp 3.6mm", "hikvision", "camara", "domo"]
    async with db.read() as session:
        for text in queries:
            found = [h.product["sku"] for h in await search(session, text, 100)]
            assert "DS-2CD1143G0-I" not in found, text
        assert [h.product["sku"] for h in await search(session, "hikvision domo 4mp", 10)] == ["DS-2CD1043G0-I"]


async def test_the_cache_follows_every_change(db: Database) -> None:
    await import_catalog(db, read_csv_bytes(CATALOG_CSV.encode()))
    cache = IndexCache()
    async with db.read() as session:
        first = await cache.get(session)
        assert await cache.get(session) is first
    async with db.write() as session:  # a deactivation alone (same row count)
        await session.execute(
            update(products).where(products.c.sku == "WD10PURZ").values(active=False, updated_at=utcnow())
        )
    async with db.read() as session:
        assert [h.product["sku"] for h in await search(session, "disco 1tb", cache=cache)] == []
    await import_catalog(db, read_csv_bytes(CATALOG_CSV.encode()))  # back, with a new price row by row
    async with db.read() as session:
        assert [h.product["sku"] for h in await search(session, "disco 1tb", cache=cache)] == ["WD10PURZ"]


WORDS = ["hikvision", "dahua", "seagate", "cámara", "cámaras", "grabador", "nvr", "dvr", "xvr", "disco", "domo",
         "tubo", "bala", "ip", "analógica", "turbo", "hdcvi", "wifi", "exterior", "interior", "poe", "4mp",
         "2 megapíxeles", "1080p", "8 canales", "16 canales", "2 teras", "1tb", "2.8mm", "3.6 mm", "ds-2cd", "hfw",
         "precio", "qué", "tienen", "acusense", "purple"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=5), st.sets(st.integers(0, 24), max_size=8))
def test_hits_meet_every_filter_and_never_inactive(words: list[str], inactive: set[int]) -> None:
    rows = _rows()
    for n in inactive:
        rows[n]["active"] = False
    index = CatalogIndex(rows)
    text = " ".join(words)
    query = index.parse(text)
    for hit in index.search(text, 50):
        item = next(i for i in index.items if i.row["sku"] == hit.product["sku"])
        assert hit.product["active"], text
        assert not query.brands or item.brand in query.brands
        assert not query.categories or item.category in query.categories
        assert all(item.attributes.get(k) == v for k, v in query.attributes.items()), (text, item.attributes)
        assert hit.score > 0 and ("sin stock" in hit.why) == (hit.product["stock"] == 0)
