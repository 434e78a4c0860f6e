"""The Instagram Direct `ChannelSender` (Messenger Platform): the 24-hour window decides, the message is laid
out for Instagram, Meta's errors become `SendError`s.

- **The window.** Inside 24 hours of the customer's last message anything goes (`messaging_type: RESPONSE`).
  After it, an operator's reply (a message whose author is `operator`) goes with the `HUMAN_AGENT` tag for up
  to 7 days when the account enables it (`human_agent: true`: Meta grants the permission to the app); the bot's
  messages, and everything after 7 days, are **held** (released by the customer's next message). Instagram
  has no templates.
- text ≤ 1000 characters per message, split beyond; quick replies ≤ 13 (titles ≤ 20 characters, payloads
  ≤ 1000) on the last part; beyond that, numbered text; images by https URL (`attachment.type: image`); a file
  kept only in the media store goes as its caption or name with a note (docs/channels/instagram.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx

from otklik.channels.instagram.graph import GraphClient, GraphError, TokenRejected, classify
from otklik.clock import utcnow
from otklik.conversations.window import WINDOW, is_open, last_inbound
from otklik.core.channel import ChannelLimits, SendError, SendResult
from otklik.core.messages import Button, OutboundMessage, degrade_buttons

log = logging.getLogger(__name__)
DEFAULT_LIMITS = ChannelLimits(per_second=20, per_chat_interval=1.0, per_chat_burst=5)
TEXT_LIMIT = 1000
QUICK_MAX, QUICK_TITLE, QUICK_PAYLOAD = 13, 20, 1000
HUMAN_AGENT_WINDOW = timedelta(days=7)

OnAccountEvent = Callable[[str, str], Awaitable[None]]
AuthorOf = Callable[[str], Awaitable[str | None]]  # idempotency key → the message's author


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        chunks.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        chunks.append(text)
    return chunks


def quick_replies_fit(buttons: tuple[Button, ...]) -> bool:
    return (
        0 < len(buttons) <= QUICK_MAX
        and all(0 < len(b.title.strip()) <= QUICK_TITLE for b in buttons)
        and all(0 < len(b.payload) <= QUICK_PAYLOAD for b in buttons)
        and len({b.payload for b in buttons}) == len(buttons)
    )


LinkOf = Callable[[str, str], str]  # (media id, content type) → a signed public URL of the media store's file


def render(message: OutboundMessage, link: LinkOf | None = None) -> list[dict[str, Any]]:
    """The `message` objects, in order; empty when there is nothing to send. A file of the media store goes by a
    signed link (`link`, when the install has a public URL), else as a text note."""
    if message.buttons and not quick_replies_fit(message.buttons):
        message = degrade_buttons(message)
    out: list[dict[str, Any]] = []
    for attachment in message.attachments:
        url = attachment.url or ""
        if attachment.media_id and link is not None:
            url = link(attachment.media_id, attachment.content_type or "application/octet-stream")
        if attachment.kind == "photo" and url.startswith(("https://", "http://")):
            out.append({"attachment": {"type": "image", "payload": {"url": url[:2000]}}})
        elif url.startswith(("https://", "http://")):
            out.append({"attachment": {"type": "file", "payload": {"url": url[:2000]}}})
        else:
            out.append({"text": f"📎 {attachment.caption or attachment.filename or attachment.kind}"[:TEXT_LIMIT]})
    chunks = split_text(message.text)
    if message.buttons and not chunks:
        chunks = ["⬇️"]
    out += [{"text": c} for c in chunks]
    if message.buttons and out:
        last = next(m for m in reversed(out) if "text" in m)
        last["quick_replies"] = [
            {"content_type": "text", "title": b.title.strip(), "payload": b.payload} for b in message.buttons
        ]
    return out


class InstagramSender:
    """`ChannelSender` for one Instagram professional account (through its Facebook page). `recipient` is the
    customer's Instagram-scoped id (IGSID)."""

    kind = "instagram"
    supports_idempotency = False

    def __init__(
        self,
        graph: GraphClient,
        page_id: str,
        *,
        db: Any = None,
        account_id: int = 0,
        human_agent: bool = False,
        author_of: AuthorOf | None = None,
        limits: ChannelLimits = DEFAULT_LIMITS,
        margin: float = 60.0,
        on_account_event: OnAccountEvent | None = None,
        link: LinkOf | None = None,
        continuation_retries: int = 3,
        max_inline_wait: float = 8.0,
    ) -> None:
        self.graph = graph
        self.page_id = page_id
        self.db = db
        self.account_id = account_id
        self.human_agent = human_agent
        self.author_of = author_of
        self.limits = limits
        self.margin = timedelta(seconds=margin)
        self.on_account_event = on_account_event
        self.link = link
        self.continuation_retries = continuation_retries
        self.max_inline_wait = max_inline_wait

    async def aclose(self) -> None:
        await self.graph.aclose()

    async def messaging(self, recipient: str, idempotency_key: str) -> dict[str, str]:
        """`RESPONSE` inside the window, `MESSAGE_TAG` + `HUMAN_AGENT` for an operator's reply within 7 days
        when enabled, else `SendError(held=True)`."""
        if self.db is None:
            return {"messaging_type": "RESPONSE"}
        now = utcnow()
        last = await last_inbound(self.db, self.account_id, recipient)
        if is_open(last, now, self.margin):
            return {"messaging_type": "RESPONSE"}
        within_7_days = last is not None and now < last + HUMAN_AGENT_WINDOW - self.margin
        if (
            self.human_agent
            and within_7_days
            and self.author_of is not None
            and await self.author_of(idempotency_key) == "operator"
        ):
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        hours = int(WINDOW.total_seconds() // 3600)
        if last is None:
            why = "the customer never wrote to this account"
        elif within_7_days:
            why = f"outside the {hours}-hour window"
        else:
            why = "more than 7 days after the customer's last message"
        raise SendError(
            f"held: {why}; Instagram allows only replies to the customer's last message"
            " (operators: up to 7 days with the human-agent tag when enabled); it goes when the customer writes again",
            held=True,
        )

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        if not recipient.isdigit() or len(recipient) > 40:
            raise SendError(f"not an Instagram-scoped id: {recipient[:40]!r}", permanent=True)
        parts = render(message, self.link)
        if not parts:
            raise SendError("nothing to send: no text and no attachments", permanent=True)
        how = await self.messaging(recipient, idempotency_key)
        mid = ""
        for index, part in enumerate(parts):
            body = {"recipient": {"id": recipient}, **how, "message": part}
            mid = await self._run(body, index, len(parts))
        return SendResult(external_id=mid or None)

    async def _run(self, body: dict[str, Any], index: int, total: int) -> str:
        attempts = 1 if index == 0 else 1 + self.continuation_retries
        for attempt in range(attempts):
            try:
                return await self.graph.send(self.page_id, body)
            except GraphError as error:
                mapped = classify(error)
                if isinstance(mapped, TokenRejected) and self.on_account_event is not None:
                    try:
                        await self.on_account_event("token_rejected", error.message[:300])
                    except Exception:
                        log.exception("instagram: recording the refused token failed")
            except (httpx.HTTPError, TimeoutError) as error:
                mapped = SendError(f"instagram: {type(error).__name__}: {error}"[:300])
            wait = mapped.retry_after or 1.0 * 2**attempt
            if mapped.permanent or mapped.held or wait > self.max_inline_wait or attempt == attempts - 1:
                if index:
                    mapped.args = (f"{mapped} (after {index} of {total} parts were sent)",)
                raise mapped
            log.warning("instagram: part %d/%d failed (%s), retrying in %.1fs", index + 1, total, mapped, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")
