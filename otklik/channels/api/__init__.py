"""The API channel (kind `webhook`): signed JSON webhooks both ways, for a CRM, a site or a custom app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from otklik.platform.plugins import ChannelKind, ConnectForm


def _detail(config: Mapping[str, Any], _secret: str | None) -> str:
    return urlsplit(str(config.get("url") or "")).hostname or ""


KIND = ChannelKind(
    kind="webhook",
    label="API",
    sender="otklik.channels.api.adapter:sender_for",
    inbound=("otklik.channels.api.web:router",),
    detail=_detail,
    check="otklik.channels.api.admin:check",
    form=ConnectForm(
        "admin/connect_webhook.html",
        "otklik.channels.api.admin:connect_form",
        order=30,
        keep=(("name", 120), ("url", 2000)),  # 2000: admin.MAX_URL
    ),
    templates="otklik.channels.api:templates",
    locales="otklik.channels.api:locales",
    cli="otklik.channels.api.cli:add",
)
