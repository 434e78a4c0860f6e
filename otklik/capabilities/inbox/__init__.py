"""The operators' inbox: conversations the bot hands over, replies, notes, tags, assignment, canned answers,
"return to bot". Admin pages in `admin*.py`, use cases in `service.py`, reads in `queries.py`."""

from __future__ import annotations

from otklik.platform.plugins import Capability, NavEntry

CAPABILITY = Capability(
    name="inbox",
    admin=(
        "otklik.capabilities.inbox.admin:router",
        "otklik.capabilities.inbox.admin_actions:router",
        "otklik.capabilities.inbox.admin_canned:router",
    ),
    nav=(NavEntry("nav.inbox", "/admin/inbox", "inbox.view", 10),),
    templates="otklik.capabilities.inbox:templates",
    locales="otklik.capabilities.inbox:locales",
    static="otklik.capabilities.inbox:static",
)
