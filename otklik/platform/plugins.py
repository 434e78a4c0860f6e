"""What a capability and a channel kind declare, so the entry points can mount them without naming them.

A capability (`otklik/capabilities/<name>/__init__.py`) and a channel kind (`otklik/channels/<kind>/__init__.py`)
each build one frozen declaration from these types; `otklik/registry.py` lists them. Code is referenced by
import strings (`"package.module:attribute"`), resolved by the entry point that needs it: the worker imports
job loops, the web app admin routers, the CLI its sub-apps — and `import otklik.registry` stays cheap (the
CLI's `--help` imports no database, web or NLU library).

No framework imports here: this module sits in the platform layer and is imported by every plug-in.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Ref = str  # "package.module:attribute"


def folder(ref: Ref) -> Path:
    """The folder a `"package:folder"` reference names, inside the installed package."""
    package, sep, name = ref.partition(":")
    if not sep:
        raise ValueError(f"not a folder reference 'package:folder': {ref!r}")
    module = importlib.import_module(package)
    return Path(str(module.__file__)).parent / name


def resolve(ref: Ref) -> Any:
    """The object an import string names; a clear error when it does not exist."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"not an import string 'package.module:attribute': {ref!r}")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def import_models(capabilities: Iterable[Capability]) -> None:
    """Import each capability's `models` module, so the shared `Base.metadata` holds every table: what the
    Alembic environment, the models-match-migrations check and any full-schema code compare against."""
    for capability in capabilities:
        if capability.models:
            importlib.import_module(capability.models)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """A flow action (`action: care.record_incident` in a flow's YAML).

    `fn(ctx, conversation_id, args) -> dict` runs outside any transaction through the durable timer (slow:
    HTTP, OCR, LLM), exactly once. `quick` actions run inside the ingest transaction (see docs/architecture.md).
    """

    name: str
    fn: Callable[..., Any]
    quick: bool = False
    quick_if: Callable[[Any], bool] | None = None  # quick under a condition of the runtime (e.g. no LLM)


@dataclass(frozen=True, slots=True)
class Reaction:
    """A capability's answer to what the kernel did in a step, in that step's transaction.

    `on` is "handoff" (data: priority, reason, context with the flow and node it happened at) or
    "drafts_closed" (the buyer cancelled a flow; data: flow, reason, case). `fn(QuickContext, data)` follows a
    quick action's rules (no I/O, short statements on `ctx.tx`), fenced by a savepoint: a failure is logged
    and undone, and the step goes on. Cashback closes the claim the cancelled flow left half-done; care
    records the urgent case a red flag handed over."""

    on: str
    fn: Callable[..., Any]


REACTION_EVENTS = frozenset({"handoff", "drafts_closed"})


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A background loop of the worker process: `factory(app) -> async loop(stop: asyncio.Event)`."""

    name: str  # the supervisor's task name, unique in the install ("cashback-erase")
    factory: Ref


@dataclass(frozen=True, slots=True)
class NavEntry:
    """An admin menu entry. Entries with one `key` are one item: the first the role may open is shown."""

    key: str  # locale string of the label
    href: str
    perm: str  # the permission needed to see it
    order: int  # position in the menu (platform pages use 10-90 in steps of 10)
    also: tuple[str, ...] = ()  # more path prefixes that light this entry up (its sub-tabs)

    @property
    def prefixes(self) -> tuple[str, ...]:
        return (self.href, *self.also)


@dataclass(frozen=True, slots=True)
class Counter:
    """A business count a capability owns (the metrics layer reads it without knowing the capability's tables).

    `fn(session, since, until)` returns the `(when, conversation_id or None)` of each item counted in
    `[since, until)` (aware UTC datetimes): an order created, a claim started. The metrics capability adds
    them to its daily rows under `name` (`leads`, `bookings`, `orders`, `claims`), attributed to the
    conversation's channel, source and flow."""

    name: str
    fn: Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Permission:
    """A permission a capability adds; owner and admin always have it, `roles` name who else gets it."""

    key: str
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Capability:
    """One folder under `otklik/capabilities/`: what it adds to the product."""

    name: str
    actions: Ref | None = None  # a tuple[ActionSpec, ...]
    reactions: Ref | None = None  # a tuple[Reaction, ...]: what it does when the kernel hands off or cancels
    jobs: tuple[JobSpec, ...] = ()
    admin: tuple[Ref, ...] = ()  # APIRouters mounted under /admin behind the login guard
    api: tuple[Ref, ...] = ()  # APIRouters mounted at the root (`/api/v1/…`), behind API tokens (`require_scope`)
    nav: tuple[NavEntry, ...] = ()
    permissions: tuple[Permission, ...] = ()  # owner and admin get each; `Permission.roles` name who else
    cli: tuple[tuple[str, Ref], ...] = ()  # ("wb", "…cli:app") -> `otklik wb …`
    models: Ref | None = None  # "package.module" of its ORM classes on the shared `Base` (imported for the metadata)
    migrations: Ref | None = None  # "package:folder" of Alembic revisions, on a branch labelled with `name`
    demo: Ref | None = None  # async seed(session, demo: platform.demo.DemoSeed): its rows of the demo install
    demo_tables: tuple[str, ...] = ()  # the tables `demo` adds rows to, children first (removed in this order)
    templates: Ref | None = None  # "package:folder" of admin templates, found after the shared ones
    locales: Ref | None = None  # "package:folder" of <area>.yaml admin strings (ru/en/es), merged in the catalog
    static: Ref | None = None  # "package:folder" served at /static/<name>/ (its admin pages' CSS and scripts)
    counters: Ref | None = None  # a tuple[Counter, ...]: what the metrics layer counts of it (orders, claims)
    # "module:fn", `async fn(session, contact_id, *, now) -> dict[str, int]`: what it keeps about a person,
    # erased in the transaction of the kernel's `people.erase` (the contact's data erased everywhere at once)
    erase: Ref | None = None


@dataclass(frozen=True, slots=True)
class ConnectForm:
    """A channel kind's "connect an account" form on the Settings page (`ChannelKind.form`).

    The page shows `template` (a fragment in the kind's `templates` folder, posting to
    `/admin/settings/accounts/<kind>`); the platform's route checks the login, the permission and CSRF,
    reads the fields (a form or a JSON object) and calls `connect(app, fields, actor, language) ->
    Connected`. An `OtklikError` from it (a clear message, nothing stored) is shown above the forms, or
    answered as JSON, with the `keep` fields sent back into the form.
    """

    template: str  # "admin/connect_<kind>.html", in the kind's `templates` folder
    connect: Ref  # async connect(app, fields: Mapping[str, Any], actor: str, language: str) -> Connected
    order: int  # position on the Settings page (Telegram 10, Wildberries 20, API 30)
    keep: tuple[tuple[str, int], ...] = ()  # (field, max length) sent back after an error; never a secret
    notices: tuple[tuple[str, str], ...] = ()  # (name, locale key): `Connected.redirect` may show these


@dataclass(frozen=True, slots=True)
class Connected:
    """What `ConnectForm.connect` answers once the account is stored: the JSON body (201) for a script, and
    for the page either a post/redirect/get or the page shown at once."""

    json: Mapping[str, Any]
    redirect: Mapping[str, str] | None = None  # `/admin/settings?notice=<one of ConnectForm.notices>&<values>`
    notice: tuple[str, Mapping[str, str]] | None = None  # or the page now: a locale key and its values
    warnings: tuple[str, ...] = ()  # non-blocking problems ("expires in 5 days")
    shown: str | None = None  # a fragment of the kind's templates shown once on the page (a signing secret)
    values: Mapping[str, Any] = field(default_factory=dict)  # what `shown` shows (`connected.values`)


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """One folder under `otklik/channels/`: a kind of channel account (`channel_accounts.kind`)."""

    kind: str
    label: str
    sender: Ref | None = None  # factory(account, secret, ctx) -> ChannelSender; None: no outbound of its own
    local: bool = False  # delivered inside the claiming transaction (the web chat's long-poll)
    default_account: str | None = None  # an account of this name is ensured at start (the web chat's)
    marketplace: bool = False  # a marketplace's buyer chat: its rules apply (no links out, no review talk)
    inbound: tuple[Ref, ...] = ()  # APIRouters mounted at the application root (webhooks, the chat API)
    runtime: Ref | None = None  # class(app) with reload(accounts), polling_loops(), aclose()
    deep_link: Callable[[Mapping[str, Any], str, str], str | None] | None = None  # (config, payload, base URL)
    mask: Callable[[str], str] | None = None  # how the admin shows a stored secret
    detail: Callable[[Mapping[str, Any], str | None], str] | None = None  # (config, secret) -> "@bot", a host
    check: Ref | None = None  # async check(app, account, secret) -> Check (the Settings page's "Test")
    form: ConnectForm | None = None  # the Settings page's "connect" form; None: not connected from the admin
    templates: Ref | None = None  # "package:folder" of its admin templates (the form), found after the shared ones
    locales: Ref | None = None  # "package:folder" of <area>.yaml strings of its form, merged in the admin's catalog
    configured: Ref | None = None  # async connect_configured(app) -> None: accounts named in settings/env
    cli: Ref | None = None  # a Typer command `otklik channels add <kind>`
    commands: tuple[tuple[str, Ref], ...] = ()  # more CLI: (name, Typer app or command function)
    admin: tuple[Ref, ...] = ()  # APIRouters of its own admin pages, mounted under /admin behind the guard
    manage: str | None = None  # the Settings page links each account to this admin page ("{id}": the account's)
