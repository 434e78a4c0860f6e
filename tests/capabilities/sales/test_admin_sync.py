"""`/admin/sales/sync`: every source with its state and latest runs, a source's history, "run now" (the source
becomes due; the worker's look runs it), a run left 'running' by a worker that died is shown as stale and
does not block the next run (which closes it as interrupted); the heartbeat keeps a live run's lease.
Permissions, CSRF, secrets never shown, hostile names. SQLite and PostgreSQL (a fake seller API on loopback)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update

from otklik.adapters.db.models import EventLog
from otklik.bootstrap import Otklik
from otklik.capabilities.sales import sync
from otklik.capabilities.sales.models import sync_runs, sync_sources
from otklik.clock import utcnow
from otklik.platform.users import Role
from otklik.testing.fake_catalog import FakeCatalogServer


def item(sku: str, price: str = "1000.00") -> dict[str, Any]:
    return {"sku": sku, "name": f"Producto {sku}", "brand": "Hikvision", "category": "Cámaras", "price": price,
            "currency": "ARS", "stock": 3, "description": "", "attributes": {"tech": "ip"}}  # fmt: skip


async def _source_row(otklik: Otklik) -> dict[str, Any]:
    async with otklik.db.read() as session:
        return dict((await session.execute(select(sync_sources))).mappings().one())


async def test_status_history_and_run_now(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    empty = await operator.http.get("/admin/sales/sync")
    assert empty.status_code == 200 and 'data-testid="no-sources"' in empty.text
    async with FakeCatalogServer([item("CAM-1"), item("CAM-2")], token="t0ps3cret") as server:
        await sync.add_json_source(otklik.db, otklik.vault, "erp", server.url, token="t0ps3cret", every_minutes=60)
        first = await sync.run_named(otklik.db, otklik.vault, "erp", backoff=0.0)
        assert first.status == "ok"
        server.garbage()
        failed = await sync.run_named(otklik.db, otklik.vault, "erp", backoff=0.0)
        assert failed.status == "failed"
        page = await operator.http.get("/admin/sales/sync")
        assert page.status_code == 200 and 'data-source="erp" data-state="idle"' in page.text
        assert page.text.count('data-state="ok"') == 1 and page.text.count('data-state="failed"') == 1
        assert "t0ps3cret" not in page.text and "token ***" in page.text
        assert 'data-testid="last-error"' in page.text  # the failure is visible
        history = await operator.http.get("/admin/sales/sync/erp")
        assert history.status_code == 200 and history.text.count("data-run=") == 2
        assert (await operator.http.get("/admin/sales/sync/nope")).status_code == 404
        assert (await operator.http.get("/admin/sales/sync/..%2F..%2Fetc")).status_code == 404
        assert (await operator.http.get("/admin/sales/sync/" + "x" * 500)).status_code == 404

        server.products = [item("CAM-1", "1500.00"), item("CAM-2"), item("CAM-3")]
        forged = await operator.http.post("/admin/sales/sync/erp/run")
        assert forged.status_code in (400, 403)
        queued = await operator.post("/admin/sales/sync/erp/run")
        assert queued.status_code == 303 and queued.headers["location"] == "/admin/sales/sync?run=queued&source=erp"
        shown = await operator.http.get(queued.headers["location"])
        assert 'data-testid="notice"' in shown.text and 'data-source="erp" data-state="queued"' in shown.text
        before = await _source_row(otklik)
        assert before["next_run_at"] <= utcnow()
        [result] = await sync.run_due(otklik.db, otklik.vault, utcnow())  # the worker's next look
        assert result.status == "ok" and result.report is not None and result.report.added == 1
        after = await operator.http.get("/admin/sales/sync/erp")
        assert after.text.count("data-run=") == 3 and after.text.count('data-state="ok"') == 2
    assert (await operator.post("/admin/sales/sync/nope/run")).status_code == 404
    assert (await operator.post("/admin/sales/sync/bad%20name!/run")).status_code == 404
    async with otklik.db.read() as session:
        assert await session.scalar(select(func.count()).where(EventLog.kind == "sales.sync_run_now")) == 1
    analyst = await as_role(Role.ANALYST)
    assert (await analyst.http.get("/admin/sales/sync")).status_code == 403
    assert (await analyst.http.get("/admin/sales/sync/erp")).status_code == 403
    assert (await analyst.post("/admin/sales/sync/erp/run")).status_code == 403


async def test_a_stale_running_row_is_shown_and_does_not_block_the_next_run(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    operator = await as_role(Role.OPERATOR)
    async with FakeCatalogServer([item("CAM-1")]) as server:
        source = await sync.add_json_source(otklik.db, otklik.vault, "erp", server.url, every_minutes=5)
        now = utcnow()
        # a worker claimed the source, wrote its 'running' row and died mid-run
        assert await sync.claim(otklik.db, source.id, "dead-worker", now)
        async with otklik.db.write() as session:
            await session.execute(insert(sync_runs).values(
                source_id=source.id, started_at=now, status="running", rows=0, added=0, changed=0, deactivated=0,
                unchanged=0, owner="dead-worker"))  # fmt: skip
        live = await operator.http.get("/admin/sales/sync")
        assert 'data-source="erp" data-state="running"' in live.text and 'data-state="running"' in live.text
        busy = await operator.post("/admin/sales/sync/erp/run")  # a live lease: nothing to queue
        assert busy.headers["location"] == "/admin/sales/sync?run=running&source=erp"
        assert [r.status for r in await sync.run_due(otklik.db, otklik.vault, now)] == []  # held: skipped
        assert (await sync.run_named(otklik.db, otklik.vault, "erp")).status == "busy"

        # no heartbeat came: the lease ran out
        async with otklik.db.write() as session:
            await session.execute(update(sync_sources).values(lease_until=now - timedelta(seconds=1)))
        stale = await operator.http.get("/admin/sales/sync")
        assert 'data-state="stale"' in stale.text and "The worker stopped before it finished" in stale.text
        assert 'data-source="erp" data-state="running"' not in stale.text
        queued = await operator.post("/admin/sales/sync/erp/run")
        assert queued.headers["location"] == "/admin/sales/sync?run=queued&source=erp"
        [result] = await sync.run_due(otklik.db, otklik.vault, utcnow())
        assert result.status == "ok", result.error
    async with otklik.db.read() as session:
        runs = (await session.execute(select(sync_runs).order_by(sync_runs.c.id))).mappings().all()
    assert [(r["status"], r["error"]) for r in runs] == [("failed", sync.INTERRUPTED), ("ok", None)]
    page = await operator.http.get("/admin/sales/sync/erp")
    assert 'data-state="stale"' not in page.text and "interrupted: the worker running it stopped" in page.text
    source_row = await _source_row(otklik)
    assert source_row["lease_owner"] is None and source_row["last_status"] == "ok"


async def test_the_heartbeat_renews_only_its_own_lease(otklik: Otklik) -> None:
    async with FakeCatalogServer([item("CAM-1")]) as server:
        source = await sync.add_json_source(otklik.db, otklik.vault, "erp", server.url)
    now = utcnow()
    assert await sync.claim(otklik.db, source.id, "me", now)
    later = now + timedelta(minutes=2)
    assert await sync.renew(otklik.db, source.id, "me", later)
    row = await _source_row(otklik)
    assert row["lease_until"] == later + sync.LEASE
    assert not await sync.renew(otklik.db, source.id, "someone-else", later)
    assert not await sync.claim(otklik.db, source.id, "other", later + timedelta(minutes=1))  # still held
    run = {"status": "running", "owner": "me"}
    assert sync.run_state(run, row, later) == "running"
    assert sync.run_state(run, row, later + sync.LEASE + timedelta(seconds=1)) == "stale"
    assert sync.run_state({**run, "owner": "ghost"}, row, later) == "stale"
    assert sync.run_state({**run, "owner": None}, row, later) == "stale"  # a row from before the owner column
