"""The web chat: the page `/chat` and its JSON API, served by this server. Replies are delivered inside the
claiming transaction (long-poll), so the kind has no sender."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otklik.platform.plugins import ChannelKind

ACCOUNT = "webchat"  # the one web-chat account every install has


def _deep_link(_config: Mapping[str, Any], payload: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/chat?start={payload}"


KIND = ChannelKind(
    kind="webchat",
    label="Web chat",
    local=True,
    default_account=ACCOUNT,
    inbound=("otklik.channels.webchat.web:router",),
    deep_link=_deep_link,
    check="otklik.channels.webchat.web:check",
)
