"""Zenvia accounts in the runtime: senders, and the inbound side of the webhook. Zenvia counts an answer slower
than about a second as a failure, so the webhook only checks the secret header and parses the body, queues
the events and answers; a worker per account (started on the first event) fetches files into the media store
and ingests, in order. An ingest that fails is retried (3 attempts), then logged with the event's id."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

import httpx
from sqlalchemy import select

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount, Message, OutboxRow
from otklik.adapters.media import MediaTooLarge
from otklik.channels.zenvia.adapter import DEFAULT_LIMITS, ZenviaSender
from otklik.channels.zenvia.api import ZenviaClient, ZenviaError
from otklik.channels.zenvia.parse import FILE_PREFIX
from otklik.clock import utcnow
from otklik.conversations.context import RuntimeContext
from otklik.conversations.window import WindowGuard, template_from_config
from otklik.core.channel import ChannelLimits, ChannelSender
from otklik.core.messages import Attachment, EventKind, InboundEvent
from otklik.platform.audit import audit
from otklik.platform.media_links import media_link

log = logging.getLogger(__name__)
KIND = "zenvia"
INGEST_ATTEMPTS = 3


def api_url(config: dict[str, Any], settings: Any) -> str:
    return str(config.get("api_url") or settings.zenvia_api_url)


async def mark_broken(db: Database, account_id: int, detail: str) -> None:
    """Zenvia refused the token: recorded on the account (the Settings page shows it), audited once."""
    async with db.write() as session:
        account = await session.get(ChannelAccount, account_id)
        if account is None or (account.config or {}).get("broken"):
            return
        account.config = {**(account.config or {}), "broken": {"at": utcnow().isoformat(), "reason": detail[:300]}}
        audit(session, "system", "zenvia.token_rejected", "channel_account", str(account_id), {"detail": detail[:300]})
    log.error("zenvia account %s: token rejected (%s)", account_id, detail)


def zenvia_sender(account: ChannelAccount, token: str | None, ctx: RuntimeContext) -> ChannelSender:
    config = dict(account.config or {})
    limits = ChannelLimits(
        per_second=config.get("per_second", DEFAULT_LIMITS.per_second),
        per_chat_interval=config.get("per_chat_interval", DEFAULT_LIMITS.per_chat_interval),
        per_chat_burst=int(config.get("per_chat_burst", DEFAULT_LIMITS.per_chat_burst) or 1),
    )
    guard = WindowGuard(
        ctx.db,
        int(account.id),
        fallback=template_from_config(config),
        margin=float(config.get("window_margin_seconds", 60.0)),
    )

    async def on_event(_what: str, detail: str) -> None:
        await mark_broken(ctx.db, int(account.id), detail)

    public, secret_key, prefix = ctx.settings.public_url or "", ctx.settings.secret_key, media_prefix(config)

    def link(media_id: str, content_type: str) -> str:
        return media_link(public, prefix, secret_key, media_id, content_type, utcnow())

    return ZenviaSender(
        ZenviaClient(api_url(config, ctx.settings), token or "", timeout=ctx.settings.send_timeout_seconds),
        str(config.get("from") or ""),
        guard=guard,
        limits=limits,
        on_account_event=on_event,
        link=link if public.startswith(("https://", "http://")) else None,
    )


def media_prefix(config: dict[str, Any]) -> str:
    return f"/webhooks/zenvia/{config.get('hook', '')}/media"


@dataclass(frozen=True, slots=True)
class Hook:
    """What the webhook needs of one Zenvia account (secrets decrypted)."""

    account_id: int
    hook: str
    sender: str
    token: str
    secret: str
    api_url: str


class ZenviaChannels:
    """The inbound side of every Zenvia account of this install, keyed by the webhook's path id."""

    def __init__(self, ctx: RuntimeContext, ingest: Any) -> None:
        self.ctx = ctx
        self.ingest = ingest
        self.hooks: dict[str, Hook] = {}
        self._queues: dict[int, asyncio.Queue[tuple[Hook, InboundEvent]]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self.failed: list[str] = []  # external ids given up on (logged; kept for the tests and the bench)

    @classmethod
    def for_app(cls, app: Any) -> ZenviaChannels:
        return cls(app.ctx, app.ingest)

    async def reload(self, app: Any) -> None:
        self.hooks = await zenvia_hooks(app.db, app.vault.decrypt, app.settings)

    def hook(self, hook_id: str) -> Hook | None:
        return self.hooks.get(hook_id)

    def enqueue(self, hook: Hook, events: list[InboundEvent]) -> None:
        """Queue the events of one verified POST (no I/O: the webhook answers right after)."""
        queue = self._queues.get(hook.account_id)
        if queue is None:
            queue = self._queues[hook.account_id] = asyncio.Queue()
        for event in events:
            queue.put_nowait((hook, event))
        worker = self._workers.get(hook.account_id)
        if worker is None or worker.done():
            self._workers[hook.account_id] = asyncio.get_running_loop().create_task(self._work(queue))

    async def drain(self) -> None:
        """Until every queued event was handled (tests, a graceful stop)."""
        for queue in list(self._queues.values()):
            await queue.join()

    async def _work(self, queue: asyncio.Queue[tuple[Hook, InboundEvent]]) -> None:
        while True:
            hook, event = await queue.get()
            try:
                await self._handle(hook, event)
            finally:
                queue.task_done()

    async def _recipient(self, hook: Hook, message_id: str) -> str | None:
        """Zenvia's status events name the message, not the contact: the contact our outbox sent it to."""
        async with self.ctx.db.read() as session:
            found = await session.scalar(
                select(OutboxRow.recipient)
                .join(Message, Message.id == OutboxRow.message_id)
                .where(OutboxRow.channel_account_id == hook.account_id, Message.external_id == message_id)
                .limit(1)
            )
        return str(found) if found is not None else None

    async def _handle(self, hook: Hook, event: InboundEvent) -> None:
        if event.kind == EventKind.STATUS and not event.sender_id:
            recipient = await self._recipient(hook, str(event.data.get("message_external_id") or ""))
            if recipient is None:
                log.info("zenvia: status for an unknown message %s", event.data.get("message_external_id"))
                return
            event = replace(event, sender_id=recipient)
        if any((a.url or "").startswith(FILE_PREFIX) for a in event.attachments):
            event = await self._fetch_files(hook, event)
        for attempt in range(INGEST_ATTEMPTS):
            try:
                await self.ingest(event)
                return
            except Exception:
                if attempt == INGEST_ATTEMPTS - 1:
                    log.exception("zenvia: event %s of account %s not ingested", event.external_id, hook.account_id)
                    self.failed.append(event.external_id)
                    return
                await asyncio.sleep(0.2 * 2**attempt)

    async def _fetch_files(self, hook: Hook, event: InboundEvent) -> InboundEvent:
        kept: list[Attachment] = []
        errors: list[str] = []
        limit = self.ctx.settings.max_upload_bytes
        client = ZenviaClient(hook.api_url, hook.token, timeout=30.0)
        try:
            for attachment in event.attachments:
                url = (attachment.url or "").removeprefix(FILE_PREFIX)
                try:
                    content, mime = await client.download(url, limit)
                    content_type = attachment.content_type or mime
                    stored = await self.ctx.media.save(content, content_type, attachment.filename)
                except (ValueError, MediaTooLarge):
                    errors.append("too_large")
                    continue
                except (ZenviaError, OSError, TimeoutError, httpx.HTTPError) as exc:
                    log.warning("zenvia: file of %s not fetched: %s", event.external_id, type(exc).__name__)
                    errors.append("download_failed")
                    continue
                kept.append(replace(attachment, media_id=stored.media_id, url=None, size=stored.size, content_type=content_type))  # fmt: skip
        finally:
            await client.aclose()
        data = dict(event.data)
        if errors:
            data["upload_error"] = errors[0]
            data["max_file_bytes"] = limit
        return replace(event, attachments=tuple(kept), data=data)

    def polling_loops(self) -> dict[str, Any]:
        return {}  # Zenvia calls us

    async def aclose(self) -> None:
        for task in self._workers.values():
            task.cancel()
        self._workers.clear()


async def zenvia_hooks(db: Database, decrypt: Any, settings: Any) -> dict[str, Hook]:
    hooks: dict[str, Hook] = {}
    async with db.read() as session:
        accounts = (
            await session.execute(
                select(ChannelAccount).where(ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True))
            )
        ).scalars()
        for account in accounts:
            config = dict(account.config or {})
            hook_id = str(config.get("hook") or "")
            try:
                hooks[hook_id] = Hook(
                    int(account.id),
                    hook_id,
                    str(config.get("from") or ""),
                    decrypt(account.secret) if account.secret else "",
                    decrypt(config["webhook_secret"]) if config.get("webhook_secret") else "",
                    api_url(config, settings),
                )
            except Exception as exc:
                log.error("zenvia account %s: secrets unreadable (%s)", account.id, type(exc).__name__)
    return hooks
