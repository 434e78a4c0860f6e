"""Instagram Direct through Meta's Messenger Platform: signed webhooks, quick replies, the 24-hour window and
the human-agent tag for operators (docs/channels/instagram.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otklik.platform.plugins import ChannelKind, ConnectForm


def _mask(token: str) -> str:
    return f"{token[:4]}…{token[-4:]}" if len(token) > 16 else "…"


def _detail(config: Mapping[str, Any], _secret: str | None) -> str:
    parts = [str(config.get("page_name") or ""), f"/webhooks/instagram/{config.get('page_id', '')}"]
    if config.get("human_agent"):
        parts.append("human agent: 7 days")
    if config.get("broken"):
        parts.append("⚠ token rejected by Meta: sends wait; connect the account again with a new token")
    return " · ".join(p for p in parts if p)


KIND = ChannelKind(
    kind="instagram",
    label="Instagram Direct",
    sender="otklik.channels.instagram.runtime:instagram_sender",
    inbound=("otklik.channels.instagram.web:router",),
    runtime="otklik.channels.instagram.runtime:InstagramChannels.for_app",
    mask=_mask,
    detail=_detail,
    check="otklik.channels.instagram.admin:check",
    form=ConnectForm(
        "admin/connect_instagram.html",
        "otklik.channels.instagram.admin:connect_form",
        order=17,  # after the WhatsApp kinds
        keep=(("name", 120), ("page_id", 32)),
    ),
    templates="otklik.channels.instagram:templates",
    locales="otklik.channels.instagram:locales",
    cli="otklik.channels.instagram.cli:add",
)
