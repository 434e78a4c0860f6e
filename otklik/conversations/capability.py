"""What the kernel itself adds to every install, declared like a capability (see `builtin.py`)."""

from __future__ import annotations

from otklik.platform.plugins import Capability

CAPABILITY = Capability(name="conversations", actions="otklik.conversations.builtin:ACTIONS")
