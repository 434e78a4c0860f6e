"""Durable time: wait nodes, question timeouts and pending actions are timer rows.

The scheduler claims due rows with a lease and feeds them to the conversation as internal events in
the same transaction that marks them done, so a crash (even `kill -9`) repeats nothing and loses
nothing: an unfinished claim's lease runs out and the row is claimed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, Protocol, overload

from sqlalchemy import Executable, Insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import Timer
from otklik.clock import utcnow
from otklik.config import Settings
from otklik.conversations import repo
from otklik.conversations.context import AccountInfo, RuntimeContext
from otklik.conversations.guard import is_marketplace, language_of, screen
from otklik.conversations.ingest import Ingest
from otklik.conversations.outbox import enqueue
from otklik.core.conversation import RunAction
from otklik.core.messages import EventKind, InboundEvent, OutboundMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a slow action may know: which conversation and contact it runs for, and the runtime."""

    conversation_id: int
    contact_id: int
    runtime: RuntimeContext
    # the buyer's message of the step that reached the action (kind, text masked, payload), as
    # `QuickContext.last_inbound`; None when a timer or another action's result reached it
    last_inbound: Mapping[str, Any] | None = None


# --- quick actions: run inside the step's transaction ---------------------------------------------------
#
# A *quick* action is pure, or does short reads and writes in our own database. It runs inside the
# transaction of the step that reached its `action` node (the ingest transaction, or the one that fires a
# timer), under a savepoint, and its result is applied in that same step: no timer row, no second
# transaction, exactly once (a rollback of the step undoes the action's writes too). It gets a
# `QuickContext`, which deliberately has no database, runtime, LLM or sender handle: `tx` is the only way to
# the database. (On SQLite `Database.write()` inside the step would wait for the write lock its own step
# holds -- a hang -- and `Database.read()` would not see the step's writes.) Rules: no HTTP or other I/O, no
# transactions of its own, no locks on other conversations; stay within `budget_ms` (the SQLite writer is
# held meanwhile; exceeding it is logged). A *slow* action (HTTP, OCR, LLM) runs outside any transaction
# through its durable timer row, as before.


class QuickTx(Protocol):
    """The step's transaction as a quick action sees it: SQLAlchemy Core statements built on the tables of
    `otklik.adapters.db.models`, with their values passed as `params` (build statements once, with
    `bindparam()`). Implemented by `repo.RawWriter` (plain SQL on the driver) and `repo.SessionWriter`."""

    @property
    def is_sqlite(self) -> bool: ...

    async def fetch(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The rows of a SELECT (or of DML with RETURNING); columns by name or position."""

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> int:
        """Run an INSERT/UPDATE/DELETE; the number of rows it matched."""

    async def insert_id(self, stmt: Insert, params: Mapping[str, Any] | None = None) -> int:
        """INSERT one row; its id."""


class QuickWriter(QuickTx, Protocol):
    """A writer that can also fence a quick action with a savepoint."""

    async def savepoint(self) -> None: ...

    async def release(self) -> None: ...

    async def rollback_to(self) -> None: ...


@dataclass(frozen=True, slots=True)
class QuickContext:
    """What a quick action may know and use. No `db`, no `runtime`: see the section comment above."""

    conversation_id: int
    contact_id: int
    account: AccountInfo
    language: str  # the contact's language, else the pack's
    vars: Mapping[str, Any]  # the flow variables as they are at the action node (read-only)
    last_inbound: Mapping[str, Any] | None  # the buyer's message of this step (kind, text masked, payload), if any
    tx: QuickTx  # the step's transaction: the ONLY way to the database
    now: datetime
    settings: Settings
    marketplace_kinds: frozenset[str] = frozenset()  # the channel kinds whose marketplace chat rules apply
    # the app's capability state (`RuntimeContext.state`): caches derived from our own tables only, e.g.
    # "sales.index" (the catalog search index). Never a handle to I/O.
    state: dict[str, Any] = field(default_factory=dict)


class _FencedTx:
    """`QuickContext.tx`: the writer's statements, with the savepoint opened before the action's first one
    (an action that touches no table costs no savepoint)."""

    __slots__ = ("_contact_changed", "_opened", "_writer")

    def __init__(self, writer: QuickWriter) -> None:
        self._writer = writer
        self._opened = False
        self._contact_changed = False

    @property
    def is_sqlite(self) -> bool:
        return self._writer.is_sqlite

    async def _before(self, stmt: Executable) -> None:
        if not self._opened:
            await self._writer.savepoint()
            self._opened = True
        if getattr(getattr(stmt, "table", None), "name", None) == "contacts":  # DML on what flows read
            self._contact_changed = True

    async def fetch(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        await self._before(stmt)
        return await self._writer.fetch(stmt, params)

    async def execute(self, stmt: Executable, params: Mapping[str, Any] | None = None) -> int:
        await self._before(stmt)
        return await self._writer.execute(stmt, params)

    async def insert_id(self, stmt: Insert, params: Mapping[str, Any] | None = None) -> int:
        await self._before(stmt)
        return await self._writer.insert_id(stmt, params)


ActionFn = Callable[[ActionContext, dict[str, Any]], Awaitable[Any]]
QuickActionFn = Callable[[QuickContext, dict[str, Any]], Awaitable[Any]]
#: `quick_if` actions run either way, so their function takes either context
EitherActionFn = Callable[[ActionContext | QuickContext, dict[str, Any]], Awaitable[Any]]
#: An action whose result (a dict) has this key gets those messages (`OutboundMessage.to_dict()` each) sent
#: in the transaction that applies the result: before the flow's own replies, exactly once, and never before
#: the flow has moved on (so a buyer cannot answer a question the flow is not yet waiting at).
ACTION_MESSAGES = "_messages"
MAX_ACTION_MESSAGES = 10
_NOT_QUICK = frozenset({"runtime", "httpx", "aiohttp", "llm"})


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    fn: Callable[..., Awaitable[Any]]
    quick: bool = False  # runs inside the step's transaction; fn takes a QuickContext
    quick_if: Callable[[RuntimeContext], bool] | None = None  # quick when this holds (fn takes either context)
    budget_ms: int = 50  # quick only: a slower run is logged (not interrupted)


def pop_action_messages(data: dict[str, Any]) -> list[OutboundMessage]:
    """Take the messages an action result carries (`ACTION_MESSAGES`) out of it: they are not a flow variable."""
    result = data.get("result")
    if not isinstance(result, dict) or ACTION_MESSAGES not in result:
        return []
    raw = result.pop(ACTION_MESSAGES)
    return [OutboundMessage.from_dict(m) for m in raw[:MAX_ACTION_MESSAGES] if isinstance(m, dict)]


def error_result(exc: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


class ActionRegistry:
    """Named, pluggable actions for `action` nodes (e.g. `wb.check_barcode`). Slow actions must be
    idempotent: after a crash an action may run again. Quick actions run exactly once (see above)."""

    def __init__(self) -> None:
        self._actions: dict[str, ActionSpec] = {}
        self._reactions: dict[str, list[tuple[str, QuickActionFn]]] = {}

    @overload
    def register(
        self, name: str, fn: ActionFn, *, quick: Literal[False] = False, quick_if: None = None, budget_ms: int = 50
    ) -> None: ...

    @overload
    def register(
        self, name: str, fn: QuickActionFn, *, quick: Literal[True], quick_if: None = None, budget_ms: int = 50
    ) -> None: ...

    @overload
    def register(
        self,
        name: str,
        fn: EitherActionFn,
        *,
        quick: Literal[False] = False,
        quick_if: Callable[[RuntimeContext], bool],
        budget_ms: int = 50,
    ) -> None: ...

    def register(
        self,
        name: str,
        fn: Callable[..., Awaitable[Any]],
        *,
        quick: bool = False,
        quick_if: Callable[[RuntimeContext], bool] | None = None,
        budget_ms: int = 50,
    ) -> None:
        """`quick=True`: always quick, `fn(QuickContext, args)`. `quick_if=pred`: quick when `pred(runtime)`
        holds, else slow, so `fn` takes either context. Neither: slow, `fn(ActionContext, args)`."""
        if quick and quick_if is not None:
            raise ValueError(f"action {name}: quick or quick_if, not both")
        if quick:
            code = getattr(fn, "__code__", None)
            used = set(code.co_names) if code is not None else set()
            if used & _NOT_QUICK:
                raise ValueError(f"action {name} uses {sorted(used & _NOT_QUICK)}: a quick action does no I/O")
        self._actions[name] = ActionSpec(name, fn, quick, quick_if, budget_ms)

    def add_reaction(self, on: str, name: str, fn: QuickActionFn) -> None:
        """`fn(QuickContext, data)` runs in the step's transaction when the step's effects include `on`
        ("handoff", "drafts_closed"); `name` (the capability's) is for the log."""
        self._reactions.setdefault(on, []).append((name, fn))

    def reacts_to(self, on: str) -> bool:
        return bool(self._reactions.get(on))

    async def react(
        self,
        on: str,
        data: Mapping[str, Any],
        writer: QuickWriter,
        *,
        conversation_id: int,
        contact_id: int,
        account: AccountInfo,
        language: str,
        variables: Mapping[str, Any],
        now: datetime,
        settings: Settings,
        marketplace_kinds: frozenset[str] = frozenset(),
        state: dict[str, Any] | None = None,
    ) -> None:
        """Run every reaction to `on`, each fenced by its own savepoint: one that fails is logged and
        undone; the step, and the other reactions, go on."""
        for name, fn in self._reactions.get(on, ()):
            tx = _FencedTx(writer)
            ctx = QuickContext(
                conversation_id,
                contact_id,
                account,
                language,
                variables,
                None,
                tx,
                now,
                settings,
                marketplace_kinds,
                state if state is not None else {},
            )
            try:
                await fn(ctx, dict(data))
            except Exception:
                log.exception("the %s reaction of %s failed", on, name)
                if tx._opened:
                    await writer.rollback_to()
                continue
            if tx._opened:
                await writer.release()

    def spec(self, name: str) -> ActionSpec | None:
        return self._actions.get(name)

    def get(self, name: str) -> Callable[..., Awaitable[Any]] | None:
        spec = self._actions.get(name)
        return spec.fn if spec is not None else None

    def names(self) -> list[str]:
        return sorted(self._actions)

    pop_messages = staticmethod(pop_action_messages)  # for `Ingest`, which cannot import this module

    def is_quick(self, name: str, runtime: RuntimeContext) -> bool:
        spec = self._actions.get(name)
        if spec is None:
            return False
        return spec.quick or (spec.quick_if is not None and spec.quick_if(runtime))

    async def run_quick(
        self,
        run: RunAction,
        writer: QuickWriter,
        *,
        conversation_id: int,
        contact_id: int,
        account: AccountInfo,
        language: str,
        variables: Mapping[str, Any],
        last_inbound: Mapping[str, Any] | None,
        now: datetime,
        settings: Settings,
        marketplace_kinds: frozenset[str] = frozenset(),
        state: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Run a quick action in the writer's transaction, fenced by a savepoint. Returns the ACTION_RESULT
        data (`{"ok": True, "result": …}`, or `{"ok": False, "error": …}` after rolling back to the
        savepoint, as the slow path reports a failure) and whether the action changed the contact (its
        tags, fields …: what the flow reads about the contact, see `ContactView`)."""
        spec = self._actions[run.name]
        tx = _FencedTx(writer)
        ctx = QuickContext(
            conversation_id,
            contact_id,
            account,
            language,
            variables,
            last_inbound,
            tx,
            now,
            settings,
            marketplace_kinds,
            state if state is not None else {},
        )
        started = time.perf_counter()
        try:
            result = await spec.fn(ctx, dict(run.args))
        except Exception as exc:  # the flow's business (on_error); its writes are undone, the step's are not
            log.exception("quick action %s failed", run.name)
            if tx._opened:
                await writer.rollback_to()
            return error_result(exc), False
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            if elapsed_ms > spec.budget_ms:
                log.warning("quick action %s took %.1f ms (budget %d ms)", run.name, elapsed_ms, spec.budget_ms)
        if tx._opened:
            await writer.release()
        return {"ok": True, "result": result}, tx._contact_changed


class Timers:
    """Fires due timers and runs actions."""

    def __init__(self, ctx: RuntimeContext, ingest: Ingest, actions: ActionRegistry) -> None:
        self.ctx = ctx
        self.ingest = ingest
        self.actions = actions
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            fired = await self.run_once()
            if not fired:
                try:
                    await asyncio.wait_for(stop.wait(), self.ctx.settings.timer_poll_seconds)
                except TimeoutError:
                    pass
        await self.cancel_actions()

    async def cancel_actions(self, timeout: float = 5.0) -> None:
        """Stop the actions still running here and wait for them (their timer rows re-run them later)."""
        tasks = [task for task in self._running if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def run_once(self) -> int:
        claimed = await self._claim()
        for timer_id, kind in claimed:
            if kind == "action":
                await self.run_action(timer_id, claimed_already=True)
            else:
                await self.fire(timer_id)
        return len(claimed)

    def start_action(self, timer_id: int) -> None:
        """Run an action right after the commit that created it (the timer row is the crash net)."""
        task = asyncio.get_running_loop().create_task(self.run_action(timer_id, claimed_already=False))
        self._running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("action task failed", exc_info=task.exception())

    async def _claim(self) -> list[tuple[int, str]]:
        now = utcnow()
        async with self.ctx.db.write() as session:
            query = (
                select(Timer.id, Timer.kind)
                .where(
                    ((Timer.status == "pending") & (Timer.due_at <= now))
                    | ((Timer.status == "running") & (Timer.lease_until < now))
                )
                .order_by(Timer.due_at)
                .limit(100)
            )
            if not self.ctx.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            if rows:
                await session.execute(
                    update(Timer)
                    .where(Timer.id.in_([r.id for r in rows]))
                    .values(status="running", lease_until=now + timedelta(seconds=120), attempts=Timer.attempts + 1)
                )
        return [(r.id, r.kind) for r in rows]

    async def fire(self, timer_id: int, data: dict[str, Any] | None = None, *, run_here: bool = False) -> bool:
        """Feed a claimed timer to its conversation and mark it done, in one transaction.

        `run_here`: the timer is a quick action's (one past `ingest.MAX_QUICK_CHAIN`, or a row written before the
        action became quick): it runs now, inside this transaction, and its result is the event's data. Quick
        actions the flow reaches next run in this step too (`Ingest.step`), so `slow -> quick -> quick`
        chains take one transaction after the slow action."""
        now = utcnow()
        async with self.ctx.db.write() as session:
            timer = (await session.execute(select(Timer).where(Timer.id == timer_id))).scalar_one_or_none()
            if timer is None or timer.status not in ("running", "pending"):
                return False
            conv = await repo.load_conversation(session, conversation_id=timer.conversation_id, lock=True)
            timer.status, timer.fired_at = "done", now
            if conv is None:
                return False
            kind = EventKind.ACTION_RESULT if timer.kind == "action" else EventKind.TIMER
            external_id = f"timer:{timer.id}"
            if not await repo.record_inbound(
                session,
                account_id=conv.channel_account_id,
                external_id=external_id,
                conversation_id=conv.id,
                kind=str(kind),
                now=now,
            ):
                return False
            if run_here and timer.kind == "action":
                payload = dict(timer.payload)
                run = RunAction(
                    timer.token,
                    str(payload.get("name")),
                    dict(payload.get("args") or {}),
                    float(payload.get("timeout") or 30),
                )
                data = await self.ingest.run_quick(repo.SessionWriter(session), conv, run, now)
            event = InboundEvent(
                channel_account_id=conv.channel_account_id,
                external_id=external_id,
                sender_id=conv.recipient,
                kind=kind,
                payload=timer.token,
                data=data or {},
            )
            sent = await self._action_messages(session, conv, event.data, now)
            replies, actions = await self.ingest.step(session, conv, event, now)
        self.ingest.after_commit(conv.id, conv.channel_account_id, replies + sent, actions)
        return True

    async def _action_messages(
        self, session: AsyncSession, conv: repo.ConversationRow, data: dict[str, Any], now: datetime
    ) -> int:
        messages = pop_action_messages(data)
        if messages and is_marketplace(self.ctx, conv.channel_account_id):
            language = language_of(self.ctx, conv.channel_account_id, conv.contact_language)
            messages, blocked = screen(self.ctx, conv.channel_account_id, conv.id, messages, language=language, now=now)
            await repo.log_events(session, blocked)
        for message in messages:
            await enqueue(
                session,
                conv.id,
                conv.channel_account_id,
                conv.recipient,
                message,
                author="bot",
                now=now,
                local=self.ctx.is_local(conv.channel_account_id),
            )
        return len(messages)

    async def run_action(self, timer_id: int, *, claimed_already: bool) -> None:
        now = utcnow()
        async with self.ctx.db.write() as session:
            timer = await session.get(Timer, timer_id)
            if timer is None or (not claimed_already and timer.status != "pending"):
                return
            if not claimed_already:
                timer.status, timer.lease_until = "running", now + timedelta(seconds=120)
            payload, conversation_id = dict(timer.payload), timer.conversation_id
            conv = await repo.load_conversation(session, conversation_id=conversation_id, lock=False)
        if conv is None:
            return
        if self.actions.is_quick(str(payload.get("name")), self.ctx):
            await self.fire(timer_id, run_here=True)  # inside the transaction that applies its result
            return
        inbound = payload.get("inbound")
        context = ActionContext(
            conversation_id, conv.contact_id, self.ctx, MappingProxyType(inbound) if isinstance(inbound, dict) else None
        )
        result = await self._call(payload, context)
        await self.fire(timer_id, result)

    async def _call(self, payload: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        fn = self.actions.get(str(payload.get("name")))
        if fn is None:
            return {"ok": False, "error": f"unknown action {payload.get('name')!r}"}
        try:
            result = await asyncio.wait_for(
                fn(ctx, dict(payload.get("args") or {})), timeout=float(payload.get("timeout") or 30)
            )
        except TimeoutError:
            return {"ok": False, "error": "timeout"}
        except Exception as exc:  # an action's failure is the flow's business (on_error), not a crash
            log.exception("action %s failed", payload.get("name"))
            return error_result(exc)
        return {"ok": True, "result": result}
