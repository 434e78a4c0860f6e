"""Durable time: wait nodes, question timeouts and pending actions are timer rows.

The scheduler claims due rows with a lease and feeds them to the conversation as internal events in
the same transaction that marks them done, so a crash (even `kill -9`) repeats nothing and loses
nothing: an unfinished claim's lease runs out and the row is claimed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import Timer
from otklik.clock import utcnow
from otklik.conversations import repo
from otklik.conversations.context import RuntimeContext
from otklik.conversations.ingest import Ingest
from otklik.conversations.outbox import enqueue
from otklik.core.messages import EventKind, InboundEvent, OutboundMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action may know: which conversation and contact it runs for, and the runtime."""

    conversation_id: int
    contact_id: int
    runtime: RuntimeContext


ActionFn = Callable[[ActionContext, dict[str, Any]], Awaitable[Any]]
#: An action whose result (a dict) has this key gets those messages (`OutboundMessage.to_dict()` each) sent
#: in the transaction that applies the result: before the flow's own replies, exactly once, and never before
#: the flow has moved on (so a buyer cannot answer a question the flow is not yet waiting at).
ACTION_MESSAGES = "_messages"
MAX_ACTION_MESSAGES = 10


class ActionRegistry:
    """Named, pluggable actions for `action` nodes (e.g. `wb.check_barcode`). Actions must be idempotent:
    after a crash an action may run again."""

    def __init__(self) -> None:
        self._actions: dict[str, ActionFn] = {}

    def register(self, name: str, fn: ActionFn) -> None:
        self._actions[name] = fn

    def get(self, name: str) -> ActionFn | None:
        return self._actions.get(name)

    def names(self) -> list[str]:
        return sorted(self._actions)


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

    async def fire(self, timer_id: int, data: dict[str, Any] | None = None) -> bool:
        """Feed a claimed timer to its conversation and mark it done, in one transaction."""
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
            event = InboundEvent(
                channel_account_id=conv.channel_account_id,
                external_id=f"timer:{timer.id}",
                sender_id=conv.recipient,
                kind=kind,
                payload=timer.token,
                data=data or {},
            )
            if not await repo.record_inbound(
                session,
                account_id=conv.channel_account_id,
                external_id=event.external_id,
                conversation_id=conv.id,
                kind=str(kind),
                now=now,
            ):
                return False
            sent = await self._action_messages(session, conv, event.data, now)
            replies, actions = await self.ingest.step(session, conv, event, now)
        self.ingest.after_commit(conv.id, conv.channel_account_id, replies + sent, actions)
        return True

    async def _action_messages(
        self, session: AsyncSession, conv: repo.ConversationRow, data: dict[str, Any], now: datetime
    ) -> int:
        result = data.get("result")
        if not isinstance(result, dict) or ACTION_MESSAGES not in result:
            return 0
        raw = result.pop(ACTION_MESSAGES)  # not a flow variable
        messages = [OutboundMessage.from_dict(m) for m in raw[:MAX_ACTION_MESSAGES] if isinstance(m, dict)]
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
        result = await self._call(payload, ActionContext(conversation_id, conv.contact_id, self.ctx))
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
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return {"ok": True, "result": result}
