"""What the kernel itself adds to every install, declared like a capability (see `builtin.py`): its flow
actions and its REST API (contacts, conversations, flows; docs/api.md)."""

from __future__ import annotations

from otklik.platform.plugins import Capability

CAPABILITY = Capability(
    name="conversations",
    actions="otklik.conversations.builtin:ACTIONS",
    api=(
        "otklik.conversations.api.contacts:router",
        "otklik.conversations.api.conversations:router",
        "otklik.conversations.api.flows:router",
    ),
)
