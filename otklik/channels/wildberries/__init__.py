"""Wildberries seller API keys (kind `wildberries`): reviews, product cards and the buyer chat. The key is
the account; the care and cashback capabilities read with it through `otklik.adapters.wildberries`; the
buyer chat (`chat.py`) turns on when the key has the "Buyers chat" category. `marketplace=True`: WB's chat
rules apply to every word sent in it (see docs/channels/wildberries-chat.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otklik.platform.plugins import ChannelKind, ConnectForm


def _detail(config: Mapping[str, Any], secret: str | None) -> str:
    """`expires 2026-05-01` from the token's own payload (never the token)."""
    if config.get("demo"):
        return "demo"
    if not secret:
        return ""
    from otklik.adapters.wildberries import inspect_token

    try:
        info = inspect_token(secret)
    except Exception:
        return ""
    chat = "chat on" if "buyer_chat" in info.categories else "chat off (no “Buyers chat” category)"
    return f"expires {info.expires_at.date().isoformat()} · {chat}" if info.expires_at else chat


KIND = ChannelKind(
    kind="wildberries",
    label="Wildberries",
    marketplace=True,
    sender="otklik.channels.wildberries.chat:chat_sender",
    runtime="otklik.channels.wildberries.chat:WBChatChannels.for_app",
    detail=_detail,
    check="otklik.channels.wildberries.admin:check",
    form=ConnectForm(
        "admin/connect_wildberries.html",
        "otklik.channels.wildberries.admin:connect_form",
        order=20,
        keep=(("name", 120),),
    ),
    templates="otklik.channels.wildberries:templates",
    locales="otklik.channels.wildberries:locales",
    cli="otklik.channels.wildberries.cli:add",
)
