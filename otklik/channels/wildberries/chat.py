"""The Wildberries buyer chat as a channel: the sender (`POST /api/v1/seller/message`) and the runtime that
polls `GET /api/v1/seller/events` for every account whose token has the "Buyers chat" category.

Polling, and why nothing is lost or answered twice:

- one loop per seller account calls `events` with the stored `next` cursor, at most once every
  `wb_chat_poll_seconds` (3 s) while nothing comes, at once while pages are full — always through the
  account's `buyer_chat` bucket (10 requests / 10 s, shared with the sender); a 429 waits as WB says, an
  outage backs off, a refused token waits long and says so in the log;
- every event of a page is ingested (the kernel's `inbound_events` keeps its `eventID`: a redelivered
  event is a duplicate, not a second answer); only then is the page's `next` stored. A crash before
  that re-reads the page after the restart: the events already ingested are duplicates, none is lost;
- an event whose file is still in moderation (download 202) is held back with the cursor state and
  retried after WB's `retrySeconds` (later events of that chat wait behind it, so a chat keeps its
  order); a file that failed moderation (451) reaches the flow as an upload error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

from otklik.adapters.media import MediaTooLarge
from otklik.adapters.wildberries import (
    WBAuthError,
    WBBadRequest,
    WBError,
    WBRateLimited,
    WBUnavailable,
    inspect_token,
)
from otklik.adapters.wildberries.accounts import KIND, WBAccount, client_for
from otklik.adapters.wildberries.client import CHAT_FILE_MAX, CHAT_FILE_TYPES, CHAT_FILES_TOTAL_MAX, CHAT_MESSAGE_MAX
from otklik.adapters.wildberries.errors import WBFilePending, WBFileRejected, WBInvalidSignature
from otklik.adapters.wildberries.ratelimit import RetryPolicy
from otklik.adapters.wildberries.schemas import ChatInfo
from otklik.channels.wildberries import store
from otklik.channels.wildberries.parse import DOWNLOAD_PREFIX, Parsed, parse_event
from otklik.conversations.context import RuntimeContext
from otklik.core.channel import ChannelLimits, SendError, SendResult
from otklik.core.messages import Attachment, InboundEvent, OutboundMessage, degrade_buttons

log = logging.getLogger(__name__)

CHAT_CATEGORY = "buyer_chat"
MAX_HELD = 200  # events waiting for a file in moderation, per account; past it they go on without the file
MAX_HOLD_TRIES = 20  # ~10 minutes at WB's usual 30 s: then the event goes on with "still in moderation"
SEND_RETRY = RetryPolicy(max_attempts=2, backoff_base=0.5, backoff_max=2.0, max_retry_after=3.0)
POLL_RETRY = RetryPolicy(max_attempts=2, backoff_base=0.5, backoff_max=2.0, max_retry_after=10.0)
_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "… ", "; ", ", ", " ")


def chat_enabled(token: str | None) -> bool:
    """The chat turns on for an account whose token has the "Buyers chat" category."""
    if not token:
        return False
    try:
        return CHAT_CATEGORY in inspect_token(token).categories
    except ValueError:
        return False


def split_message(text: str, limit: int = CHAT_MESSAGE_MAX) -> list[str]:
    """Chunks of at most `limit` characters, cut at a paragraph, a line, then a sentence end, then a
    word; inside a word only when one word is longer than the limit."""
    chunks: list[str] = []
    rest = text.strip()
    while rest:
        if len(rest) <= limit:
            chunks.append(rest)
            break
        window = rest[: limit + 1]
        cut = 0
        for sep in _BREAKS:
            pos = window.rfind(sep, 0, limit)
            if pos >= limit // 3:
                cut = pos + (len(sep.rstrip()) if sep.strip() else 0)
                break
        if cut <= 0:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [c for c in chunks if c]


# --- sending -------------------------------------------------------------------------------------------


class WBChatSender:
    """`ChannelSender` of a WB account: one message may become several WB messages (≤ 1000 characters
    each); files go with the last one. No idempotency keys on WB's side: a send cut off by a crash is not
    repeated (`uncertain` in the outbox)."""

    kind = KIND
    supports_idempotency = False

    def __init__(self, account: WBAccount, ctx: RuntimeContext, *, enabled: bool) -> None:
        self.account = account
        self.ctx = ctx
        self.enabled = enabled
        # WB: 10 requests / 10 s per seller for chats, events and messages together; the bucket paces it
        self.limits = ChannelLimits(per_second=1.0, per_chat_interval=None)
        self._client = (
            client_for(account, ctx.settings, limiters=ctx.wb_limiters, retry=SEND_RETRY, timeout=30.0)
            if account.token
            else None
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def send(self, recipient: str, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        if self._client is None or not self.enabled:
            raise SendError(
                "the Wildberries buyer chat is off for this account: its token lacks the “Buyers chat” category",
                permanent=True,
            )
        message = degrade_buttons(message)  # no buttons in WB chat: a numbered list the flows understand
        files = await self._files(message.attachments)
        captions = [a.caption for a in message.attachments if a.caption]
        text = "\n".join([message.text, *captions]).strip() if captions else message.text
        chunks = split_message(text) or [""]
        sign = await self._sign(recipient)
        last = None
        for index, chunk in enumerate(chunks):
            with_files = files if index == len(chunks) - 1 else []
            try:
                last, sign = await self._send_one(recipient, sign, chunk, with_files)
            except SendError as exc:
                if index:
                    exc.args = (f"{exc} (after {index} of {len(chunks)} parts were sent)",)
                    exc.permanent = True  # a retry would repeat the parts the buyer already has
                raise
        return SendResult(external_id=f"{recipient}:{last}" if last else None)

    async def _send_one(
        self, chat_id: str, sign: str, text: str, files: list[tuple[str, bytes, str]]
    ) -> tuple[int | None, str]:
        assert self._client is not None
        for attempt in (1, 2):
            try:
                sent = await self._client.send_chat_message(sign, text, files)
                return sent.add_time, sent.sign or sign
            except WBInvalidSignature as exc:
                if attempt == 2:
                    raise SendError(f"WB refused the chat's signature twice: {exc.error_text}", permanent=True) from exc
                sign = await self._sign(chat_id, refresh=True)  # the sign changed: refresh it once
            except WBRateLimited as exc:
                raise SendError(str(exc), retry_after=exc.retry_after or 10.0) from exc
            except WBUnavailable as exc:
                if exc.maybe_applied:  # WB does not de-duplicate: never send it blindly again
                    raise SendError(f"{exc}; not repeated (the buyer may have it)", permanent=True) from exc
                raise SendError(str(exc)) from exc
            except WBAuthError as exc:
                raise SendError(f"Wildberries refused the token: {exc}", permanent=True) from exc
            except WBBadRequest as exc:
                raise SendError(str(exc), permanent=True) from exc
            except WBError as exc:
                raise SendError(str(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _sign(self, chat_id: str, *, refresh: bool = False) -> str:
        row = None if refresh else await store.chat_row(self.ctx.db, self.account.id, chat_id)
        if row is not None and row.reply_sign:
            return row.reply_sign
        assert self._client is not None
        try:
            chats = await self._client.list_chats()
        except WBRateLimited as exc:
            raise SendError(str(exc), retry_after=exc.retry_after or 10.0) from exc
        except WBAuthError as exc:
            raise SendError(f"Wildberries refused the token: {exc}", permanent=True) from exc
        except WBError as exc:
            raise SendError(f"cannot refresh the chat's signature: {exc}") from exc
        await remember_chats(self.ctx, self.account.id, chats)
        found = next((c for c in chats if c.chat_id == chat_id), None)
        if found is None or not found.reply_sign:
            raise SendError(f"Wildberries does not list chat {chat_id[:60]!r}", permanent=True)
        return found.reply_sign

    async def _files(self, attachments: tuple[Attachment, ...]) -> list[tuple[str, bytes, str]]:
        out: list[tuple[str, bytes, str]] = []
        for n, attachment in enumerate(attachments, start=1):
            if not attachment.media_id:
                raise SendError("WB chat takes files only from the media store (no links)", permanent=True)
            try:
                data = await self.ctx.media.read(attachment.media_id)
            except KeyError as exc:
                raise SendError(f"media {attachment.media_id} not found", permanent=True) from exc
            ctype = _sniff(data)  # what the bytes are, whatever the attachment claims
            if ctype not in CHAT_FILE_TYPES:
                claimed = attachment.content_type or "an unknown type"
                raise SendError(f"WB chat takes JPEG, PNG and PDF only, not {claimed}", permanent=True)
            if len(data) > CHAT_FILE_MAX:
                raise SendError("a file for WB chat is larger than 5 MB", permanent=True)
            ext = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}[ctype]
            out.append((attachment.filename or f"file{n}.{ext}", data, ctype))
        if sum(len(d) for _, d, _ in out) > CHAT_FILES_TOTAL_MAX:
            raise SendError("the files for WB chat are larger than 30 MB in all", permanent=True)
        return out


def _sniff(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return ""


def chat_sender(account: Any, secret: str | None, ctx: RuntimeContext) -> WBChatSender:
    """`ChannelKind.sender` of the `wildberries` kind."""
    return WBChatSender(WBAccount(account.id, account.name, secret or ""), ctx, enabled=chat_enabled(secret))


async def remember_chats(ctx: RuntimeContext, account_id: int, chats: list[ChatInfo]) -> None:
    rows = [(c.chat_id, c.reply_sign or None, c.good_card.as_context() if c.good_card else None) for c in chats]
    if rows:
        await store.save_chats(ctx.db, account_id, rows)


# --- polling -------------------------------------------------------------------------------------------


class _Stopped(Exception):
    pass


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
    except TimeoutError:
        return
    raise _Stopped


class ChatPoller:
    """The events loop of one seller account."""

    def __init__(self, ctx: RuntimeContext, ingest: Any, account: WBAccount) -> None:
        self.ctx = ctx
        self.ingest = ingest
        self.account = account
        self.interval = ctx.settings.wb_chat_poll_seconds
        self.client = client_for(account, ctx.settings, limiters=ctx.wb_limiters, retry=POLL_RETRY, timeout=30.0)
        self.state: dict[str, Any] = {}
        self.malformed = 0  # events that could not be read (logged, skipped)
        self.skipped = 0  # events ingest kept refusing (logged, skipped)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.interval
        try:
            self.state = await store.load_state(self.ctx.db, self.account.id)
            await self._refresh_chats()
            while not stop.is_set():
                try:
                    full = await self.poll_once()
                except WBRateLimited as exc:
                    await _sleep(exc.retry_after or 10.0, stop)
                    continue
                except WBAuthError as exc:  # revoked, expired, the category removed: say it, wait long
                    log.error("WB chat %s: the token is refused (%s); retrying in 5 minutes", self.account.name, exc)
                    await _sleep(300.0, stop)
                    continue
                except (WBError, OSError) as exc:
                    log.warning("WB chat %s: %s; retrying in %.0f s", self.account.name, exc, backoff)
                    await _sleep(backoff, stop)
                    backoff = min(backoff * 2, 120.0)
                    continue
                backoff = self.interval
                # more may be waiting: go on soon (the bucket keeps 10 requests / 10 s); else the interval
                await _sleep(min(1.0, self.interval) if full else self.interval, stop)
        except _Stopped:
            pass
        finally:
            await self.client.aclose()

    async def _refresh_chats(self) -> None:
        try:
            await remember_chats(self.ctx, self.account.id, await self.client.list_chats())
        except WBError as exc:  # the sender refreshes again when it needs a sign
            log.warning("WB chat %s: chats list failed: %s", self.account.name, exc)

    async def poll_once(self) -> bool:
        """Held events first, then one events page: ingest each, then store the cursor. True when the page
        came full (more may be waiting)."""
        await self._retry_held()
        cursor = self.state.get("next")
        page = await self.client.chat_events(int(cursor) if cursor else None)
        held: list[dict[str, Any]] = list(self.state.get("held", []))
        for raw in page.events:
            await self._handle(raw, held)
        if page.next and page.next > 0:
            self.state["next"] = page.next
        self.state["held"] = held
        await store.save_state(self.ctx.db, self.account.id, self.state)
        return bool(page.events)  # WB: repeat with `next` until a page comes empty

    async def _handle(self, raw: Any, held: list[dict[str, Any]]) -> None:
        parsed = parse_event(self.account.id, raw)
        if parsed.problem:
            self.malformed += 1
            log.warning("WB chat %s: event skipped: %s", self.account.name, parsed.problem[:200])
        if parsed.chat_id and (parsed.reply_sign or parsed.card):
            await store.save_chats(self.ctx.db, self.account.id, [(parsed.chat_id, parsed.reply_sign, parsed.card)])
        if parsed.event is None:
            return
        if any(h.get("chat") == parsed.chat_id for h in held):  # behind an event of its chat that waits
            held.append({"raw": raw, "chat": parsed.chat_id, "due": 0.0, "tries": 0})
            return
        event, pending = await self._download(parsed)
        if pending is not None:
            if len(held) < MAX_HELD:
                held.append({"raw": raw, "chat": parsed.chat_id, "due": time.time() + pending, "tries": 1})
                return
            event = _with_error(event, "in_moderation")
        await self._ingest(event)

    async def _retry_held(self) -> None:
        held: list[dict[str, Any]] = list(self.state.get("held", []))
        if not held:
            return
        waiting: set[str] = set()
        kept: list[dict[str, Any]] = []
        now = time.time()
        for item in held:
            chat = str(item.get("chat", ""))
            if chat in waiting or float(item.get("due", 0)) > now:
                waiting.add(chat)
                kept.append(item)
                continue
            parsed = parse_event(self.account.id, item.get("raw"))
            if parsed.event is None:
                continue
            event, pending = await self._download(parsed)
            tries = int(item.get("tries", 0)) + 1
            if pending is not None and tries < MAX_HOLD_TRIES:
                kept.append({**item, "due": now + pending, "tries": tries})
                waiting.add(chat)
                continue
            await self._ingest(event if pending is None else _with_error(event, "in_moderation"))
        self.state["held"] = kept
        await store.save_state(self.ctx.db, self.account.id, self.state)

    async def _download(self, parsed: Parsed) -> tuple[InboundEvent, float | None]:
        """The event with its files in the media store; (event, seconds) when a file is in moderation."""
        event = parsed.event
        assert event is not None
        if not event.attachments:
            return await self._with_card(event), None
        kept: list[Attachment] = []
        error = ""
        for attachment in event.attachments:
            download_id = (attachment.url or "").removeprefix(DOWNLOAD_PREFIX)
            try:
                data, ctype = await self.client.download_chat_file(
                    download_id, max_bytes=self.ctx.settings.max_upload_bytes
                )
                stored = await self.ctx.media.save(data, ctype, attachment.filename)
            except WBFilePending as exc:
                return event, exc.retry_after
            except WBFileRejected:
                error = error or "rejected_by_moderation"
                continue
            except (MediaTooLarge, WBBadRequest):
                error = error or "too_large"
                continue
            except WBError as exc:
                log.warning("WB chat %s: file download failed: %s", self.account.name, exc)
                error = error or "download_failed"
                continue
            kind = "photo" if ctype.startswith("image/") else "file"
            kept.append(
                replace(attachment, kind=kind, media_id=stored.media_id, url=None, size=stored.size, content_type=ctype)
            )
        event = replace(event, attachments=tuple(kept))
        if error:
            event = _with_error(event, error)
        return await self._with_card(event), None

    async def _with_card(self, event: InboundEvent) -> InboundEvent:
        """An event without a card still tells the flows the chat's card (from the chats list)."""
        context = event.data.get("context")
        if isinstance(context, dict) and context.get("wb_card"):
            return event
        row = await store.chat_row(self.ctx.db, self.account.id, event.sender_id)
        if row is None or not row.good_card:
            return event
        return replace(event, data={**event.data, "context": {"wb_card": row.good_card}})

    async def _ingest(self, event: InboundEvent, attempts: int = 3) -> None:
        """Ingest, retried; an event that keeps failing is skipped (logged) so that one poisonous event
        cannot stall the chat. A redelivered one is a duplicate for the kernel."""
        for attempt in range(1, attempts + 1):
            try:
                await self.ingest(event)
                return
            except Exception:
                log.exception("WB chat %s: event %s failed (attempt %d)", self.account.name, event.external_id, attempt)
                if attempt < attempts:
                    await asyncio.sleep(0.5 * attempt)
        self.skipped += 1
        log.error("WB chat %s: skipping event %s after %d attempts", self.account.name, event.external_id, attempts)


def _with_error(event: InboundEvent, code: str) -> InboundEvent:
    return replace(event, data={**event.data, "upload_error": code})


class WBChatChannels:
    """`ChannelKind.runtime` of the `wildberries` kind: the pollers of the accounts with the chat on."""

    def __init__(self, ctx: RuntimeContext, ingest: Any) -> None:
        self.ctx = ctx
        self.ingest = ingest
        self.accounts: dict[int, WBAccount] = {}

    @classmethod
    def for_app(cls, app: Any) -> WBChatChannels:
        return cls(app.ctx, app.ingest)

    async def reload(self, app: Any) -> None:
        from otklik.adapters.wildberries.accounts import wb_accounts

        self.accounts = {a.id: a for a in await wb_accounts(app.db, app.vault) if chat_enabled(a.token)}

    def polling_loops(self) -> dict[str, Any]:
        """One loop for the kind: it keeps one poller per account with the chat on, and follows accounts
        added, removed or given another token while it runs."""
        return {"wb-chat": self.run}

    async def run(self, stop: asyncio.Event) -> None:
        tasks: dict[int, tuple[WBAccount, asyncio.Task[None], asyncio.Event]] = {}
        try:
            while not stop.is_set():
                for account_id in list(tasks):
                    account, task, own = tasks[account_id]
                    if self.accounts.get(account_id) != account or task.done():
                        own.set()
                        await asyncio.gather(task, return_exceptions=True)
                        del tasks[account_id]
                for account_id, account in self.accounts.items():
                    if account_id not in tasks:
                        own = asyncio.Event()
                        poller = ChatPoller(self.ctx, self.ingest, account)
                        tasks[account_id] = (account, asyncio.create_task(poller.run(own)), own)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=1.0)
                except TimeoutError:
                    pass
        finally:
            for _account, _task, own in tasks.values():
                own.set()
            await asyncio.gather(*(t for _a, t, _o in tasks.values()), return_exceptions=True)

    async def aclose(self) -> None:
        return None
