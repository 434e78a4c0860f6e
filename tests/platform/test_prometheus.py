"""`GET /metrics`: the output parses with Prometheus' own parser; counters move with the work; the database
gauges are right; who may read it; several processes add up (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from otklik.adapters.db.models import OutboxRow
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.apitokens import create_token
from otklik.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _client(app, host: str = "127.0.0.1") -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 5000)), base_url="http://otklik")


async def test_metrics_parse_and_move_with_the_work(otklik: Otklik, app) -> None:  # type: ignore[no-untyped-def]
    http = _client(app)
    before = _samples((await http.get("/metrics")).text)
    account = next(a.id for a in otklik.ctx.accounts.values() if a.kind == "webchat")
    await otklik.ingest(InboundEvent(account, "m1", "buyer", EventKind.TEXT, text="/start"))
    await otklik.ingest(InboundEvent(account, "m1", "buyer", EventKind.TEXT, text="/start"))  # a duplicate
    _id, secret = await create_token(otklik.db, "grafana", "contacts.read", actor="test")
    assert (await http.get("/api/v1/contacts/1", headers={"Authorization": f"Bearer {secret}"})).status_code == 200
    async with otklik.db.write() as session:  # one pending row, a minute old
        await session.execute(update(OutboxRow).where(OutboxRow.id == 1).values(status="pending",
                                                                                 created_at=utcnow() - timedelta(minutes=1)))  # fmt: skip
    response = await http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = _samples(response.text)  # parses: every line is valid exposition format
    grew = lambda name, **labels: _value(after, name, **labels) - _value(before, name, **labels)  # noqa: E731
    assert grew("otklik_inbound_messages_total", channel="webchat", status="new") == 1
    assert grew("otklik_inbound_messages_total", channel="webchat", status="duplicate") == 1
    assert _value(after, "otklik_outbox_depth", status="pending") == 1
    assert 55 <= _value(after, "otklik_outbox_oldest_pending_seconds") <= 3600
    route = {"method": "GET", "route": "/api/v1/contacts/{contact_id}", "status": "2xx"}
    assert grew("otklik_http_request_seconds_count", **route) == 1  # the template, not /api/v1/contacts/1
    families = {f.name for f in text_string_to_metric_families(response.text)}
    assert {"otklik_timers_due", "otklik_timers_late", "otklik_webhook_deliveries_open", "otklik_outbound_messages",
            "otklik_dispatcher_send_seconds", "otklik_channel_429", "otklik_llm_seconds", "otklik_llm_fallbacks",
            "otklik_webhook_deliveries", "otklik_nlu_seconds"} <= families  # fmt: skip


async def test_who_may_read_the_metrics(otklik: Otklik) -> None:
    outside = _client(create_app(otklik, worker=False, manage_lifecycle=False), "203.0.113.5")
    assert (await outside.get("/metrics")).status_code == 403
    otklik.settings.metrics_token = "prom-secret-token-123456"
    assert (await outside.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 403
    assert (
        await outside.get("/metrics", headers={"Authorization": "Bearer prom-secret-token-123456"})
    ).status_code == 200
    otklik.settings.metrics_token = None
    otklik.settings.metrics_allow = ("203.0.113.0/24",)
    assert (await outside.get("/metrics")).status_code == 200
    assert (
        await _client(create_app(otklik, worker=False, manage_lifecycle=False), "198.51.100.1").get("/metrics")
    ).status_code == 403
    assert (
        await _client(create_app(otklik, worker=False, manage_lifecycle=False), "::1").get("/metrics")
    ).status_code == 200


_CHILD = """
import sys
from otklik.platform.prometheus import INBOUND
INBOUND.labels("telegram", "new").inc(int(sys.argv[1]))
"""
_SCRAPE = """
from otklik.platform.prometheus import exposition
print(exposition().decode())
"""


def test_several_processes_add_up(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", _CHILD, str(n)], env=env, check=True, timeout=120)
    out = subprocess.run(
        [sys.executable, "-c", _SCRAPE], env=env, check=True, timeout=120, capture_output=True, text=True
    )
    samples = _samples(out.stdout)
    assert _value(samples, "otklik_inbound_messages_total", channel="telegram", status="new") == 7
