"""Connecting a Telegram bot (admin Settings and `otklik channels add telegram`) and testing it."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from otklik.channels.telegram.adapter import InvalidToken, mask_token, validate_token
from otklik.core.errors import InvalidInput, NotFound, Unavailable
from otklik.platform.channel_admin import Check, audit_added, check_name, check_pack
from otklik.platform.plugins import Connected

log = logging.getLogger(__name__)
MAX_TOKEN = 200
_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,120}$")


def check_token(token: str) -> str:
    token = token.strip()
    if len(token) > MAX_TOKEN:
        raise InvalidInput(f"a Telegram bot token is at most {MAX_TOKEN} characters (it looks like 123456:ABC…)")
    if not _TOKEN.match(token):
        raise InvalidInput("this is not a Telegram bot token; it looks like 123456789:AAE… (ask @BotFather)")
    return token


async def connect_telegram(otklik: Any, token: str, name: str, pack: str, actor: str) -> tuple[int, str, bool]:
    """Validate the token with getMe, store the bot (token encrypted), audit. (id, @username, created)."""
    from otklik.channels.telegram.runtime import connect_bot

    token, name = check_token(token), check_name(name)
    check_pack(otklik, pack)
    try:
        account_id, username, created = await connect_bot(otklik, token, name=name or None, pack=pack)
    except InvalidToken as exc:
        raise InvalidInput(str(exc)) from None  # the message holds the masked token only
    except (InvalidInput, NotFound):
        raise
    except Exception as exc:
        log.warning("Telegram getMe failed: %s", type(exc).__name__)
        raise Unavailable("Telegram did not answer; check the network and try again") from None
    if created:
        await audit_added(otklik, actor, account_id, {"kind": "telegram", "username": username, "pack": pack})
    return account_id, username, created


async def connect_form(otklik: Any, fields: Mapping[str, Any], actor: str, _language: str) -> Connected:
    """The Settings page's form (`ChannelKind.form`): post/redirect/get with "connected" or "already there"."""
    account_id, username, created = await connect_telegram(
        otklik,
        str(fields.get("token") or ""),
        str(fields.get("name") or ""),
        str(fields.get("pack") or otklik.settings.default_pack),
        actor,
    )
    return Connected(
        json={"id": account_id, "username": username, "created": created},
        redirect={"notice": "bot_added" if created else "bot_exists", "bot": username},
    )


async def _test_telegram(api_url: str, token: str) -> Check:
    if not token:
        return Check(False, "no token stored")
    try:
        info = await validate_token(api_url, token, request_timeout=10.0)
    except InvalidToken:
        return Check(False, f"Telegram rejected the token {mask_token(token)}")
    except Exception as exc:
        return Check(False, f"Telegram did not answer ({type(exc).__name__})")
    return Check(True, f"Telegram: @{info.username} answers")


async def check(otklik: Any, account: Any, secret: str) -> Check:
    return await _test_telegram(otklik.settings.telegram_api_url, secret)
