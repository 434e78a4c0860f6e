"""Metrics (issue 21): the seller's numbers from every conversation, computed into daily rows by a job.

- `definitions.py` windows, histogram buckets, percentiles, hand-off reasons, the filters (pure)
- `compute.py`    one conversation's rows -> sessions, counters and response times (pure)
- `aggregate.py`  the `metrics-aggregate` job: incremental, idempotent recompute into `metrics_daily`,
                  `metrics_latency` and `metrics_sessions` (`models.py`, `migrations/`)
- `query.py`      the numbers for a date range and filters, from the aggregate rows; the conversations behind one
- `admin.py`      `/admin/metrics`: KPIs against targets, trends, tables per channel / source / flow / operator,
                  CSV and XLSX of every table (analyst, admin, owner)
- `api.py`        `GET /api/v1/metrics` (API token, scope `metrics`); `cli.py` `otklik metrics`
Orders, claims (and leads, bookings when a capability counts them) come from `Capability.counters`.
See docs/metrics.md.
"""

from otklik.platform.plugins import Capability, JobSpec, NavEntry, Permission

DASHBOARDS = "metrics.dashboards"  # the metrics pages (owner, admin and analysts)

CAPABILITY = Capability(
    name="metrics",
    jobs=(JobSpec("metrics-aggregate", "otklik.capabilities.metrics.aggregate:aggregate_job"),),
    permissions=(Permission(DASHBOARDS, frozenset({"analyst"})),),
    admin=("otklik.capabilities.metrics.admin:router",),
    api=("otklik.capabilities.metrics.api:router",),
    nav=(NavEntry("metrics.nav", "/admin/metrics", DASHBOARDS, 45),),
    cli=(("metrics", "otklik.capabilities.metrics.cli:app"),),
    migrations="otklik.capabilities.metrics:migrations",
    templates="otklik.capabilities.metrics:templates",
    locales="otklik.capabilities.metrics:locales",
    static="otklik.capabilities.metrics:static",
)
