"""WhatsApp Cloud API accounts in the runtime: senders, the inbound side of the webhook (media fetched into the
media store, events to ingest, read marks), and the account's state (broken token, paused marketing)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import ChannelAccount
from otklik.adapters.media import MediaTooLarge
from otklik.channels.whatsapp.adapter import DEFAULT_LIMITS, WhatsAppSender
from otklik.channels.whatsapp.graph import SPAM_PAUSE_SECONDS, GraphClient, GraphError
from otklik.channels.whatsapp.parse import MEDIA_PREFIX, parse_webhook
from otklik.clock import utcnow
from otklik.conversations.context import RuntimeContext
from otklik.conversations.window import WindowGuard, template_from_config
from otklik.core.channel import ChannelLimits, ChannelSender
from otklik.core.messages import Attachment, EventKind, InboundEvent
from otklik.platform.audit import audit

log = logging.getLogger(__name__)
KIND = "whatsapp"


def api_url(config: dict[str, Any], settings: Any) -> str:
    """The account's own Graph URL (an offline demo pointed at the fake) or the install's setting."""
    return str(config.get("api_url") or settings.whatsapp_api_url)


async def set_account_state(db: Database, account_id: int, what: str, detail: str) -> None:
    """Record on the account (its config, shown on the Settings page) that Meta refused its token
    (`broken`) or limited it for spam (`marketing_paused_until`, one hour), and audit it once."""
    now = utcnow()
    async with db.write() as session:
        account = await session.get(ChannelAccount, account_id)
        if account is None:
            return
        config = dict(account.config or {})
        if what == "token_rejected":
            if config.get("broken"):
                return
            config["broken"] = {"at": now.isoformat(), "reason": detail[:300]}
        elif what == "spam_limited":
            config["marketing_paused_until"] = (now + timedelta(seconds=SPAM_PAUSE_SECONDS)).isoformat()
        else:
            return
        account.config = config
        audit(session, "system", f"whatsapp.{what}", "channel_account", str(account_id), {"detail": detail[:300]})
    log.error("whatsapp account %s: %s (%s)", account_id, what, detail)


def whatsapp_sender(account: ChannelAccount, token: str | None, ctx: RuntimeContext) -> ChannelSender:
    """80 msg/s per number and Meta's pair rate (~1 message per 6 s to one user, bursts allowed) unless the
    account says otherwise (`per_second`, `per_chat_interval`, `per_chat_burst`; null = no limit); `per_day`:
    the number's messaging tier (messages per UTC day, shared by every worker; none by default)."""
    config = dict(account.config or {})
    limits = ChannelLimits(
        per_second=config.get("per_second", DEFAULT_LIMITS.per_second),
        per_chat_interval=config.get("per_chat_interval", DEFAULT_LIMITS.per_chat_interval),
        per_chat_burst=int(config.get("per_chat_burst", DEFAULT_LIMITS.per_chat_burst) or 1),
        per_day=int(config["per_day"]) if config.get("per_day") else None,  # the messaging tier, all workers
    )
    guard = WindowGuard(
        ctx.db,
        int(account.id),
        fallback=template_from_config(config),
        margin=float(config.get("window_margin_seconds", 60.0)),
    )
    engine = ctx.engines.get(account.pack)
    language = engine.pack.language if engine is not None else "en"

    async def on_event(what: str, detail: str) -> None:
        await set_account_state(ctx.db, int(account.id), what, detail)

    return WhatsAppSender(
        GraphClient(api_url(config, ctx.settings), token or "", timeout=ctx.settings.send_timeout_seconds),
        str(config.get("phone_number_id") or ""),
        media=ctx.media,
        guard=guard,
        limits=limits,
        language=language,
        on_account_event=on_event,
    )


@dataclass(frozen=True, slots=True)
class Number:
    """What the webhook needs of one connected phone number (secrets decrypted)."""

    account_id: int
    phone_number_id: str
    token: str
    app_secret: str
    verify_token: str
    api_url: str
    mark_read: bool


class WhatsAppChannels:
    """The inbound side of every WhatsApp account of this install, keyed by phone number id."""

    def __init__(self, ctx: RuntimeContext, ingest: Any) -> None:
        self.ctx = ctx
        self.ingest = ingest
        self.numbers: dict[str, Number] = {}
        self._graphs: dict[str, GraphClient] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def for_app(cls, app: Any) -> WhatsAppChannels:
        return cls(app.ctx, app.ingest)

    async def reload(self, app: Any) -> None:
        numbers = await whatsapp_numbers(app.db, app.vault.decrypt, app.settings)
        for pnid, graph in list(self._graphs.items()):
            if numbers.get(pnid) != self.numbers.get(pnid):
                await graph.aclose()
                del self._graphs[pnid]
        self.numbers = numbers

    def number(self, phone_number_id: str) -> Number | None:
        return self.numbers.get(phone_number_id)

    def graph(self, number: Number) -> GraphClient:
        graph = self._graphs.get(number.phone_number_id)
        if graph is None:
            graph = self._graphs[number.phone_number_id] = GraphClient(number.api_url, number.token, timeout=30.0)
        return graph

    async def handle(self, number: Number, payload: dict[str, Any]) -> int:
        """Every event of one verified POST, in timestamp order: media fetched, then ingested (a redelivered
        message is a duplicate there). Exceptions propagate: the webhook answers 500 and Meta redelivers;
        what was ingested before is recognised then. Returns the number of new events."""
        events = parse_webhook(payload, number.account_id, number.phone_number_id)
        new = 0
        last: dict[str, str] = {}
        for event in events:
            if any((a.url or "").startswith(MEDIA_PREFIX) for a in event.attachments):
                event = await self._fetch_media(number, event)
            result = await self.ingest(event)
            if not result.duplicate:
                new += 1
                if event.kind not in (EventKind.STATUS, EventKind.EDITED):
                    last[event.sender_id] = event.external_id
        if number.mark_read and last:
            task = asyncio.get_running_loop().create_task(self._mark_read(number, list(last.values())))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return new

    async def _mark_read(self, number: Number, wamids: list[str]) -> None:
        """The blue ticks for the last message of each sender (cosmetic: failures are logged only)."""
        for wamid in wamids:
            try:
                await self.graph(number).mark_read(number.phone_number_id, wamid)
            except Exception as exc:
                log.info("whatsapp: marking %s read failed: %s", wamid, exc)

    async def _fetch_media(self, number: Number, event: InboundEvent) -> InboundEvent:
        kept: list[Attachment] = []
        errors: list[str] = []
        limit = self.ctx.settings.max_upload_bytes
        for attachment in event.attachments:
            media_id = (attachment.url or "").removeprefix(MEDIA_PREFIX)
            try:
                info = await self.graph(number).media_info(media_id)
                if info.file_size is not None and info.file_size > limit:
                    raise ValueError("too_large")
                content = await self.graph(number).download(info.url, limit)
                content_type = attachment.content_type or info.mime_type
                stored = await self.ctx.media.save(content, content_type, attachment.filename)
            except (ValueError, MediaTooLarge) as exc:
                too_large = isinstance(exc, MediaTooLarge) or "too_large" in str(exc)
                errors.append("too_large" if too_large else "download_failed")
                continue
            except (GraphError, OSError, TimeoutError, httpx.HTTPError) as exc:  # the message is kept without it
                log.warning("whatsapp: media %s of %s not fetched: %s", media_id, event.external_id, exc)
                errors.append("download_failed")
                continue
            kept.append(replace(attachment, media_id=stored.media_id, url=None, size=stored.size, content_type=content_type))  # fmt: skip
        data = dict(event.data)
        if errors:
            data["upload_error"] = errors[0]
            data["max_file_bytes"] = limit
        return replace(event, attachments=tuple(kept), data=data)

    def polling_loops(self) -> dict[str, Any]:
        return {}  # Meta calls us

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for graph in self._graphs.values():
            await graph.aclose()
        self._graphs.clear()


async def whatsapp_numbers(db: Database, decrypt: Any, settings: Any) -> dict[str, Number]:
    numbers: dict[str, Number] = {}
    async with db.read() as session:
        accounts = (
            await session.execute(
                select(ChannelAccount).where(ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True))
            )
        ).scalars()
        for account in accounts:
            config = dict(account.config or {})
            pnid = str(config.get("phone_number_id") or "")
            try:
                numbers[pnid] = Number(
                    int(account.id),
                    pnid,
                    decrypt(account.secret) if account.secret else "",
                    decrypt(config["app_secret"]) if config.get("app_secret") else "",
                    decrypt(config["verify_token"]) if config.get("verify_token") else "",
                    api_url(config, settings),
                    bool(config.get("mark_read", True)),
                )
            except Exception as exc:  # a key change: this number cannot be served, the others can
                log.error("whatsapp account %s: secrets unreadable (%s)", account.id, type(exc).__name__)
    return numbers
