"""Instagram accounts in the runtime: senders (with the window and the human-agent tag), and the inbound side
of the webhook (attachments fetched into the media store, events to ingest, "seen" marks)."""

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
from otklik.channels.instagram.adapter import DEFAULT_LIMITS, InstagramSender
from otklik.channels.instagram.graph import GraphClient, GraphError
from otklik.channels.instagram.parse import MEDIA_PREFIX, parse_webhook
from otklik.clock import utcnow
from otklik.conversations.context import RuntimeContext
from otklik.core.channel import ChannelLimits, ChannelSender
from otklik.core.messages import Attachment, EventKind, InboundEvent
from otklik.platform.audit import audit
from otklik.platform.media_links import media_link

log = logging.getLogger(__name__)
KIND = "instagram"
_OUTBOX_KEY = "otklik-outbox-"


def api_url(config: dict[str, Any], settings: Any) -> str:
    return str(config.get("api_url") or settings.instagram_api_url)


async def mark_broken(db: Database, account_id: int, detail: str) -> None:
    async with db.write() as session:
        account = await session.get(ChannelAccount, account_id)
        if account is None or (account.config or {}).get("broken"):
            return
        account.config = {**(account.config or {}), "broken": {"at": utcnow().isoformat(), "reason": detail[:300]}}
        audit(session, "system", "instagram.token_rejected", "channel_account", str(account_id), {"detail": detail[:300]})  # fmt: skip
    log.error("instagram account %s: token rejected (%s)", account_id, detail)


def author_lookup(db: Database) -> Any:
    """The author (bot / operator / system) of the message an outbox row carries, from the dispatcher's
    idempotency key (`otklik-outbox-<row id>`); None when it is not one."""

    async def author_of(key: str) -> str | None:
        raw = key.removeprefix(_OUTBOX_KEY)
        if not key.startswith(_OUTBOX_KEY) or not raw.isdigit() or len(raw) > 18:
            return None
        async with db.read() as session:
            author = await session.scalar(
                select(Message.author)
                .join(OutboxRow, OutboxRow.message_id == Message.id)
                .where(OutboxRow.id == int(raw))
            )
        return str(author) if author is not None else None

    return author_of


def instagram_sender(account: ChannelAccount, token: str | None, ctx: RuntimeContext) -> ChannelSender:
    config = dict(account.config or {})
    limits = ChannelLimits(
        per_second=config.get("per_second", DEFAULT_LIMITS.per_second),
        per_chat_interval=config.get("per_chat_interval", DEFAULT_LIMITS.per_chat_interval),
        per_chat_burst=int(config.get("per_chat_burst", DEFAULT_LIMITS.per_chat_burst) or 1),
    )

    async def on_event(_what: str, detail: str) -> None:
        await mark_broken(ctx.db, int(account.id), detail)

    public, secret_key = ctx.settings.public_url or "", ctx.settings.secret_key
    prefix = f"/webhooks/instagram/{config.get('page_id', '')}/media"

    def link(media_id: str, content_type: str) -> str:
        return media_link(public, prefix, secret_key, media_id, content_type, utcnow())

    return InstagramSender(
        GraphClient(api_url(config, ctx.settings), token or "", timeout=ctx.settings.send_timeout_seconds),
        str(config.get("page_id") or ""),
        db=ctx.db,
        account_id=int(account.id),
        human_agent=bool(config.get("human_agent", False)),
        author_of=author_lookup(ctx.db),
        limits=limits,
        margin=float(config.get("window_margin_seconds", 60.0)),
        on_account_event=on_event,
        link=link if public.startswith(("https://", "http://")) else None,
    )


@dataclass(frozen=True, slots=True)
class Page:
    account_id: int
    page_id: str
    token: str
    app_secret: str
    verify_token: str
    api_url: str
    mark_seen: bool


class InstagramChannels:
    """The inbound side of every Instagram account of this install, keyed by Facebook page id."""

    def __init__(self, ctx: RuntimeContext, ingest: Any) -> None:
        self.ctx = ctx
        self.ingest = ingest
        self.pages: dict[str, Page] = {}
        self._graphs: dict[str, GraphClient] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def for_app(cls, app: Any) -> InstagramChannels:
        return cls(app.ctx, app.ingest)

    async def reload(self, app: Any) -> None:
        pages = await instagram_pages(app.db, app.vault.decrypt, app.settings)
        for page_id, graph in list(self._graphs.items()):
            if pages.get(page_id) != self.pages.get(page_id):
                await graph.aclose()
                del self._graphs[page_id]
        self.pages = pages

    def page(self, page_id: str) -> Page | None:
        return self.pages.get(page_id)

    def graph(self, page: Page) -> GraphClient:
        graph = self._graphs.get(page.page_id)
        if graph is None:
            graph = self._graphs[page.page_id] = GraphClient(page.api_url, page.token, timeout=30.0)
        return graph

    async def handle(self, page: Page, payload: dict[str, Any]) -> int:
        """Every event of one verified POST, in timestamp order. Exceptions propagate (500: Meta redelivers,
        and what was ingested before is recognised by its ids). Returns the number of new events."""
        new = 0
        senders: set[str] = set()
        for event in parse_webhook(payload, page.account_id):
            if any((a.url or "").startswith(MEDIA_PREFIX) for a in event.attachments):
                event = await self._fetch_media(page, event)
            result = await self.ingest(event)
            if not result.duplicate:
                new += 1
                if event.kind != EventKind.STATUS:
                    senders.add(event.sender_id)
        if page.mark_seen and senders:
            task = asyncio.get_running_loop().create_task(self._mark_seen(page, sorted(senders)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return new

    async def _mark_seen(self, page: Page, senders: list[str]) -> None:
        for igsid in senders:
            try:
                await self.graph(page).mark_seen(page.page_id, igsid)
            except Exception as exc:
                log.info("instagram: mark_seen for %s failed: %s", igsid, exc)

    async def _fetch_media(self, page: Page, event: InboundEvent) -> InboundEvent:
        kept: list[Attachment] = []
        errors: list[str] = []
        limit = self.ctx.settings.max_upload_bytes
        for attachment in event.attachments:
            url = (attachment.url or "").removeprefix(MEDIA_PREFIX)
            try:
                content, mime = await self.graph(page).download(url, limit)
                stored = await self.ctx.media.save(content, mime, attachment.filename)
            except (ValueError, MediaTooLarge):
                errors.append("too_large")
                continue
            except (GraphError, OSError, TimeoutError, httpx.HTTPError) as exc:
                log.warning("instagram: attachment of %s not fetched: %s", event.external_id, type(exc).__name__)
                errors.append("download_failed")
                continue
            kept.append(replace(attachment, media_id=stored.media_id, url=None, size=stored.size, content_type=mime))
        data = dict(event.data)
        if errors:
            data["upload_error"] = errors[0]
            data["max_file_bytes"] = limit
        return replace(event, attachments=tuple(kept), data=data)

    def polling_loops(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for graph in self._graphs.values():
            await graph.aclose()
        self._graphs.clear()


async def instagram_pages(db: Database, decrypt: Any, settings: Any) -> dict[str, Page]:
    pages: dict[str, Page] = {}
    async with db.read() as session:
        accounts = (
            await session.execute(
                select(ChannelAccount).where(ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True))
            )
        ).scalars()
        for account in accounts:
            config = dict(account.config or {})
            page_id = str(config.get("page_id") or "")
            try:
                pages[page_id] = Page(
                    int(account.id),
                    page_id,
                    decrypt(account.secret) if account.secret else "",
                    decrypt(config["app_secret"]) if config.get("app_secret") else "",
                    decrypt(config["verify_token"]) if config.get("verify_token") else "",
                    api_url(config, settings),
                    bool(config.get("mark_seen", True)),
                )
            except Exception as exc:
                log.error("instagram account %s: secrets unreadable (%s)", account.id, type(exc).__name__)
    return pages
