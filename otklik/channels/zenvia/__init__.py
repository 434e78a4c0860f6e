"""WhatsApp through Zenvia's API v2: `X-API-TOKEN`, two subscriptions (MESSAGE IN, MESSAGE_STATUS) calling our
webhook with a secret header, the kernel's 24-hour window and templates (docs/channels/zenvia.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otklik.platform.plugins import ChannelKind, ConnectForm


def _mask(token: str) -> str:
    return f"{token[:3]}…{token[-3:]}" if len(token) > 12 else "…"


def _detail(config: Mapping[str, Any], _secret: str | None) -> str:
    parts = [str(config.get("from") or ""), f"/webhooks/zenvia/{config.get('hook', '')}"]
    if config.get("broken"):
        parts.append("⚠ token rejected by Zenvia: sends wait; connect the sender again with a new token")
    return " · ".join(p for p in parts if p)


KIND = ChannelKind(
    kind="zenvia",
    label="WhatsApp (Zenvia)",
    sender="otklik.channels.zenvia.runtime:zenvia_sender",
    inbound=("otklik.channels.zenvia.web:router",),
    runtime="otklik.channels.zenvia.runtime:ZenviaChannels.for_app",
    mask=_mask,
    detail=_detail,
    check="otklik.channels.zenvia.admin:check",
    form=ConnectForm(
        "admin/connect_zenvia.html",
        "otklik.channels.zenvia.admin:connect_form",
        order=16,  # after WhatsApp Cloud API (15)
        keep=(("name", 120), ("sender", 64)),
    ),
    templates="otklik.channels.zenvia:templates",
    locales="otklik.channels.zenvia:locales",
    cli="otklik.channels.zenvia.cli:add",
)
