"""The WhatsApp Cloud API `ChannelSender`: the window decides (free-form, a template, or held), `render` lays the
message out, media are uploaded to `/{phone_number_id}/media` and sent by id, Graph errors become `SendError`s."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from otklik.adapters.media import MediaStore
from otklik.channels.whatsapp.graph import GraphClient, GraphError, SpamLimited, TokenRejected, classify
from otklik.channels.whatsapp.render import Step, render, template_body
from otklik.clock import utcnow
from otklik.conversations.window import WindowGuard
from otklik.core.channel import ChannelLimits, SendError, SendResult
from otklik.core.messages import Attachment, OutboundMessage

log = logging.getLogger(__name__)
DEFAULT_LIMITS = ChannelLimits(per_second=80, per_chat_interval=6.0, per_chat_burst=10)
UPLOAD_LIMIT = 100 * 1024 * 1024  # Meta's document limit; images are 5 MB (Meta refuses larger ones itself)

OnAccountEvent = Callable[[str, str], Awaitable[None]]  # (what: "token_rejected" | "spam_limited", detail)


class WhatsAppSender:
    """`ChannelSender` for one business phone number. `recipient` is the customer's wa_id (digits)."""

    kind = "whatsapp"
    supports_idempotency = False  # the Cloud API takes no idempotency key: a lost answer means "uncertain"

    def __init__(
        self,
        graph: GraphClient,
        phone_number_id: str,
        *,
        media: MediaStore | None = None,
        guard: WindowGuard | None = None,
        limits: ChannelLimits = DEFAULT_LIMITS,
        language: str = "en",
        on_account_event: OnAccountEvent | None = None,
        continuation_retries: int = 3,
        max_inline_wait: float = 8.0,
    ) -> None:
        self.graph = graph
        self.phone_number_id = phone_number_id
        self.media = media
        self.guard = guard
        self.limits = limits
        self.language = language
        self.on_account_event = on_account_event
        self.continuation_retries = continuation_retries
        self.max_inline_wait = max_inline_wait

    async def aclose(self) -> None:
        await self.graph.aclose()

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        if not recipient.isdigit():
            raise SendError(f"not a WhatsApp id: {recipient[:40]!r}", permanent=True)
        if self.guard is not None:
            plan = await self.guard.plan(recipient, message, utcnow())
        else:
            plan = None
        if plan is not None and plan.how == "template" and plan.template is not None:
            steps = [Step(template_body(plan.template))]
        elif message.template_only and message.template is not None:
            steps = [Step(template_body(message.template))]
        else:
            steps = render(message, language=self.language)
        if not steps:
            raise SendError("nothing to send: no text, no attachments and no template", permanent=True)
        wamid = ""
        for index, step in enumerate(steps):
            wamid = await self._run(recipient, step, index, len(steps))
        return SendResult(external_id=wamid or None)

    async def _run(self, recipient: str, step: Step, index: int, total: int) -> str:
        """One call; a later part of a split message is retried here (a retry of the whole row would send
        the first parts twice)."""
        attempts = 1 if index == 0 else 1 + self.continuation_retries
        for attempt in range(attempts):
            try:
                body = await self._body(recipient, step)
                return await self.graph.send(self.phone_number_id, body)
            except GraphError as error:
                mapped = classify(error)
                await self._account_event(mapped, error)
            except (httpx.HTTPError, TimeoutError) as error:
                mapped = SendError(f"whatsapp: {type(error).__name__}: {error}"[:300])
            wait = mapped.retry_after or 1.0 * 2**attempt
            if mapped.permanent or mapped.held or wait > self.max_inline_wait or attempt == attempts - 1:
                if index:
                    mapped.args = (f"{mapped} (after {index} of {total} parts were sent)",)
                raise mapped
            log.warning("whatsapp: part %d/%d failed (%s), retrying in %.1fs", index + 1, total, mapped, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _account_event(self, mapped: SendError, error: GraphError) -> None:
        if self.on_account_event is None:
            return
        what = "token_rejected" if isinstance(mapped, TokenRejected) else "spam_limited" if isinstance(mapped, SpamLimited) else ""  # fmt: skip
        if what:
            try:
                await self.on_account_event(what, error.message[:300])
            except Exception:  # recording the account's state must not hide the send's outcome
                log.exception("whatsapp: recording %s failed", what)

    async def _body(self, recipient: str, step: Step) -> dict[str, Any]:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient}
        body.update(step.body)
        if step.attachment is not None and step.media_kind:
            body[step.media_kind] = {**body[step.media_kind], **await self._media_ref(step.attachment)}
        return body

    async def _media_ref(self, attachment: Attachment) -> dict[str, str]:
        """`{"id"}` of the attachment uploaded from the media store, or `{"link"}` for an http(s) URL."""
        if attachment.media_id:
            if self.media is None:
                raise SendError("an attachment refers to the media store, but none is configured", permanent=True)
            try:
                data = await self.media.read(attachment.media_id)
            except KeyError:
                raise SendError(f"media {attachment.media_id} not found", permanent=True) from None
            if len(data) > UPLOAD_LIMIT:
                raise SendError(f"media {attachment.media_id} is over {UPLOAD_LIMIT} bytes", permanent=True)
            mime = attachment.content_type or _guess(attachment.filename) or "application/octet-stream"
            media_id = await self.graph.upload(self.phone_number_id, data, mime, _filename(attachment, mime))
            if not media_id:
                raise SendError("the media upload answered no id")
            return {"id": media_id}
        url = attachment.url or ""
        if url.startswith(("https://", "http://")):
            return {"link": url}
        raise SendError(f"attachment has neither media_id nor a usable url: {url[:80]!r}", permanent=True)


def _guess(filename: str | None) -> str | None:
    return mimetypes.guess_type(filename)[0] if filename else None


def _filename(attachment: Attachment, mime: str) -> str:
    if attachment.filename:
        return attachment.filename
    return ("photo" if attachment.kind == "photo" else "file") + (mimetypes.guess_extension(mime) or "")
