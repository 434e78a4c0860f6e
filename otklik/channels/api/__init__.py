"""The API channel (kind `webhook`): signed JSON webhooks both ways, for a CRM, a site or a custom app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from otklik.platform.plugins import ChannelKind


def _detail(config: Mapping[str, Any], _secret: str | None) -> str:
    return urlsplit(str(config.get("url") or "")).hostname or ""


KIND = ChannelKind(
    kind="webhook",
    label="API",
    sender="otklik.channels.api.adapter:sender_for",
    inbound=("otklik.channels.api.web:router",),
    detail=_detail,
    check="otklik.channels.api.admin:check",
    cli="otklik.channels.api.cli:add",
)
