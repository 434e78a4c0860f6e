"""The console: the terminal is the buyer's chat (`otklik chat`). No account, no inbound route."""

from __future__ import annotations

from otklik.platform.plugins import ChannelKind

KIND = ChannelKind(kind="console", label="Console")
