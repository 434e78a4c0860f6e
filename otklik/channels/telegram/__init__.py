"""Telegram bots: aiogram against the Bot API, webhooks or long polling, deep links `t.me/<bot>?start=`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otklik.platform.plugins import ChannelKind, ConnectForm


def _mask(token: str) -> str:
    from otklik.channels.telegram.adapter import mask_token

    return mask_token(token)


def _detail(config: Mapping[str, Any], _secret: str | None) -> str:
    return f"@{config['username']}" if config.get("username") else ""


def _deep_link(config: Mapping[str, Any], payload: str, _base_url: str) -> str | None:
    username = config.get("username")
    return f"https://t.me/{username}?start={payload}" if username else None


KIND = ChannelKind(
    kind="telegram",
    label="Telegram",
    sender="otklik.channels.telegram.runtime:telegram_sender",
    inbound=("otklik.channels.telegram.web:router",),
    runtime="otklik.channels.telegram.runtime:TelegramChannels.for_app",
    deep_link=_deep_link,
    mask=_mask,
    detail=_detail,
    check="otklik.channels.telegram.admin:check",
    form=ConnectForm(
        "admin/connect_telegram.html",
        "otklik.channels.telegram.admin:connect_form",
        order=10,
        keep=(("name", 120),),
        notices=(("bot_added", "settings.bot_added"), ("bot_exists", "settings.bot_exists")),
    ),
    templates="otklik.channels.telegram:templates",
    locales="otklik.channels.telegram:locales",
    configured="otklik.channels.telegram.runtime:connect_configured",
    cli="otklik.channels.telegram.cli:add",
    commands=(("telegram", "otklik.channels.telegram.cli:app"), ("qr", "otklik.channels.telegram.cli:qr")),
)
