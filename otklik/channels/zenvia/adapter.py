"""The Zenvia `ChannelSender` (WhatsApp through Zenvia's API v2): the kernel's window guard decides (free-form,
a template, or held), the message becomes `contents` (one POST per content), Zenvia's errors `SendError`s.

- text ≤ 4096 characters per content, split beyond; buttons are rendered as numbered text (the buyer answers
  with the number or the title, as on channels without buttons);
- attachments go as `file` contents (`fileUrl`, `fileMimeType`, `fileCaption`, `fileName`): an https URL as
  it is, a file of the media store by a signed, expiring link to our webhook path (Zenvia fetches files by
  URL; `otklik.platform.media_links`); without a public URL such a file goes as its caption or name;
- templates: `{"type": "template", "templateId", "fields": {name: value}}`, the flow's parameters given to the
  template's fields in the order they appear in its body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from otklik.channels.zenvia.api import TokenRejected, ZenviaClient, ZenviaError, classify
from otklik.channels.zenvia.parse import field_names
from otklik.clock import utcnow
from otklik.conversations.window import TemplateInfo, WindowGuard
from otklik.core.channel import ChannelLimits, SendError, SendResult
from otklik.core.messages import OutboundMessage, TemplateRef, degrade_buttons

log = logging.getLogger(__name__)
DEFAULT_LIMITS = ChannelLimits(per_second=20, per_chat_interval=6.0, per_chat_burst=10)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

OnAccountEvent = Callable[[str, str], Awaitable[None]]


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


LinkOf = Callable[[str, str], str]  # (media id, content type) → a signed public URL of the media store's file


def render(message: OutboundMessage, link: LinkOf | None = None) -> list[dict[str, Any]]:
    """The contents, in order; empty when there is nothing to send. A file of the media store goes by a signed
    link (`link`, when the install has a public URL), else as a text note."""
    if message.buttons:
        message = degrade_buttons(message)
    contents: list[dict[str, Any]] = [{"type": "text", "text": c} for c in split_text(message.text)]
    for attachment in message.attachments:
        url = attachment.url or ""
        if attachment.media_id and link is not None:
            url = link(attachment.media_id, attachment.content_type or "application/octet-stream")
        if url.startswith(("https://", "http://")):
            file: dict[str, Any] = {"type": "file", "fileUrl": url[:2000]}
            if attachment.content_type:
                file["fileMimeType"] = attachment.content_type
            if attachment.caption:
                file["fileCaption"] = attachment.caption[:CAPTION_LIMIT]
            if attachment.filename:
                file["fileName"] = attachment.filename[:240]
            contents.append(file)
        else:
            label = attachment.caption or attachment.filename or attachment.kind
            contents.append({"type": "text", "text": f"📎 {label}"[:TEXT_LIMIT]})
    return contents


def template_content(ref: TemplateRef, info: TemplateInfo) -> dict[str, Any]:
    names = field_names(info.body)
    return {
        "type": "template",
        "templateId": info.provider_id,
        "fields": {name: (value[:1024] or "-") for name, value in zip(names, ref.params, strict=False)},
    }


class ZenviaSender:
    """`ChannelSender` for one Zenvia WhatsApp sender. `recipient` is the customer's Zenvia id (the phone)."""

    kind = "zenvia"
    supports_idempotency = False

    def __init__(
        self,
        client: ZenviaClient,
        sender: str,
        *,
        guard: WindowGuard | None = None,
        limits: ChannelLimits = DEFAULT_LIMITS,
        on_account_event: OnAccountEvent | None = None,
        link: LinkOf | None = None,
        continuation_retries: int = 3,
        max_inline_wait: float = 8.0,
    ) -> None:
        self.client = client
        self.sender = sender
        self.guard = guard
        self.limits = limits
        self.on_account_event = on_account_event
        self.link = link
        self.continuation_retries = continuation_retries
        self.max_inline_wait = max_inline_wait

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        if not recipient or len(recipient) > 64:
            raise SendError(f"not a Zenvia contact: {recipient[:40]!r}", permanent=True)
        contents: list[dict[str, Any]]
        if self.guard is not None:
            plan = await self.guard.plan(recipient, message, utcnow())
            if plan.how == "template" and plan.template is not None and plan.info is not None:
                contents = [template_content(plan.template, plan.info)]
            else:
                contents = render(message, self.link)
        else:
            contents = render(message, self.link)
        if not contents:
            raise SendError("nothing to send: no text, no attachments and no template", permanent=True)
        message_id = ""
        for index, content in enumerate(contents):
            message_id = await self._run(recipient, content, index, len(contents))
        return SendResult(external_id=message_id or None)

    async def _run(self, recipient: str, content: dict[str, Any], index: int, total: int) -> str:
        """One POST; a later part of a split message is retried here (retrying the row would repeat parts)."""
        attempts = 1 if index == 0 else 1 + self.continuation_retries
        for attempt in range(attempts):
            try:
                return await self.client.send(self.sender, recipient, [content])
            except ZenviaError as error:
                mapped = classify(error, error.retry_after)
                if isinstance(mapped, TokenRejected) and self.on_account_event is not None:
                    try:
                        await self.on_account_event("token_rejected", error.message[:300])
                    except Exception:
                        log.exception("zenvia: recording the refused token failed")
            except (httpx.HTTPError, TimeoutError) as error:
                mapped = SendError(f"zenvia: {type(error).__name__}: {error}"[:300])
            wait = mapped.retry_after or 1.0 * 2**attempt
            if mapped.permanent or mapped.held or wait > self.max_inline_wait or attempt == attempts - 1:
                if index:
                    mapped.args = (f"{mapped} (after {index} of {total} parts were sent)",)
                raise mapped
            log.warning("zenvia: part %d/%d failed (%s), retrying in %.1fs", index + 1, total, mapped, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")
