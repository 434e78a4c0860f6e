"""Outreach (issue 19): saved segments and broadcasts sent exactly once at the channel account's limit.

- `segments.py` conditions (all / any / not over channel, account, pack, tags, language, attributes, first
  seen / last inbound / last outbound) compiled to one query; opted-out contacts are never in an audience
- `service.py` broadcasts: create, start / pause / resume / cancel, the runner's steps, progress
- `jobs.py`    the runner (worker job "outreach-broadcasts")
- `admin.py`  `/admin/outreach/segments` and `/admin/outreach/broadcasts` (permission `outreach.manage`)
- `api.py`     `/api/v1/broadcasts` (scopes broadcasts.read / broadcasts.write)
- `cli.py`     `otklik broadcasts create|start|pause|resume|cancel|status|segment`
See docs/outreach.md.
"""

from otklik.platform.plugins import Capability, JobSpec, NavEntry, Permission

OUTREACH = "outreach.manage"  # segments and broadcasts (owner and admin only: no marketer role exists)

CAPABILITY = Capability(
    name="outreach",
    jobs=(JobSpec("outreach-broadcasts", "otklik.capabilities.outreach.jobs:broadcasts_job"),),
    api=("otklik.capabilities.outreach.api:router",),
    cli=(("broadcasts", "otklik.capabilities.outreach.cli:app"),),
    permissions=(Permission(OUTREACH),),
    admin=("otklik.capabilities.outreach.admin:router",),
    nav=(NavEntry("outreach.nav", "/admin/outreach/broadcasts", OUTREACH, 62, also=("/admin/outreach",)),),
    migrations="otklik.capabilities.outreach:migrations",
    templates="otklik.capabilities.outreach:templates",
    locales="otklik.capabilities.outreach:locales",
)
