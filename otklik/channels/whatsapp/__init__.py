"""WhatsApp Cloud API numbers: Meta's Graph API, signed webhooks, the 24-hour window and templates
(docs/channels/whatsapp.md). The window, templates and receipts live in the kernel
(`otklik.conversations.window`, `Ingest._status`) so other WhatsApp providers reuse them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otklik.platform.plugins import ChannelKind, ConnectForm


def _mask(token: str) -> str:
    return f"{token[:4]}…{token[-4:]}" if len(token) > 16 else "…"


def _detail(config: Mapping[str, Any], _secret: str | None) -> str:
    parts = [f"+{config['display_phone_number']}" if config.get("display_phone_number") else ""]
    parts.append(f"/webhooks/whatsapp/{config.get('phone_number_id', '')}")
    if config.get("broken"):
        parts.append("⚠ token rejected by Meta: sends wait; connect the number again with a new token")
    if config.get("marketing_paused_until"):
        parts.append(f"⚠ spam limit: marketing paused until {config['marketing_paused_until']}")
    return " · ".join(p for p in parts if p)


KIND = ChannelKind(
    kind="whatsapp",
    label="WhatsApp",
    sender="otklik.channels.whatsapp.runtime:whatsapp_sender",
    inbound=("otklik.channels.whatsapp.web:router",),
    runtime="otklik.channels.whatsapp.runtime:WhatsAppChannels.for_app",
    mask=_mask,
    detail=_detail,
    check="otklik.channels.whatsapp.admin:check",
    form=ConnectForm(
        "admin/connect_whatsapp.html",
        "otklik.channels.whatsapp.admin:connect_form",
        order=15,  # after Telegram (10), before Wildberries (20)
        keep=(("name", 120), ("phone_number_id", 32), ("waba_id", 32)),
    ),
    templates="otklik.channels.whatsapp:templates",
    locales="otklik.channels.whatsapp:locales",
    cli="otklik.channels.whatsapp.cli:add",
    commands=(("whatsapp", "otklik.channels.whatsapp.cli:app"),),
    admin=("otklik.channels.whatsapp.admin:router",),
    manage="/admin/whatsapp/{id}/templates",
)
