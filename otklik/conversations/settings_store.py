"""Admin settings in the `settings` key-value table: typed, validated, audited, cached in memory.

Keys: `settings.business_hours` (a `Schedule`), `settings.languages` (per pack: the language the bot
answers in by default and the languages it may answer in), `settings.admin_language`, `settings.texts`
(per pack: hand-off text overrides per language). Every save bumps `settings_revision`; each process
keeps a `LiveSettings` snapshot and reloads it when the revision changes (checked with the flows
revision by the flows watcher, and at once in the process that saved).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.db.models import Setting
from otklik.clock import utcnow
from otklik.conversations.context import RuntimeContext
from otklik.conversations.packs import Pack
from otklik.core import safe_yaml
from otklik.core.conversation import ContactView, ConversationState, StepResult
from otklik.core.errors import InvalidInput
from otklik.core.flows.engine import Engine
from otklik.core.flows.model import Flow
from otklik.core.messages import InboundEvent
from otklik.core.packs import DEFAULT_TEXTS, PackConfig
from otklik.core.templates import pick_language, template_errors
from otklik.core.understanding import IntentClassifier, Understanding
from otklik.platform import business_hours as bh
from otklik.platform.audit import audit

log = logging.getLogger(__name__)
HOURS_KEY = "settings.business_hours"
LANGUAGES_KEY = "settings.languages"
ADMIN_LANGUAGE_KEY = "settings.admin_language"
TEXTS_KEY = "settings.texts"
REVISION_KEY = "settings_revision"
KEYS = (HOURS_KEY, LANGUAGES_KEY, ADMIN_LANGUAGE_KEY, TEXTS_KEY, REVISION_KEY)
ADMIN_LANGUAGES = ("ru", "en", "es")
KNOWN_LANGUAGES = ("ru", "en", "es", "uk", "kk", "be", "pt", "de", "fr", "it", "tr", "uz")
HANDOFF_TEXTS = ("handoff", "handoff_priority", "with_operator", "after_hours")  # editable per pack
MAX_TEXT = 1000


@dataclass(frozen=True, slots=True)
class LanguagePolicy:
    """The language the bot answers in when the buyer's is unknown or not allowed, and the allowed ones."""

    default: str
    enabled: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    hours: bh.Schedule = field(default_factory=bh.Schedule)
    languages: dict[str, LanguagePolicy] = field(default_factory=dict)  # by pack id
    texts: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # pack -> key -> lang -> text
    admin_language: str = "ru"
    revision: int = -1


# --- what a pack provides ----------------------------------------------------------------------------


def pack_languages(pack: Pack) -> tuple[str, ...]:
    """The pack's own language first, then every language its texts and flows have a variant in."""
    found: set[str] = set()
    _collect_languages(pack.config.texts, found)
    for source in pack.flow_sources.values():
        try:
            _collect_languages(safe_yaml.load(source), found)
        except (yaml.YAMLError, safe_yaml.UnsafeYaml):
            continue
    found.discard(pack.config.language)
    return (pack.config.language, *sorted(found))


def _collect_languages(node: object, found: set[str]) -> None:
    if isinstance(node, Mapping):
        if node and all(k in KNOWN_LANGUAGES and isinstance(v, str) for k, v in node.items()):
            found.update(str(k) for k in node)
            return
        for value in node.values():
            _collect_languages(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_languages(value, found)


def default_text(config: PackConfig, key: str, language: str) -> str:
    """The text a pack says for `key` without overrides ('' for the generated after-hours text)."""
    if key == "after_hours":
        return ""
    own = config.texts.get(key)
    if own is not None:
        if isinstance(own, str):
            return own if language == config.language else pick_language(DEFAULT_TEXTS.get(key), language, "")
        if language in own:
            return own[language]
    return pick_language(DEFAULT_TEXTS.get(key), language, config.language)


# --- validation --------------------------------------------------------------------------------------


def check_languages(pack: Pack, default: str, enabled: Iterable[str]) -> LanguagePolicy:
    provided = pack_languages(pack)
    chosen = tuple(dict.fromkeys(str(lang)[:8] for lang in enabled))
    bad = [lang for lang in (default, *chosen) if lang not in provided]
    if bad:
        raise InvalidInput(
            f"pack {pack.config.id} has no texts in {', '.join(sorted(set(bad)))}; it provides {', '.join(provided)}"
        )
    if default not in chosen:
        chosen = (default, *chosen)
    return LanguagePolicy(default=default, enabled=chosen)


def check_texts(
    pack: Pack, texts: Mapping[str, Mapping[str, str]], languages: Iterable[str]
) -> dict[str, dict[str, str]]:
    """Validate hand-off text overrides; empty texts are dropped (the pack's default applies)."""
    allowed = set(languages)
    errors: list[str] = []
    out: dict[str, dict[str, str]] = {}
    for key, variants in texts.items():
        if key not in HANDOFF_TEXTS:
            errors.append(f"{str(key)[:40]}: not an editable text (one of {', '.join(HANDOFF_TEXTS)})")
            continue
        for lang, raw in variants.items():
            text = str(raw).replace("\r\n", "\n").strip()
            if not text:
                continue
            if lang not in allowed:
                errors.append(f"{key}: the pack does not answer in {str(lang)[:8]!r}")
            elif len(text) > MAX_TEXT:
                errors.append(f"{key} ({lang}): {len(text)} characters; at most {MAX_TEXT}")
            elif any(not c.isprintable() and c != "\n" for c in text):
                errors.append(f"{key} ({lang}): control characters are not allowed")
            else:
                problems = bh.after_hours_template_errors(text) if key == "after_hours" else template_errors(text)
                errors += [f"{key} ({lang}): {p}" for p in problems]
                out.setdefault(key, {})[lang] = text
    if errors:
        raise InvalidInput("; ".join(errors), details=errors)
    return out


# --- storage -----------------------------------------------------------------------------------------


class SettingsStore:
    """Reads and writes the admin settings; every write is audited and bumps the revision."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def revision(self) -> int:
        async with self.db.read() as session:
            row = await session.get(Setting, REVISION_KEY)
            return int(row.value.get("n", 0)) if row else 0

    async def load(self) -> Snapshot:
        async with self.db.read() as session:
            rows = {
                r.key: r.value for r in (await session.execute(select(Setting).where(Setting.key.in_(KEYS)))).scalars()
            }
        try:
            hours = bh.load_schedule(rows.get(HOURS_KEY))
        except InvalidInput as exc:  # stored by an older version or by hand: do not take the bot down
            log.error("stored business hours are invalid (%s); treating them as off", exc)
            hours = bh.Schedule()
        languages = {
            str(pack): LanguagePolicy(str(v.get("default", "")), tuple(str(x) for x in v.get("enabled", [])))
            for pack, v in (rows.get(LANGUAGES_KEY) or {}).items()
            if isinstance(v, dict)
        }
        texts = {str(p): v for p, v in (rows.get(TEXTS_KEY) or {}).items() if isinstance(v, dict)}
        admin = str((rows.get(ADMIN_LANGUAGE_KEY) or {}).get("language", "ru"))
        revision = int((rows.get(REVISION_KEY) or {}).get("n", 0))
        return Snapshot(hours, languages, texts, admin, revision)

    async def save_hours(self, raw: Mapping[str, Any], actor: str) -> bh.Schedule:
        schedule = bh.parse_schedule(raw)
        async with self.db.write() as session:
            old = await _put(session, HOURS_KEY, schedule.to_dict())
            audit(
                session,
                actor,
                "settings.business_hours",
                "settings",
                "business_hours",
                {"old": old, "new": schedule.to_dict()},
            )
        return schedule

    async def save_languages(self, pack: Pack, default: str, enabled: Iterable[str], actor: str) -> LanguagePolicy:
        policy = check_languages(pack, default, enabled)
        async with self.db.write() as session:
            current = dict(await _get(session, LANGUAGES_KEY))
            old = current.get(pack.config.id)
            current[pack.config.id] = {"default": policy.default, "enabled": list(policy.enabled)}
            await _put(session, LANGUAGES_KEY, current)
            audit(
                session,
                actor,
                "settings.languages",
                "pack",
                pack.config.id,
                {"old": old, "new": current[pack.config.id]},
            )
        return policy

    async def save_admin_language(self, language: str, actor: str) -> None:
        if language not in ADMIN_LANGUAGES:
            raise InvalidInput(f"the admin speaks {', '.join(ADMIN_LANGUAGES)}; not {language[:8]!r}")
        async with self.db.write() as session:
            old = await _put(session, ADMIN_LANGUAGE_KEY, {"language": language})
            audit(
                session,
                actor,
                "settings.admin_language",
                "settings",
                "admin_language",
                {"old": old.get("language"), "new": language},
            )

    async def save_texts(
        self, pack: Pack, texts: Mapping[str, Mapping[str, str]], languages: Iterable[str], actor: str
    ) -> dict[str, dict[str, str]]:
        clean = check_texts(pack, texts, languages)
        async with self.db.write() as session:
            current = dict(await _get(session, TEXTS_KEY))
            old = current.get(pack.config.id, {})
            current[pack.config.id] = clean
            await _put(session, TEXTS_KEY, current)
            audit(session, actor, "settings.texts", "pack", pack.config.id, {"old": old, "new": clean})
        return clean


async def _get(session: AsyncSession, key: str) -> dict[str, Any]:
    row = await session.get(Setting, key)
    return dict(row.value) if row else {}


async def _put(session: AsyncSession, key: str, value: dict[str, Any]) -> dict[str, Any]:
    """Write one key and bump the revision (same transaction). Returns the old value."""
    now = utcnow()
    row = await session.get(Setting, key, with_for_update=True)
    old = dict(row.value) if row else {}
    if row is None:
        session.add(Setting(key=key, value=value, updated_at=now))
    else:
        row.value, row.updated_at = value, now
    revision = await session.get(Setting, REVISION_KEY, with_for_update=True)
    if revision is None:
        session.add(Setting(key=REVISION_KEY, value={"n": 1}, updated_at=now))
    else:
        revision.value, revision.updated_at = {"n": int(revision.value.get("n", 0)) + 1}, now
    return old


# --- the live view used by the runtime ----------------------------------------------------------------


class LanguageEngine(Engine):
    """An engine that answers only in the allowed languages: a buyer writing in another language is
    answered in the pack's default one (as if their language were unknown)."""

    def __init__(
        self, pack: PackConfig, flows: Mapping[str, Flow], classifier: IntentClassifier, enabled: tuple[str, ...]
    ) -> None:
        super().__init__(pack, flows, classifier)
        self.enabled = frozenset(enabled)

    def handle(
        self,
        state: ConversationState,
        event: InboundEvent,
        contact: ContactView,
        now: datetime,
        understanding: Understanding | None = None,
    ) -> StepResult:
        if contact.language and contact.language not in self.enabled:
            contact = replace(contact, language=None)
        return super().handle(state, event, contact, now, understanding)


class LiveSettings:
    """This process's copy of the settings; `after_hours_text` is the runtime hook (no I/O)."""

    def __init__(self, store: SettingsStore, ctx: RuntimeContext) -> None:
        self.store = store
        self.ctx = ctx
        self.snapshot = Snapshot()

    async def refresh(self) -> bool:
        """Reload when another save happened (one primary-key read otherwise). True when reloaded."""
        if await self.store.revision() == self.snapshot.revision:
            return False
        self.snapshot = await self.store.load()
        return True

    def pack_config(self, config: PackConfig) -> PackConfig:
        """The pack's config with the admin's default language and hand-off texts applied."""
        policy = self.snapshot.languages.get(config.id)
        overrides = self.snapshot.texts.get(config.id) or {}
        if policy is None and not overrides:
            return config
        texts: dict[str, Any] = dict(config.texts)
        for key, variants in overrides.items():
            base = texts.get(key)
            merged = {config.language: base} if isinstance(base, str) else dict(base or {})
            texts[key] = {**merged, **variants}
        return replace(config, language=policy.default if policy else config.language, texts=texts)

    def engine(self, config: PackConfig, flows: Mapping[str, Flow], classifier: IntentClassifier) -> Engine:
        applied = self.pack_config(config)
        policy = self.snapshot.languages.get(config.id)
        if policy is None:
            return Engine(applied, flows, classifier)
        return LanguageEngine(applied, flows, classifier, policy.enabled)

    def after_hours_text(self, account_id: int, now: datetime) -> str | None:
        """The hook ingest calls when a conversation starts waiting for an operator."""
        hours = self.snapshot.hours
        if not hours.enabled:
            return None
        account = self.ctx.accounts.get(account_id)
        engine = self.ctx.engines.get(account.pack) if account else None
        language = engine.pack.language if engine else "ru"
        template = None
        if account is not None:
            template = (self.snapshot.texts.get(account.pack) or {}).get("after_hours", {}).get(language)
        return bh.after_hours_text(hours, now, language, template)
