"""A tiny capability, written the way a real one is (see docs/architecture.md, "Adding a capability"):
one table with its own migration, one flow action, one reaction to a hand-off, one admin page with its own stylesheet, one job. It lives in the tests so the
product does not ship it; `test_example_capability.py` plugs it in exactly as `otklik/registry.py` would."""

from __future__ import annotations

from otklik.platform.plugins import Capability, JobSpec, NavEntry

CAPABILITY = Capability(
    name="example",
    actions="tests.capabilities.example.actions:ACTIONS",
    reactions="tests.capabilities.example.actions:REACTIONS",
    jobs=(JobSpec("example-digest", "tests.capabilities.example.jobs:digest_job"),),
    admin=("tests.capabilities.example.admin:router",),
    nav=(NavEntry("example.nav", "/admin/example/notes", "settings", 95),),
    migrations="tests.capabilities.example:migrations",
    templates="tests.capabilities.example:templates",
    locales="tests.capabilities.example:locales",
    static="tests.capabilities.example:static",
)
