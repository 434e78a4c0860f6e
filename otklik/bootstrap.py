"""The composition root: web app, worker and CLI build their dependencies here and close them here."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from otklik.adapters.crypto import Vault, load_or_create_key
from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.adapters.db.models import ChannelAccount, EventLog, Setting
from otklik.adapters.media import MediaStore
from otklik.adapters.private_fs import private_dir, private_sqlite, write_private
from otklik.cashback.jobs import erase_loop
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.runtime.channels import build_senders
from otklik.runtime.context import AccountInfo, RuntimeContext
from otklik.runtime.flowstore import FlowStore
from otklik.runtime.ingest import Ingest
from otklik.runtime.outbox import Dispatcher
from otklik.runtime.packs import Pack, build_classifier, intent_descriptions, load_pack
from otklik.runtime.settings_store import LiveSettings, SettingsStore
from otklik.runtime.supervisor import Supervisor
from otklik.runtime.telegram import TelegramChannels, telegram_credentials
from otklik.runtime.timers import ActionRegistry, Timers
from otklik.runtime.understanding import build_llm

log = logging.getLogger(__name__)
WEBCHAT_ACCOUNT = "webchat"
OWNER_PASSWORD_FILE = "initial-owner-password.txt"  # noqa: S105 - a file name


@dataclass
class Otklik:
    """Everything the entry points need, built from settings."""

    settings: Settings
    db: Database
    ctx: RuntimeContext
    ingest: Ingest
    dispatcher: Dispatcher
    timers: Timers
    flows: FlowStore
    actions: ActionRegistry
    vault: Vault
    live: LiveSettings  # admin settings (business hours, languages, hand-off texts) of this process
    packs: dict[str, Pack] = field(default_factory=dict)
    supervisor: Supervisor = field(default_factory=Supervisor)
    telegram: TelegramChannels | None = None
    webchat_sessions: dict[str, int] = field(default_factory=dict)  # session key -> conversation id
    _revision: int = -1
    _accounts_seen: str | None = None  # fingerprint of the enabled channel accounts loaded by `reload`
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _retired_senders: list[Any] = field(default_factory=list)  # replaced senders, closed at shutdown
    _sender_prints: dict[int, str] = field(default_factory=dict)  # account id -> fingerprint its sender was built on

    @classmethod
    def build(cls, settings: Settings) -> Otklik:
        private_dir(settings.data_dir)
        private_dir(settings.media_dir)
        private_sqlite(settings.db_url)
        db = Database(settings.db_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        ctx = RuntimeContext(db=db, settings=settings, media=MediaStore(settings.media_dir, settings.max_upload_bytes))
        actions = ActionRegistry()
        ingest = Ingest(ctx, actions)
        timers = Timers(ctx, ingest, actions)
        ctx.action_starter = timers.start_action
        from otklik.runtime.builtin_actions import register_builtin

        register_builtin(actions)
        vault = Vault(load_or_create_key(settings.fernet_key, settings.data_dir))
        ctx.llm = build_llm(settings, _usage_logger(db))
        live = LiveSettings(SettingsStore(db), ctx)
        ctx.after_hours_text = live.after_hours_text
        return cls(settings, db, ctx, ingest, Dispatcher(ctx), timers, FlowStore(db), actions, vault, live)

    async def start(self, *, migrate: bool = True, demo_owner: bool = False) -> None:
        """Migrate (SQLite always; PostgreSQL when asked), seed, load accounts, flows and engines.

        `demo_owner`: the server's start on an empty demo install creates an owner and prints its password.
        """
        async with self.db.startup_lock():
            if migrate:
                await upgrade(self.db)
            await self.ensure_account(WEBCHAT_ACCOUNT, "webchat", self.settings.default_pack)
            if self.settings.demo:
                await self._seed_demo()
                if demo_owner and await self._demo_owner():  # the first start: no user yet
                    await self._demo_data()
            await self._configured_bots()
            await self.reload()

    async def ensure_account(self, name: str, kind: str, pack: str, config: dict[str, object] | None = None) -> int:
        async with self.db.write() as session:
            existing = await session.scalar(select(ChannelAccount).where(ChannelAccount.name == name))
            if existing is not None:
                return int(existing.id)
            account = ChannelAccount(
                kind=kind, name=name, pack=pack, config=config or {}, enabled=True, created_at=utcnow()
            )
            session.add(account)
            await session.flush()
            return int(account.id)

    async def reload(self) -> None:
        """(Re)load channel accounts, packs, flows and engines; cheap when nothing changed.

        Senders of accounts that were added, changed (URL, secret, pack …) or disabled are rebuilt; an
        unchanged account keeps its live sender (and its connections).
        """
        async with self._reload_lock:
            await self._reload()

    async def _reload(self) -> None:
        async with self.db.read() as session:
            rows = list(
                (await session.execute(select(ChannelAccount).where(ChannelAccount.enabled.is_(True)))).scalars()
            )
            self.ctx.accounts = {a.id: AccountInfo(a.id, a.kind, a.name, a.pack) for a in rows}
            fingerprints = {a.id: _fingerprint(a) for a in rows}
        for pack_id in {a.pack for a in self.ctx.accounts.values()} - set(self.packs):
            pack = load_pack(pack_id, self.settings.packs_dirs)
            self.packs[pack_id] = pack
            self.ctx.intent_descriptions[pack_id] = intent_descriptions(pack)
            await self.flows.seed(pack_id, pack.flow_sources)
        await self._rebuild_engines(force=True)
        senders = await build_senders(self.ctx, self.vault)
        for account_id, sender in senders.items():
            old = self.ctx.senders.get(account_id)
            built_on = self._sender_prints.get(account_id)
            self._sender_prints[account_id] = fingerprints.get(account_id, "")
            if old is None or (built_on is not None and built_on != fingerprints.get(account_id)):
                self.ctx.senders[account_id] = sender
                if old is not None:
                    self._retired_senders.append(old)  # a send may still be running on it
            else:
                await sender.aclose()  # keep the live one (and its connections)
        for account_id in set(self.ctx.senders) - set(senders):
            if account_id in self._sender_prints:  # disabled or removed (senders set by hand are left alone)
                self._retired_senders.append(self.ctx.senders.pop(account_id))
                del self._sender_prints[account_id]
        tokens, secrets = await telegram_credentials(self.db, self.vault.decrypt)
        if self.telegram is None or set(tokens) != set(self.telegram.tokens):
            if self.telegram is not None:
                await self.telegram.aclose()
            self.telegram = TelegramChannels(self.ctx, self.ingest, tokens, secrets)
        else:
            self.telegram.secrets = secrets  # a webhook secret set while running
        self._accounts_seen = _accounts_print(fingerprints)

    async def refresh_accounts(self) -> bool:
        """Reload when the enabled channel accounts changed since the last load (another process, the CLI,
        the admin). One small read; returns whether anything was reloaded."""
        async with self.db.read() as session:
            rows = (await session.execute(select(ChannelAccount).where(ChannelAccount.enabled.is_(True)))).scalars()
            current = _accounts_print({a.id: _fingerprint(a) for a in rows})
        if current == self._accounts_seen:
            return False
        async with self._reload_lock:
            if current == self._accounts_seen:  # another task reloaded meanwhile
                return False
            await self._reload()
        return True

    async def _rebuild_engines(self, *, force: bool = False) -> None:
        revision = await self.flows.revision()
        settings_changed = await self.live.refresh()
        if revision == self._revision and not force and not settings_changed:
            return
        active = await self.flows.active()
        flows = {key: flow for key, (_pack, flow) in active.items()}
        engines = {}
        for pack_id, pack in self.packs.items():
            old = self.ctx.engines.get(pack_id)
            classifier = (
                old.classifier
                if old
                else await asyncio.to_thread(build_classifier, pack, self.settings.cache_dir, self.settings.nlu)
            )
            engines[pack_id] = self.live.engine(pack.config, flows, classifier)
        self.ctx.engines = engines
        self._revision = revision

    async def watch_flows(self, stop: asyncio.Event) -> None:
        """Published flow versions, admin settings and added/changed channel accounts go live without a
        restart (checked every 2 s)."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 2.0)
            except TimeoutError:
                await self._rebuild_engines()
                try:
                    await self.refresh_accounts()
                except Exception:  # a broken account (bad pack, undecryptable secret) must not stop the watcher
                    log.exception("reloading channel accounts failed")

    def start_worker(self) -> None:
        self.supervisor.start("dispatcher", self.dispatcher.run)
        self.supervisor.start("timers", self.timers.run)
        self.supervisor.start("cashback-erase", functools.partial(erase_loop, self.db))
        from otklik.care.sync import wb_sync_loop  # WB cards, reviews and approved replies (issue 7)

        self.supervisor.start("wb-sync", wb_sync_loop(self.db, self.settings, self.vault, self.ctx.llm))
        if self.telegram is not None and not self.settings.public_url:  # no public URL: long polling
            for name, loop in self.telegram.polling_loops().items():
                self.supervisor.start(name, loop)

    def start_watchers(self) -> None:
        self.supervisor.start("flows", self.watch_flows)

    async def close(self) -> None:
        await self.supervisor.close()
        await self.timers.cancel_actions()  # actions started right after a commit run outside the supervisor
        if self.telegram is not None:
            await self.telegram.aclose()
        if self.ctx.llm is not None:
            await self.ctx.llm.aclose()
        for sender in [*self.ctx.senders.values(), *self._retired_senders]:
            await sender.aclose()
        await self.db.dispose()

    async def _configured_bots(self) -> None:
        """Telegram bots listed in settings (`OTKLIK_TELEGRAM_TOKENS`) become channel accounts once."""
        if not self.settings.telegram_tokens:
            return
        from otklik.runtime.telegram import connect_bot

        for token in self.settings.telegram_tokens:
            try:
                await connect_bot(self, token.get_secret_value(), name=None, pack=self.settings.default_pack)
            except Exception as exc:  # a bad or unreachable bot must not keep the rest of the product down
                log.error("Telegram bot from settings not connected: %s", exc)

    async def _demo_owner(self) -> bool:
        """The embedded default's first start: an owner account whose password is shown once. False when
        the install already has users (not a first start)."""
        from otklik.runtime.users import Role, count_users, create_user

        if await count_users(self.db):
            return False
        _uid, password = await create_user(self.db, "owner", Role.OWNER, name="Owner", actor="demo")
        admin = f"http://{self.settings.host}:{self.settings.port}/admin"
        if sys.stdout.isatty():  # a person at a terminal: shown once, never through logging
            _print_once(
                f"\n  Admin: {admin}  login: owner  password: {password}\n"
                "  (shown once; change it with `otklik users reset-password owner`)\n"
            )
            return True
        # stdout is a log here (systemd, docker, a pipe): the password goes to a private file, the log says where
        path = self.settings.data_dir / OWNER_PASSWORD_FILE
        write_private(path, f"login: owner\npassword: {password}\n".encode())
        _print_once(
            f"\n  Admin: {admin}  login: owner  password: in {path.resolve()} (mode 600)\n"
            "  (read it once and delete it; change the password with `otklik users reset-password owner`)\n"
        )
        return True

    async def _seed_demo(self) -> None:
        async with self.db.write() as session:
            if await session.get(Setting, "seller") is None:
                session.add(Setting(key="seller", value={"name": "Демо-магазин", "demo": True}, updated_at=utcnow()))

    async def _demo_data(self) -> None:
        """The server's first start on an empty install: demo reviews, incidents and cashback claims (every
        id recorded, removable in one click; never seeded again, never by CLI commands)."""
        from otklik.runtime.demo_data import seed_demo_data

        chat = await self.ensure_account(WEBCHAT_ACCOUNT, "webchat", self.settings.default_pack)
        await seed_demo_data(self.db, self.vault, pack=self.settings.default_pack, chat_account_id=chat)


def _fingerprint(account: ChannelAccount) -> str:
    """What a sender and the account registry are built from; a change means a rebuild."""
    data = [account.kind, account.name, account.pack, account.config or {}, account.secret or ""]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _accounts_print(fingerprints: dict[int, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(fingerprints.items())).encode()).hexdigest()


def _print_once(text: str) -> None:
    print(text, flush=True)


def _usage_logger(db: Database) -> Any:
    """LLM usage goes to the event log (purpose, model, tokens, latency, outcome)."""

    async def sink(record: Any) -> None:
        data = {
            k: getattr(record, k, None)
            for k in ("purpose", "model", "prompt_tokens", "completion_tokens", "latency_ms", "ok", "error")
        }
        async with db.write() as session:
            session.add(
                EventLog(
                    ts=utcnow(),
                    actor="llm",
                    kind="llm_usage",
                    subject_type="llm",
                    subject_id=str(data["purpose"]),
                    data=data,
                )
            )

    return sink
