"""The composition root: web app, worker and CLI build their dependencies here and close them here."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from otklik.adapters.crypto import Vault, load_or_create_key
from otklik.adapters.db.engine import Database
from otklik.adapters.db.migrate import upgrade
from otklik.adapters.db.models import ChannelAccount, EventLog, Setting
from otklik.adapters.media import MediaStore
from otklik.adapters.private_fs import private_dir, private_sqlite, write_private
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.conversations.context import AccountInfo, RuntimeContext
from otklik.conversations.flowstore import FlowStore
from otklik.conversations.ingest import Ingest
from otklik.conversations.outbox import Dispatcher
from otklik.conversations.packs import Pack, available_packs, build_classifier, intent_descriptions, load_pack
from otklik.conversations.reach_route import ChannelReach
from otklik.conversations.settings_store import LiveSettings, SettingsStore
from otklik.conversations.supervisor import Supervisor
from otklik.conversations.timers import ActionRegistry, Timers
from otklik.conversations.understanding import build_llm
from otklik.core.channel import ChannelSender
from otklik.platform.plugins import REACTION_EVENTS, Capability, ChannelKind, folder, import_models, resolve
from otklik.platform.reach.service import ReachWorker
from otklik.platform.staff.outbox import StaffNotifier
from otklik.platform.staff.transports import build_transports
from otklik.platform.users import role_perms
from otklik.platform.webhooks.worker import WebhookDispatcher
from otklik.registry import CAPABILITIES, CHANNEL_KINDS

log = logging.getLogger(__name__)
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
    webhooks: WebhookDispatcher  # delivers signed event webhooks (platform/webhooks)
    packs: dict[str, Pack] = field(default_factory=dict)
    supervisor: Supervisor = field(default_factory=Supervisor)
    capabilities: tuple[Capability, ...] = CAPABILITIES
    channel_kinds: dict[str, ChannelKind] = field(default_factory=lambda: {k.kind: k for k in CHANNEL_KINDS})
    channel_runtimes: dict[str, Any] = field(default_factory=dict)  # kind -> its runtime (inbound, polling)
    role_perms: dict[Any, frozenset[str]] = field(default_factory=dict)  # role -> permissions (capabilities' too)
    webchat_sessions: dict[str, int] = field(default_factory=dict)  # session key -> conversation id
    _revision: int = -1
    _accounts_seen: str | None = None  # fingerprint of the enabled channel accounts loaded by `reload`
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _retired_senders: list[Any] = field(default_factory=list)  # replaced senders, closed at shutdown
    _sender_prints: dict[int, str] = field(default_factory=dict)  # account id -> fingerprint its sender was built on
    staff: StaffNotifier | None = None  # staff notifications' delivery (`platform.staff`), the `staff-notify` job
    reach: ReachWorker | None = None  # SMS / e-mail to contacts outside the chat (`platform.reach`), the `reach` job

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        capabilities: Sequence[Capability] = CAPABILITIES,
        channel_kinds: Sequence[ChannelKind] = CHANNEL_KINDS,
    ) -> Otklik:
        """`capabilities`, `channel_kinds`: what `otklik.registry` lists (tests pass their own)."""
        import_models(capabilities)  # the shared metadata holds every plugged-in table (Alembic, checks)
        private_dir(settings.data_dir)
        private_dir(settings.media_dir)
        private_sqlite(settings.db_url)
        db = Database(settings.db_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        vault = Vault(load_or_create_key(settings.fernet_key, settings.data_dir))
        media = MediaStore(settings.media_dir, settings.max_upload_bytes)
        ctx = RuntimeContext(db=db, settings=settings, media=media, vault=vault)
        actions = ActionRegistry()
        ingest = Ingest(ctx, actions)
        timers = Timers(ctx, ingest, actions)
        ctx.action_starter = timers.start_action
        for capability in capabilities:
            for spec in resolve(capability.actions) if capability.actions else ():
                actions.register(spec.name, spec.fn, quick=spec.quick, quick_if=spec.quick_if)
            for reaction in resolve(capability.reactions) if capability.reactions else ():
                if reaction.on not in REACTION_EVENTS:
                    raise ValueError(f"capability {capability.name}: no kernel event {reaction.on!r} to react to")
                actions.add_reaction(reaction.on, capability.name, reaction.fn)
        ctx.erasers = {c.name: resolve(c.erase) for c in capabilities if c.erase}
        ctx.local_kinds = frozenset(k.kind for k in channel_kinds if k.local)
        ctx.marketplace_kinds = frozenset(k.kind for k in channel_kinds if k.marketplace)
        ctx.llm = build_llm(settings, _usage_logger(db))
        live = LiveSettings(SettingsStore(db), ctx)
        ctx.after_hours_text = live.after_hours_text
        webhooks = WebhookDispatcher(db, vault, settings)
        app = cls(settings, db, ctx, ingest, Dispatcher(ctx), timers, FlowStore(db), actions, vault, live, webhooks)
        app.capabilities = tuple(capabilities)
        app.channel_kinds = {k.kind: k for k in channel_kinds}
        app.role_perms = role_perms(p for c in capabilities for p in c.permissions)
        app.staff = StaffNotifier(db, settings, build_transports(db, vault, settings))
        app.reach = ReachWorker(db, vault, settings, channel=ChannelReach(ctx))
        return app

    async def start(self, *, migrate: bool = True, demo_owner: bool = False) -> None:
        """Migrate (SQLite always; PostgreSQL when asked), seed, load accounts, flows and engines.

        `demo_owner`: the server's start on an empty demo install creates an owner and prints its password.
        """
        async with self.db.startup_lock():
            if migrate:
                await upgrade(self.db, locations=self.migration_folders())
            for kind in self.channel_kinds.values():
                if kind.default_account:
                    await self.ensure_account(kind.default_account, kind.kind, self.settings.default_pack)
            if self.settings.demo:
                await self._seed_demo()
                if demo_owner and await self._demo_owner():  # the first start: no user yet
                    await self._demo_data()
            for kind in self.channel_kinds.values():
                if kind.configured:  # accounts named in settings (e.g. OTKLIK_TELEGRAM_TOKENS) are added once
                    await resolve(kind.configured)(self)
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
        senders = await self._build_senders()
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
        for kind in self.channel_kinds.values():
            if kind.runtime is not None:
                runtime = self.channel_runtimes.get(kind.kind)
                if runtime is None:
                    runtime = self.channel_runtimes[kind.kind] = resolve(kind.runtime)(self)
                await runtime.reload(self)
        self._accounts_seen = _accounts_print(fingerprints)

    async def _build_senders(self) -> dict[int, ChannelSender]:
        """A sender per enabled account whose kind has one (`ChannelKind.sender`)."""
        out: dict[int, ChannelSender] = {}
        async with self.db.read() as session:
            accounts = (await session.execute(select(ChannelAccount).where(ChannelAccount.enabled.is_(True)))).scalars()
            for account in accounts:
                kind = self.channel_kinds.get(account.kind)
                if kind is None or kind.sender is None:
                    continue
                secret = self.vault.decrypt(account.secret) if account.secret else None
                out[account.id] = resolve(kind.sender)(account, secret, self.ctx)
        return out

    def migration_folders(self) -> list[Path]:
        """Capabilities' own Alembic folders (`Capability.migrations`), upgraded with the shared ones."""
        return [folder(c.migrations) for c in self.capabilities if c.migrations]

    def runtime_of(self, kind: str) -> Any:
        """The runtime of a channel kind (Telegram's inbound handlers and polling), None before `reload`."""
        return self.channel_runtimes.get(kind)

    @property
    def telegram(self) -> Any:
        return self.channel_runtimes.get("telegram")

    def available_packs(self) -> list[str]:
        return available_packs(self.settings.packs_dirs)

    async def deep_links(self, payload: str, base_url: str) -> list[dict[str, str]]:
        """Entry links of every enabled account whose kind has them (`t.me/<bot>?start=`, `/chat?start=`):
        `target` (kind-id, or the kind's default account name), `label`, `url`."""
        out: list[dict[str, str]] = []
        base = (self.settings.public_url or base_url).rstrip("/")
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(ChannelAccount).where(ChannelAccount.enabled.is_(True)).order_by(ChannelAccount.id)
                )
            ).scalars()
            accounts = [(a.id, a.kind, a.name, dict(a.config or {})) for a in rows]
        ordered = sorted(accounts, key=lambda a: bool(self.channel_kinds.get(a[1]) and self.channel_kinds[a[1]].local))
        for account_id, kind_name, name, config in ordered:
            kind = self.channel_kinds.get(kind_name)
            if kind is None or kind.deep_link is None:
                continue
            url = kind.deep_link(config, payload, base)
            if not url:
                continue
            if kind.default_account == name:
                out.append({"target": name, "label": kind.label, "url": url})
            else:
                detail = kind.detail(config, None) if kind.detail else name
                out.append({"target": f"{kind.kind}-{account_id}", "label": f"{kind.label} {detail}", "url": url})
        return out

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
        self.supervisor.start("webhooks", self.webhooks.run)
        if self.staff is not None:
            self.supervisor.start("staff-notify", self.staff.run)
        if self.reach is not None:
            self.supervisor.start("reach", self.reach.run)
        for capability in self.capabilities:
            for job in capability.jobs:
                self.supervisor.start(job.name, resolve(job.factory)(self))
        for runtime in self.channel_runtimes.values():  # e.g. Telegram's long polling without a public URL
            for name, loop in runtime.polling_loops().items():
                self.supervisor.start(name, loop)

    def start_watchers(self) -> None:
        self.supervisor.start("flows", self.watch_flows)

    async def close(self) -> None:
        await self.supervisor.close()
        await self.timers.cancel_actions()  # actions started right after a commit run outside the supervisor
        await self.webhooks.aclose()
        for runtime in self.channel_runtimes.values():
            await runtime.aclose()
        if self.staff is not None:
            await self.staff.aclose()
        if self.reach is not None:
            await self.reach.aclose()
        if self.ctx.llm is not None:
            await self.ctx.llm.aclose()
        for sender in [*self.ctx.senders.values(), *self._retired_senders]:
            await sender.aclose()
        if self.dispatcher.limiter.shared is not None:
            await self.dispatcher.limiter.shared.aclose()
        await self.db.dispose()

    async def _demo_owner(self) -> bool:
        """The embedded default's first start: an owner account whose password is shown once. False when
        the install already has users (not a first start)."""
        from otklik.platform.users import Role, count_users, create_user

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
        """The server's first start on an empty install: demo buyers and conversations, and each capability's
        demo rows (`Capability.demo`; every id recorded, removable in one click; never seeded again, never by
        CLI commands)."""
        from otklik.demo_data import seed_demo_data

        local = next(k for k in self.channel_kinds.values() if k.local and k.default_account)
        chat = await self.ensure_account(str(local.default_account), local.kind, self.settings.default_pack)
        await seed_demo_data(
            self.db, self.vault, pack=self.settings.default_pack, chat_account_id=chat, capabilities=self.capabilities
        )


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


T = TypeVar("T")


def run_with_app(work: Callable[[Otklik], Awaitable[T]], settings: Settings | None = None) -> T:
    """For a CLI command of a capability: build the container from the settings (or the environment), start
    it (migrations included), run `work(app)`, close it; errors propagate to the command."""

    async def go() -> T:
        app = Otklik.build(settings or Settings())
        try:
            await app.start()
            return await work(app)
        finally:
            await app.close()

    return asyncio.run(go())
