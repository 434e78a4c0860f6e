"""Scheduled catalog sync: a JSON endpoint (fake seller API on loopback: pages, 429/500, timeouts, garbage,
duplicates) and a read-only SQL query (the seller's database: an SQLite file, and a PostgreSQL database of its
own), on SQLite and PostgreSQL as our database. A failed run changes nothing and is recorded."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from otklik.adapters.crypto import Vault
from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.capabilities.sales import CAPABILITY, sync
from otklik.capabilities.sales.models import products, sync_sources
from otklik.capabilities.sales.sync import (
    SyncError,
    add_json_source,
    add_sql_source,
    check_query,
    claim,
    get_source,
    history,
    list_sources,
    run_due,
    run_named,
)
from otklik.clock import utcnow
from otklik.platform.plugins import folder
from otklik.testing.fake_catalog import FakeCatalogServer
from tests.conftest import PG_URL


def item(sku: str, price: str = "1000.00", stock: int = 5, **extra: Any) -> dict[str, Any]:
    return {
        "sku": sku, "name": f"Producto {sku}", "brand": "Hikvision", "category": "Cámaras", "price": price,
        "currency": "ARS", "stock": stock, "description": "", "attributes": {"tech": "ip", "poe": True}, **extra,
    }  # fmt: skip


CATALOG = [item(f"CAM-{n}", f"{1000 + n}.50", n) for n in range(1, 6)]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    assert CAPABILITY.migrations is not None
    await upgrade(database, locations=[folder(CAPABILITY.migrations)])
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def vault() -> Vault:
    return Vault(Fernet.generate_key())


async def catalog(db: Database) -> dict[str, dict[str, Any]]:
    async with db.read() as session:
        return {r["sku"]: dict(r) for r in (await session.execute(select(products))).mappings()}


async def run(db: Database, vault: Vault, name: str) -> sync.RunResult:
    return await run_named(db, vault, name, backoff=0.0)


# --- JSON ---------------------------------------------------------------------------------------------------


async def test_json_pages_added_changed_deactivated_and_history(db: Database, vault: Vault) -> None:
    async with FakeCatalogServer(list(CATALOG), per_page=2, token="s3cret") as server:
        await add_json_source(db, vault, "erp", server.url, token="s3cret", replace=True, every_minutes=15)
        first = await run(db, vault, "erp")
        assert first.status == "ok", first.error
        assert first.report is not None and (first.rows, first.report.added, first.report.changed) == (5, 5, 0)
        assert [p for p, _ in server.requests] == ["/products", "/products?cursor=2", "/products?cursor=4"]
        assert {auth for _, auth in server.requests} == {"Bearer s3cret"}
        rows = await catalog(db)
        assert rows["CAM-3"]["price"] == Decimal("1003.50") and rows["CAM-3"]["attributes"] == {
            "tech": "ip",
            "poe": "si",
        }
        # the seller changes a price, drops a product, adds one
        server.products = [*CATALOG[:3], item("CAM-2B", "77.00"), {**CATALOG[4], "price": "2000"}]
        server.products[1] = {**CATALOG[1], "stock": 99}
        second = await run(db, vault, "erp")
        assert second.status == "ok" and second.report is not None
        r = second.report
        assert (r.added, r.changed, r.deactivated, r.unchanged) == (1, 2, 1, 2)
        rows = await catalog(db)
        assert rows["CAM-4"]["active"] is False and rows["CAM-5"]["price"] == Decimal("2000.00")
        assert rows["CAM-2"]["stock"] == 99
    runs = await history(db, "erp")
    assert [(h["status"], h["added"], h["changed"], h["deactivated"]) for h in runs] == [
        ("ok", 1, 2, 1), ("ok", 5, 0, 0)
    ]  # fmt: skip
    source = await get_source(db, "erp")
    assert source is not None and source.last_status == "ok" and source.last_error is None
    assert source.next_run_at - source.last_run_at == timedelta(minutes=15)  # type: ignore[operator]
    shown = (await list_sources(db))[0].shown()
    assert shown["token"] == "***" and "s3cret" not in str(shown)
    async with db.read() as session:
        stored = (await session.execute(select(sync_sources.c.secret))).scalar_one()
    assert "s3cret" not in stored and vault.decrypt(stored) == "s3cret"


async def test_json_page_params_and_mapping(db: Database, vault: Vault) -> None:
    seller = [{"codigo": f"X-{n}", "descripcion": f"Disco {n}", "precio": n * 10, "existencia": n,
               "marca": "WD", "rubro": "Discos", "moneda": "ARS", "extra_field": [1, 2]} for n in range(1, 8)]  # fmt: skip
    async with FakeCatalogServer(seller) as server:
        mapping = sync.parse_mapping(["codigo=sku", "descripcion=name", "precio=price", "existencia=stock",
                                      "marca=brand", "rubro=category", "moneda=currency"])  # fmt: skip
        await add_json_source(db, vault, "wd", server.page_url, paging="page", per_page=3, mapping=mapping)
        result = await run(db, vault, "wd")
        assert result.status == "ok", result.error
        assert [p for p, _ in server.requests] == [f"/paged?page={n}&per_page=3" for n in (1, 2, 3)]
    rows = await catalog(db)
    assert len(rows) == 7 and rows["X-7"]["price"] == Decimal("70.00") and rows["X-7"]["name"] == "Disco 7"


async def test_json_retries_429_and_500_then_succeeds(db: Database, vault: Vault) -> None:
    async with FakeCatalogServer(list(CATALOG), per_page=10) as server:
        await add_json_source(db, vault, "erp", server.url)
        server.fail(429, retry_after=0)
        server.fail(503)
        result = await run(db, vault, "erp")
        assert result.status == "ok", result.error
        assert len(server.requests) == 3 and len(await catalog(db)) == 5


async def test_failures_leave_the_last_good_catalog_and_are_recorded(db: Database, vault: Vault) -> None:
    async with FakeCatalogServer(list(CATALOG), per_page=2) as server:
        await add_json_source(db, vault, "erp", server.url, replace=True, timeout_seconds=1)
        assert (await run(db, vault, "erp")).status == "ok"
        good = await catalog(db)
        server.products = [{**p, "price": "1.00"} for p in CATALOG[:2]]  # would change and deactivate a lot

        cases: list[tuple[Any, str]] = [
            (lambda: server.fail(500, times=4), "answered 500 after 3 retries"),
            (lambda: server.fail(404), "answered 404"),
            (server.garbage, "not JSON"),
            (lambda: server.delay(3), "timed out"),
            (lambda: server.drip(0.3), "timed out"),  # bytes keep coming, but the page's 2 s deadline passes
            (lambda: server.huge(sync.MAX_PAGE_BYTES + 10), "larger than 8 MB"),
            (lambda: server.next_to("http://198.51.100.7/steal"), "leaves 127.0.0.1"),
            (lambda: server.next_to("/products"), "already read"),
        ]
        for script, expected in cases:
            script()
            result = await run(db, vault, "erp")
            assert result.status == "failed" and expected in (result.error or ""), (expected, result.error)
            assert await catalog(db) == good, expected
            server._script.clear()

        for bad, expected in [
            ([*CATALOG, CATALOG[0]], "row 6, sku: duplicate sku (first on line 1)"),
            ([{**CATALOG[0], "price": [1]}], "row 1, price: a list, not a value"),
            ([{**CATALOG[0], "name": {"es": "x"}}], "row 1, name: a dict, not a value"),
            ([{**CATALOG[0], "stock": "muchos"}], "row 1, stock: not a whole number"),
            ([{**CATALOG[0], "price": -5}], "row 1, price: must be greater than 0"),
            (["CAM-1"], "row 1, (row): not an object but str"),
            ([{**CATALOG[0], "attributes": {"a": {"b": 1}}}], "row 1, attributes: values must be text"),
        ]:
            server.products = bad
            result = await run(db, vault, "erp")
            assert result.status == "failed" and expected in (result.error or ""), (expected, result.error)
            assert "nothing changed" in (result.error or "")
            assert await catalog(db) == good, expected
    runs = await history(db, "erp", limit=100)
    assert [r["status"] for r in runs].count("failed") == 15 and runs[-1]["status"] == "ok"
    assert all(r["added"] == r["changed"] == r["deactivated"] == 0 and r["error"] for r in runs[:-1])
    source = await get_source(db, "erp")
    assert source is not None and source.last_status == "failed" and "attributes" in (source.last_error or "")


async def test_a_body_of_the_wrong_shape_fails(db: Database, vault: Vault) -> None:
    async with FakeCatalogServer([]) as server:
        await add_json_source(db, vault, "erp", server.url, items_key="data")  # the body has `items`, not `data`
        result = await run(db, vault, "erp")
    assert result.status == "failed" and "a list under 'data'" in (result.error or "")


# --- SQL ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("DELETE FROM articulos", "only a SELECT"),
        ("SELECT * FROM articulos; DROP TABLE articulos", "one statement only"),
        ("SELECT 1;; ", "one statement only"),
        ("select * into copia from articulos", "INTO is not allowed"),
        ("WITH d AS (DELETE FROM articulos RETURNING *) SELECT * FROM d", "DELETE is not allowed"),
        ("", "empty"),
        ("SELECT 'unclosed", "unclosed quote"),
        ("/* hola */ UPDATE articulos SET precio = 0", "only a SELECT"),
        ("SELECT 1 " + "x" * 30_000, "longer than"),
        ("PRAGMA writable_schema = 1", "only a SELECT"),
    ],
)
def test_hostile_queries_are_refused(query: str, expected: str) -> None:
    with pytest.raises(SyncError, match=expected):
        check_query(query)


def test_harmless_queries_pass() -> None:
    check_query("SELECT 'a; drop table x' AS sku, \"update\" FROM t -- ; delete\n;")
    check_query("with t as (select 1 as x) select x from t")


def seller_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> str:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE IF NOT EXISTS articulos (codigo TEXT, nombre TEXT, marca TEXT, rubro TEXT, "
                "precio NUMERIC, moneda TEXT, stock INTEGER, notas TEXT, attrs TEXT)")  # fmt: skip
    con.execute("DELETE FROM articulos")
    con.executemany("INSERT INTO articulos VALUES (?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    return f"sqlite:///{path}"


SELLER_ROWS = [(f"NVR-{n}", f"NVR {n} canales", "Dahua", "Grabadores", f"{n}9000.00", "ARS", n, "", f"channels={n}")
               for n in (4, 8, 16)]  # fmt: skip
QUERY = ("SELECT codigo AS sku, nombre AS name, marca AS brand, rubro AS category, precio AS price, "
         "moneda AS currency, stock, notas AS description, attrs AS attributes FROM articulos")  # fmt: skip


async def test_sql_source_on_a_sqlite_file(db: Database, vault: Vault, tmp_path: Path) -> None:
    url = seller_sqlite(tmp_path / "erp.db", SELLER_ROWS)
    await add_sql_source(db, vault, "erp", url, QUERY, replace=True)
    result = await run(db, vault, "erp")
    assert result.status == "ok" and result.report is not None and result.report.added == 3, result.error
    assert (await catalog(db))["NVR-16"]["price"] == Decimal("169000.00")
    seller_sqlite(tmp_path / "erp.db", [*SELLER_ROWS[:2], ("NVR-8", "dup", "D", "G", "1", "ARS", 1, "", "")])
    result = await run(db, vault, "erp")
    assert result.status == "failed" and "duplicate sku" in (result.error or "")
    assert len([p for p in (await catalog(db)).values() if p["active"]]) == 3  # NVR-16 not deactivated
    seller_sqlite(tmp_path / "erp.db", SELLER_ROWS[:2])
    result = await run(db, vault, "erp")
    assert result.report is not None and (result.report.deactivated, result.report.unchanged) == (1, 2)
    # the seller's file is opened read-only: a source edited in our database to write is still refused
    async with db.write() as session:
        await session.execute(update(sync_sources).values(query="SELECT 1; DELETE FROM articulos"))
    result = await run(db, vault, "erp")
    assert result.status == "failed" and "one statement only" in (result.error or "")
    assert sqlite3.connect(tmp_path / "erp.db").execute("SELECT count(*) FROM articulos").fetchone() == (2,)
    async with db.write() as session:
        await session.execute(update(sync_sources).values(query=QUERY))
    (tmp_path / "erp.db").unlink()
    result = await run(db, vault, "erp")
    assert result.status == "failed" and "the query failed" in (result.error or "")


@pytest.fixture
async def seller_pg() -> AsyncIterator[str]:
    """The seller's system: a PostgreSQL database of its own, with a password in the URL (trust auth ignores it)."""
    if not PG_URL:
        pytest.skip("OTKLIK_TEST_PG_URL is not set")
    import asyncpg

    base = make_url(PG_URL)
    name = f"{base.database}_seller"
    server = await asyncpg.connect(base.set(drivername="postgresql", database="postgres").render_as_string(False))
    try:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()
    url = base.set(drivername="postgresql", database=name, password="hunter2")
    con = await asyncpg.connect(url.render_as_string(False))
    try:
        await con.execute("CREATE TABLE articulos (codigo text, nombre text, marca text, rubro text, precio numeric,"
                          " moneda text, stock int, notas text, attrs text); CREATE SEQUENCE s")  # fmt: skip
        rows = [(*r[:4], Decimal(r[4]), *r[5:]) for r in SELLER_ROWS]
        await con.executemany("INSERT INTO articulos VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)", rows)
    finally:
        await con.close()
    yield url.render_as_string(False)


async def test_sql_source_on_postgresql_read_only_with_timeout(db: Database, vault: Vault, seller_pg: str) -> None:
    await add_sql_source(db, vault, "erp", seller_pg, QUERY, timeout_seconds=1)
    shown = (await list_sources(db))[0].shown()
    assert "hunter2" not in str(shown) and "***" in shown["url"]
    async with db.read() as session:
        assert "hunter2" not in (await session.execute(select(sync_sources.c.secret))).scalar_one()
    result = await run(db, vault, "erp")
    assert result.status == "ok" and result.report is not None and result.report.added == 3, result.error
    good = await catalog(db)

    async def edit(query: str) -> sync.RunResult:
        async with db.write() as session:
            await session.execute(update(sync_sources).values(query=query))
        return await run(db, vault, "erp")

    slow = await edit(QUERY.replace("SELECT ", "SELECT pg_sleep(3) AS pause, ", 1))
    assert slow.status == "failed" and "timed out" in (slow.error or ""), slow.error
    # past the guard (a function call), the read-only transaction still refuses to write
    writes = await edit("SELECT nextval('s') AS sku")
    assert writes.status == "failed" and "read-only transaction" in (writes.error or ""), writes.error
    garbage = await edit("SELECT codigo AS sku, nombre AS name, 'x' AS brand, '' AS category, -1 AS price, 'ARS' AS "
                         "currency, 1 AS stock, '' AS description, '' AS attributes FROM articulos")  # fmt: skip
    assert garbage.status == "failed" and "price: must be greater than 0" in (garbage.error or "")
    assert "hunter2" not in str(await history(db, "erp"))
    assert await catalog(db) == good


async def test_adding_sources_refuses_bad_input(db: Database, vault: Vault, tmp_path: Path) -> None:
    url = "https://erp.example/api/products"
    for kwargs, expected in [
        ({"name": "Bad Name!"}, "the name"),
        ({"every_minutes": 0}, "every"),
        ({"timeout_seconds": 10_000}, "timeout"),
        ({"url": "ftp://erp.example/x"}, "http"),
        ({"url": "https://user:pw@erp.example/x"}, "no credentials"),
        ({"paging": "offset"}, "paging"),
        ({"token": "a\r\nX-Evil: 1"}, "one line"),
    ]:
        args = {"name": "erp", "url": url, **kwargs}
        with pytest.raises(SyncError, match=expected):
            await add_json_source(db, vault, **args)
    with pytest.raises(SyncError, match="not a column"):
        sync.parse_mapping(["codigo=precio_lista"])
    with pytest.raises(SyncError, match="source_field=column"):
        sync.parse_mapping(["codigo"])
    for bad_url, expected in [
        ("oracle://u:p@h/db", "unsupported database"),
        ("mysql+aiomysql://u:p@h/db", "not installed"),
        ("not a url", "not an SQLAlchemy"),
    ]:
        with pytest.raises(SyncError, match=expected):
            await add_sql_source(db, vault, "erp", bad_url, QUERY)
    with pytest.raises(SyncError, match="one statement only"):
        await add_sql_source(db, vault, "erp", f"sqlite:///{tmp_path / 'x.db'}", "SELECT 1; DROP TABLE products")
    await add_json_source(db, vault, "erp", url)
    with pytest.raises(SyncError, match="already exists"):
        await add_json_source(db, vault, "erp", url)
    with pytest.raises(SyncError, match="no sync source"):
        await run_named(db, vault, "nope")


# --- scheduling and the lease -----------------------------------------------------------------------------


async def test_due_sources_run_once_and_a_claimed_source_is_skipped(db: Database, vault: Vault) -> None:
    async with FakeCatalogServer(list(CATALOG)) as server:
        source = await add_json_source(db, vault, "erp", server.url, every_minutes=10)
        now = utcnow()
        assert await claim(db, source.id, "other-worker", now)
        assert not await claim(db, source.id, "me", now)  # a live lease is not taken twice
        assert await run_due(db, vault, now, owner="me") == []
        busy = await run(db, vault, "erp")
        assert busy.status == "busy" and server.requests == []
        async with db.write() as session:  # the other worker crashed: its lease runs out
            await session.execute(update(sync_sources).values(lease_until=now - timedelta(seconds=1)))
        # two workers at once: the source runs once
        results = await asyncio.gather(run_due(db, vault, now, owner="a"), run_due(db, vault, now, owner="b"))
        statuses = sorted(r.status for batch in results for r in batch)
        assert statuses.count("ok") == 1 and set(statuses) <= {"ok", "busy"}
        assert len(server.requests) == 1
        # not due again until every_minutes have passed
        assert await run_due(db, vault, utcnow(), owner="a") == []
        later = await run_due(db, vault, utcnow() + timedelta(minutes=11), owner="a")
        assert [r.status for r in later] == ["ok"]
    async with db.read() as session:
        count = (await session.execute(text("SELECT count(*) FROM sales_sync_runs"))).scalar_one()
        lease = (await session.execute(select(sync_sources.c.lease_owner))).scalar_one()
    assert count == 2 and lease is None


async def test_the_worker_job_runs_due_sources_on_the_container(otklik: Any) -> None:
    """The capability's JobSpec resolves to a loop on the container's database and Vault, which runs a due
    source and stops when told."""
    from otklik.platform.plugins import resolve

    (spec,) = [j for j in CAPABILITY.jobs if j.name == "sales-catalog-sync"]
    async with FakeCatalogServer(list(CATALOG)) as server:
        await add_json_source(otklik.db, otklik.vault, "erp", server.url)
        stop = asyncio.Event()
        loop = asyncio.create_task(resolve(spec.factory)(otklik)(stop))
        for _ in range(400):
            if (await get_source(otklik.db, "erp")).last_status:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.025)
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert (await get_source(otklik.db, "erp")).last_status == "ok"  # type: ignore[union-attr]
    assert len(await catalog(otklik.db)) == 5


async def test_a_secret_the_vault_cannot_read_fails_the_run_visibly(db: Database, vault: Vault) -> None:
    await add_json_source(db, vault, "erp", "http://127.0.0.1:9/products", token="t")
    result = await run_named(db, Vault(Fernet.generate_key()), "erp", backoff=0.0)  # another install's key
    assert result.status == "failed" and "cannot decrypt" in (result.error or "")
    (last,) = await history(db, "erp")
    assert last["status"] == "failed" and "cannot decrypt" in last["error"] and last["finished_at"]
