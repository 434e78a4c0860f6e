"""Prometheus metrics of the running processes (`GET /metrics`, docs/prometheus.md).

The counters and histograms below are process-wide like `prometheus_client`'s registry itself (they count
what this process did; two containers in one process — the tests — add to the same series). With
`PROMETHEUS_MULTIPROC_DIR` set in the environment *before* the processes start, every web and worker
process writes its values to files there and `/metrics` sums them (`multiprocess.MultiProcessCollector`).

What is a state of the database rather than of a process — outbox depth and the age of its oldest row,
timers due and late, webhook deliveries waiting — is read from the database when `/metrics` is scraped
(`database_families`), so it is right however many processes run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import OutboxRow, Timer, WebhookDelivery

LATE_AFTER = timedelta(seconds=60)  # a timer due longer ago than this is "late"
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

INBOUND = Counter(
    "otklik_inbound_messages",
    "Inbound channel events handled by ingest, by channel kind and result (new, duplicate)",
    ("channel", "status"),
)
OUTBOUND = Counter(
    "otklik_outbound_messages",
    "Outbound messages by channel kind and outcome (sent, retry, rate_limited, failed)",
    ("channel", "status"),
)
SEND_SECONDS = Histogram(
    "otklik_dispatcher_send_seconds", "Time of one provider send by the dispatcher", ("channel",), buckets=_SLOW
)
RATE_LIMITED = Counter("otklik_channel_429", "Provider answers 429 (rate limited) by channel kind", ("channel",))
NLU_SECONDS = Histogram("otklik_nlu_seconds", "Offline understanding of one buyer text", buckets=_FAST)
LLM_SECONDS = Histogram("otklik_llm_seconds", "One LLM call, by task", ("task",), buckets=_SLOW)
LLM_FALLBACKS = Counter(
    "otklik_llm_fallbacks", "LLM calls that gave no usable answer (the offline path answered)", ("task",)
)
WEBHOOK_DELIVERIES = Counter(
    "otklik_webhook_deliveries", "Event webhook delivery attempts by result (delivered, retry, failed, gave_up)",
    ("result",),
)  # fmt: skip
HTTP_SECONDS = Histogram(
    "otklik_http_request_seconds",
    "HTTP requests by method, route template and status class",
    ("method", "route", "status"),
    buckets=_FAST,
)


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        (histogram.labels(*labels) if labels else histogram).observe(time.perf_counter() - started)


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


async def database_families(db: Database, now: datetime) -> list[Metric]:
    """The gauges read from the database at scrape time."""
    async with db.read() as session:
        depth = (await session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))).all()
        oldest = await session.scalar(select(func.min(OutboxRow.created_at)).where(OutboxRow.status == "pending"))
        timers_due = await session.scalar(
            select(func.count()).select_from(Timer).where(Timer.status == "pending", Timer.due_at <= now)
        )
        timers_late = await session.scalar(
            select(func.count()).select_from(Timer).where(Timer.status == "pending", Timer.due_at <= now - LATE_AFTER)
        )
        hooks = (
            await session.execute(
                select(WebhookDelivery.status, func.count())
                .where(WebhookDelivery.status.in_(("pending", "sending")))
                .group_by(WebhookDelivery.status)
            )
        ).all()
    outbox = GaugeMetricFamily("otklik_outbox_depth", "Outbox rows by status", labels=["status"])
    counts = {str(status): int(n) for status, n in depth}
    for status in ("pending", "sending", "uncertain", "failed"):
        outbox.add_metric([status], counts.get(status, 0))
    age = GaugeMetricFamily("otklik_outbox_oldest_pending_seconds", "Age of the oldest pending outbox row (0: none)")
    age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
    due = GaugeMetricFamily("otklik_timers_due", "Pending timers whose time has come")
    due.add_metric([], int(timers_due or 0))
    late = GaugeMetricFamily("otklik_timers_late", f"Pending timers due more than {LATE_AFTER.seconds} s ago")
    late.add_metric([], int(timers_late or 0))
    waiting = GaugeMetricFamily("otklik_webhook_deliveries_open", "Webhook deliveries not finished", labels=["status"])
    open_counts = {str(status): int(n) for status, n in hooks}
    for status in ("pending", "sending"):
        waiting.add_metric([status], open_counts.get(status, 0))
    return [outbox, age, due, late, waiting]


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """The text format of this process's metrics (every process's, in multiprocess mode) and `extra`."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    more = CollectorRegistry(auto_describe=False)
    more.register(_Families(extra))
    return generate_latest(registry) + generate_latest(more)
