"""Telegram channel accounts in the runtime: senders, webhook handling, long polling, stores."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import CallbackPayload, ChannelAccount, Setting
from otklik.channels.telegram.adapter import (
    DEFAULT_LIMITS,
    TelegramInbound,
    TelegramSender,
    make_bot,
    parse_webhook_body,
    run_polling,
    verify_secret,
)
from otklik.channels.telegram.render import callback_key
from otklik.clock import utcnow
from otklik.conversations.context import RuntimeContext
from otklik.core.channel import ChannelLimits, ChannelSender
from otklik.core.messages import InboundEvent

log = logging.getLogger(__name__)


class DbCallbackStore:
    """Long button payloads in the database, so any process can resolve a press."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, payload: str) -> str:
        key = callback_key(payload)
        async with self.db.write() as session:
            if await session.get(CallbackPayload, key) is None:
                session.add(CallbackPayload(key=key, payload=payload, created_at=utcnow()))
        return key

    async def get(self, key: str) -> str | None:
        async with self.db.read() as session:
            row = await session.get(CallbackPayload, key[:64])
            return row.payload if row else None


class DbOffsetStore:
    """The confirmed getUpdates offset of one bot survives restarts."""

    def __init__(self, db: Database, account_id: int) -> None:
        self.db = db
        self.key = f"telegram_offset:{account_id}"

    async def get_offset(self) -> int | None:
        async with self.db.read() as session:
            row = await session.get(Setting, self.key)
            return int(row.value["offset"]) if row else None

    async def set_offset(self, offset: int) -> None:
        async with self.db.write() as session:
            row = await session.get(Setting, self.key)
            if row is None:
                session.add(Setting(key=self.key, value={"offset": offset}, updated_at=utcnow()))
            else:
                row.value, row.updated_at = {"offset": offset}, utcnow()


def telegram_sender(account: ChannelAccount, token: str | None, ctx: RuntimeContext) -> ChannelSender:
    """Telegram's documented pace (30 msg/s per bot, 1 msg/s per chat) unless the account overrides it
    (`per_second`, `per_chat_interval` in its config; null = no limit, e.g. a local Bot API server)."""
    config = account.config
    limits = ChannelLimits(
        per_second=config.get("per_second", DEFAULT_LIMITS.per_second),
        per_chat_interval=config.get("per_chat_interval", DEFAULT_LIMITS.per_chat_interval),
    )
    bot = make_bot(token or "", ctx.settings.telegram_api_url)
    return TelegramSender(bot, callbacks=DbCallbackStore(ctx.db), media=ctx.media, limits=limits)


class TelegramChannels:
    """Inbound side of every Telegram account of this install."""

    def __init__(
        self,
        ctx: RuntimeContext,
        ingest: Any,
        tokens: dict[int, str] | None = None,
        secrets: dict[int, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.ingest = ingest
        self.tokens = tokens or {}
        self.secrets = secrets or {}
        self._inbound: dict[int, TelegramInbound] = {}

    @classmethod
    def for_app(cls, app: Any) -> TelegramChannels:
        """The kind's runtime (`ChannelKind.runtime`), built once per container."""
        return cls(app.ctx, app.ingest)

    async def reload(self, app: Any) -> None:
        """The enabled bots' tokens and webhook secrets; a bot added or removed rebuilds the inbound side."""
        tokens, secrets = await telegram_credentials(app.db, app.vault.decrypt)
        if set(tokens) != set(self.tokens):
            await self.aclose()
            self.tokens = tokens
        self.secrets = secrets  # a webhook secret set while running

    def inbound(self, account_id: int) -> TelegramInbound:
        handler = self._inbound.get(account_id)
        if handler is None:
            bot = make_bot(self.tokens[account_id], self.ctx.settings.telegram_api_url)
            handler = TelegramInbound(
                channel_account_id=account_id,
                bot=bot,
                on_event=self._on_event,
                media=self.ctx.media,
                max_file_bytes=self.ctx.settings.max_upload_bytes,
                callbacks=DbCallbackStore(self.ctx.db),
            )
            self._inbound[account_id] = handler
        return handler

    async def _on_event(self, event: InboundEvent) -> object:
        return await self.ingest(event)

    def secret_ok(self, account_id: int, header: str | None) -> bool:
        expected = self.secrets.get(account_id)
        return expected is not None and verify_secret(header, expected)

    async def handle_webhook(self, account_id: int, body: bytes) -> None:
        """Parse (ValueError on malformed bodies) and handle one update."""
        update = parse_webhook_body(body)
        await self.inbound(account_id).handle_update(update)

    def polling_loops(self) -> dict[str, Any]:
        """One long-polling loop per bot, for installs without a public URL (with one, Telegram calls us)."""
        loops: dict[str, Any] = {}
        if self.ctx.settings.public_url:
            return loops
        for account_id in self.tokens:

            async def loop(stop: asyncio.Event, account_id: int = account_id) -> None:
                handler = self.inbound(account_id)
                await run_polling(
                    handler.bot, handler.handle_update, stop=stop, offsets=DbOffsetStore(self.ctx.db, account_id)
                )

            loops[f"telegram-polling-{account_id}"] = loop
        return loops

    async def aclose(self) -> None:
        for handler in self._inbound.values():
            await handler.bot.session.close()
        self._inbound.clear()


async def telegram_credentials(db: Database, decrypt: Any) -> tuple[dict[int, str], dict[int, str]]:
    """Tokens and webhook secret tokens of enabled Telegram accounts (decrypted)."""
    tokens, secrets = {}, {}
    async with db.read() as session:
        accounts = (
            await session.execute(
                select(ChannelAccount).where(ChannelAccount.kind == "telegram", ChannelAccount.enabled.is_(True))
            )
        ).scalars()
        for account in accounts:
            if account.secret:
                tokens[account.id] = decrypt(account.secret)
            if account.config.get("webhook_secret"):
                secrets[account.id] = decrypt(account.config["webhook_secret"])
    return tokens, secrets


async def connect_bot(otklik: Any, token: str, *, name: str | None, pack: str) -> tuple[int, str, bool]:
    """Validate a token with getMe and store the bot as a channel account (once per bot id).

    Returns (account id, username, created). Raises `InvalidToken` for a refused or malformed token.
    """
    from otklik.channels.telegram.adapter import validate_token
    from otklik.platform.channel_accounts import add_account, new_secret

    info = await validate_token(otklik.settings.telegram_api_url, token)
    async with otklik.db.read() as session:
        accounts = (await session.execute(select(ChannelAccount).where(ChannelAccount.kind == "telegram"))).scalars()
        existing = next((a for a in accounts if a.config.get("bot_id") == info.id), None)
    if existing is not None:
        return int(existing.id), info.username, False
    config = {"username": info.username, "bot_id": info.id, "webhook_secret": otklik.vault.encrypt(new_secret()[:64])}
    account_id = await add_account(
        otklik.db, otklik.vault, kind="telegram", name=name or info.username, pack=pack, secret=token, config=config
    )
    return account_id, info.username, True


async def connect_configured(app: Any) -> None:
    """Telegram bots listed in settings (`OTKLIK_TELEGRAM_TOKENS`) become channel accounts once."""
    if not app.settings.telegram_tokens:
        return
    for token in app.settings.telegram_tokens:
        try:
            await connect_bot(app, token.get_secret_value(), name=None, pack=app.settings.default_pack)
        except Exception as exc:  # a bad or unreachable bot must not keep the rest of the product down
            log.error("Telegram bot from settings not connected: %s", exc)
