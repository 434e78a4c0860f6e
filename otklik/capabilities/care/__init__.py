"""Care for unhappy buyers and review insights (issue 7).

- Care flows (pack `care-ru`) use the actions in `actions.py`: `wb.check_barcode`, `care.record_incident`.
- `catalog` caches the seller's WB cards (barcode -> product, size); `sync` runs the WB sync job.
- `incidents`: the incident records and the dashboard figures (counts, share resolved by the bot,
  ratings, top phrases, CSV).
- `reviews`: imported WB feedbacks, their classification (`classify`), reply drafts, approval and
  posting (`replies`).

See docs/care.md. Modules are imported directly (`from otklik.capabilities.care.incidents import incident_stats`).
"""

from otklik.platform.plugins import Capability, JobSpec, NavEntry, Permission

DASHBOARDS = "dashboards"  # incidents and review insights (shared with cashback's funnels)

CAPABILITY = Capability(
    name="care",
    actions="otklik.capabilities.care.actions:ACTIONS",
    reactions="otklik.capabilities.care.actions:REACTIONS",
    jobs=(JobSpec("wb-sync", "otklik.capabilities.care.sync:sync_job"),),
    permissions=(Permission(DASHBOARDS, frozenset({"moderator", "analyst"})),),
    admin=("otklik.capabilities.care.admin:router", "otklik.capabilities.care.admin_replies:router"),
    nav=(
        NavEntry("care.nav_incidents", "/admin/care/incidents", DASHBOARDS, 50),
        NavEntry("care.nav_reviews", "/admin/care/reviews", DASHBOARDS, 52),
        NavEntry("care.nav_replies", "/admin/care/replies", "inbox.view", 54),
    ),
    cli=(("wb", "otklik.capabilities.care.cli:app"),),
    models="otklik.capabilities.care.models",
    demo="otklik.capabilities.care.demo:seed",
    demo_tables=("care_incidents", "wb_feedbacks"),
    templates="otklik.capabilities.care:templates",
    locales="otklik.capabilities.care:locales",
    static="otklik.capabilities.care:static",
)
