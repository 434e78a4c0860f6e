"""Quick flow actions: run inside the step's transaction (the ingest transaction on the plain-SQL path, or
the one that fires a timer), under a savepoint, their result applied in the same step; slow actions keep
their durable timer row. Real SQLite, and PostgreSQL when OTKLIK_TEST_PG_URL is set."""

from __future__ import annotations

import dataclasses
import types
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select, update

from otklik.adapters.db.engine import Database, raw_write
from otklik.adapters.db.models import (
    Contact,
    ContactTag,
    Conversation,
    EventLog,
    InboundEventRow,
    Message,
    Timer,
)
from otklik.bootstrap import Otklik
from otklik.clock import utcnow
from otklik.conversations import tags
from otklik.conversations.context import RuntimeContext
from otklik.conversations.ingest import MAX_QUICK_CHAIN, Ingest
from otklik.conversations.repo import RawWriter, SessionWriter
from otklik.conversations.timers import ActionContext, ActionRegistry, QuickContext, Timers
from otklik.core.messages import EventKind, InboundEvent
from otklik.testing.recording import RecordingSender

_RAN = insert(EventLog)
_RUNS = select(func.count()).select_from(EventLog).where(EventLog.kind == "quick_ran")


async def count_run(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    """A quick action with a visible side effect: one event_log row per run; returns the runs so far."""
    await ctx.tx.execute(
        _RAN,
        {
            "ts": ctx.now,
            "actor": "test",
            "kind": "quick_ran",
            "subject_type": "conversation",
            "subject_id": str(ctx.conversation_id),
            "data": {"args": args},
        },
    )
    return {"n": (await ctx.tx.fetch(_RUNS))[0][0]}


async def tag_then_fail(ctx: QuickContext, args: dict[str, Any]) -> None:
    """Writes (a tag), then fails: in Python, or in the database (a duplicate key, which on PostgreSQL
    aborts the transaction unless the savepoint is rolled back)."""
    await tags.add_tag(ctx.tx, ctx.contact_id, "half", ctx.now)
    if args.get("how") == "db":
        await ctx.tx.execute(insert(ContactTag), {"contact_id": ctx.contact_id, "tag": "half", "created_at": ctx.now})
    raise RuntimeError("boom")


async def slow_echo(ctx: ActionContext, args: dict[str, Any]) -> dict[str, Any]:
    return {"contact": ctx.contact_id}


async def install(app: Otklik, source: str) -> tuple[int, RecordingSender, list[int]]:
    """Save a test flow, register the test actions, and a recording channel. Actions started after a commit
    are collected (not run) so that each test runs them when it wants to."""
    app.actions.register("test.count", count_run, quick=True)
    app.actions.register("test.fail", tag_then_fail, quick=True)
    app.actions.register("test.slow", slow_echo)
    await app.flows.save(source, pack="echo", author="test")
    await app._rebuild_engines()
    sender = RecordingSender()
    account = await app.ensure_account(f"rec-{id(sender)}", "recording", "echo")
    await app.reload()
    app.ctx.senders[account] = sender
    started: list[int] = []
    app.ctx.action_starter = started.append
    return account, sender, started


def start(account: int, flow: str, ext: str = "e1", sender: str = "chat-q") -> InboundEvent:
    return InboundEvent(account, ext, sender, EventKind.BUTTON, payload=f"flow:{flow}")


async def count(app: Otklik, model: type, *where: object) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def bot_texts(app: Otklik) -> list[str]:
    async with app.db.read() as session:
        rows = await session.execute(select(Message.text).where(Message.direction == "out").order_by(Message.id))
        return list(rows.scalars())


async def quick_runs(app: Otklik) -> int:
    return await count(app, EventLog, EventLog.kind == "quick_ran")


TAGGING = """
id: echo.quick
start: hello
nodes:
  hello: {type: message, text: "до", next: tag}
  tag: {type: action, action: contact.add_tag, args: {tag: "vip"}, save_as: added, next: done, on_error: bad}
  done: {type: end, text: "теги: {{ contact.tags }}"}
  bad: {type: end, text: "ошибка {{ action_error }}"}
"""


async def test_a_quick_action_is_applied_in_the_same_step(otklik: Otklik) -> None:
    account, _sender, started = await install(otklik, TAGGING)
    result = await otklik.ingest(start(account, "echo.quick"))
    # one ingest call: the action ran, its result moved the flow on, the replies are written, in order
    assert result.replies == 2 and started == [] and not otklik.timers._running
    assert await bot_texts(otklik) == ["до", "теги: ['vip']"]  # the flow reads the tag the action just added
    assert await count(otklik, Timer) == 0
    assert await count(otklik, ContactTag, ContactTag.tag == "vip") == 1
    async with otklik.db.read() as session:
        state = await session.scalar(select(Conversation.state))
        contact_tags = await session.scalar(select(Contact.tags))
    assert state["vars"]["added"] == ["vip"] and contact_tags == {"list": ["vip"]}


@pytest.mark.parametrize("how", ["py", "db"])
async def test_a_failing_quick_action_is_rolled_back_to_its_savepoint(otklik: Otklik, how: str) -> None:
    source = f"""
id: echo.failing
start: hello
nodes:
  hello: {{type: message, text: "до", next: act}}
  act: {{type: action, action: test.fail, args: {{how: {how}}}, next: done, on_error: bad}}
  done: {{type: end, text: "готово"}}
  bad: {{type: end, text: "ошибка {{{{ action_error }}}}"}}
"""
    account, _sender, started = await install(otklik, source)
    result = await otklik.ingest(start(account, "echo.failing"))
    assert not result.duplicate and result.replies == 2 and started == []
    texts = await bot_texts(otklik)
    expected = "ошибка RuntimeError: boom" if how == "py" else "ошибка IntegrityError"
    assert texts[0] == "до" and texts[1].startswith(expected), texts
    # the action's own writes are gone ...
    assert await count(otklik, ContactTag) == 0
    async with otklik.db.read() as session:
        assert await session.scalar(select(Contact.tags)) == {}
        conversation = (await session.execute(select(Conversation))).scalar_one()
    # ... the step's are committed: the buyer's event and message, the replies, the state (flow ended)
    assert await count(otklik, InboundEventRow, InboundEventRow.external_id == "e1") == 1
    assert await count(otklik, Message, Message.direction == "in") == 1
    assert conversation.flow is None and conversation.state["vars"]["action_error"].startswith(expected[7:])
    assert await count(otklik, Timer) == 0


async def test_a_rollback_of_the_whole_step_undoes_the_quick_action(
    otklik: Otklik, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = """
id: echo.counting
start: act
nodes:
  act: {type: action, action: test.count, save_as: c, next: done}
  done: {type: end, text: "n={{ c.n }}"}
"""
    account, _sender, _started = await install(otklik, source)
    real_apply = Ingest.apply

    async def crash(self: Ingest, *args: Any, **kw: Any) -> Any:
        raise RuntimeError("the process died before the commit")

    monkeypatch.setattr(Ingest, "apply", crash)  # after the quick action ran, before the commit
    with pytest.raises(RuntimeError, match="died"):
        await otklik.ingest(start(account, "echo.counting"))
    assert await quick_runs(otklik) == 0  # rolled back with the step
    assert await count(otklik, InboundEventRow) == 0 and await count(otklik, Message) == 0
    monkeypatch.setattr(Ingest, "apply", real_apply)
    again = await otklik.ingest(start(account, "echo.counting"))  # the channel redelivers the event
    assert not again.duplicate and await quick_runs(otklik) == 1
    assert await bot_texts(otklik) == ["n=1"]


async def test_a_duplicate_inbound_event_does_not_run_the_quick_action_twice(otklik: Otklik) -> None:
    source = """
id: echo.counting
start: act
nodes:
  act: {type: action, action: test.count, save_as: c, next: done}
  done: {type: end, text: "n={{ c.n }}"}
"""
    account, _sender, _started = await install(otklik, source)
    first = await otklik.ingest(start(account, "echo.counting"))
    second = await otklik.ingest(start(account, "echo.counting"))
    assert not first.duplicate and second.duplicate and second.replies == 0
    assert await quick_runs(otklik) == 1 and await bot_texts(otklik) == ["n=1"]


LOOP = """
id: echo.loop
start: act
nodes:
  act: {type: action, action: test.count, save_as: c, next: enough}
  enough:
    type: condition
    branches:
      - {when: {var: c.n, op: gte, value: 10}, next: done}
    else: act
  done: {type: end, text: "n={{ c.n }}"}
"""


async def test_the_chain_limit_falls_back_to_the_timer_path(otklik: Otklik) -> None:
    account, _sender, started = await install(otklik, LOOP)
    result = await otklik.ingest(start(account, "echo.loop"))
    assert result.replies == 0 and await quick_runs(otklik) == MAX_QUICK_CHAIN
    async with otklik.db.read() as session:
        timer = (await session.execute(select(Timer))).scalar_one()
    assert (timer.kind, timer.status, timer.payload["name"]) == ("action", "pending", "test.count")
    assert started == [timer.id]
    # the timer task runs the 9th action inside the transaction that fires the timer, and the 10th in that step
    await otklik.timers.run_action(timer.id, claimed_already=False)
    assert await quick_runs(otklik) == 10
    assert await bot_texts(otklik) == ["n=10"]
    async with otklik.db.read() as session:
        statuses = (await session.execute(select(Timer.status))).scalars().all()
    assert statuses == ["done"] and started == [timer.id]
    await otklik.timers.run_action(timer.id, claimed_already=False)  # a second start does nothing
    assert await quick_runs(otklik) == 10


async def test_a_quick_action_timer_is_recovered_by_the_scheduler(otklik: Otklik) -> None:
    """A quick action's timer row (past the chain limit) left by a dead process: claimed and run once."""
    account, _sender, _started = await install(otklik, LOOP)
    await otklik.ingest(start(account, "echo.loop"))
    async with otklik.db.write() as session:
        await session.execute(update(Timer).values(due_at=utcnow()))
    assert await otklik.timers.run_once() == 1
    assert await otklik.timers.run_once() == 0
    assert await quick_runs(otklik) == 10 and await bot_texts(otklik) == ["n=10"]


async def test_slow_actions_still_go_through_their_timer_and_quick_ones_follow_in_that_step(otklik: Otklik) -> None:
    source = """
id: echo.slow
start: hello
nodes:
  hello: {type: message, text: "проверяю", next: slow}
  slow: {type: action, action: test.slow, save_as: s, next: act}
  act: {type: action, action: test.count, save_as: c, next: done}
  done: {type: end, text: "n={{ c.n }}"}
"""
    account, _sender, started = await install(otklik, source)
    result = await otklik.ingest(start(account, "echo.slow"))
    assert result.replies == 1 and await bot_texts(otklik) == ["проверяю"]
    async with otklik.db.read() as session:
        timer = (await session.execute(select(Timer))).scalar_one()
    assert (timer.kind, timer.payload["name"], timer.status) == ("action", "test.slow", "pending")
    assert started == [timer.id] and await quick_runs(otklik) == 0
    await otklik.timers.run_action(timer.id, claimed_already=False)  # what the started task does
    assert await bot_texts(otklik) == ["проверяю", "n=1"] and await quick_runs(otklik) == 1
    async with otklik.db.read() as session:
        timers = (await session.execute(select(Timer.status))).scalars().all()
        state = await session.scalar(select(Conversation.state))
    assert timers == ["done"] and state["vars"]["s"]["contact"] > 0  # one timer row: the slow action's


async def test_a_quick_action_failing_after_a_slow_one_rolls_back_in_the_timers_transaction(otklik: Otklik) -> None:
    """The step that applies a slow result runs in an ORM session (`SessionWriter`): a quick action failing
    there (a duplicate key: on PostgreSQL it aborts the transaction without the savepoint) is rolled back
    alone; the timer is still marked done and the flow takes its error branch."""
    source = """
id: echo.slowfail
start: slow
nodes:
  slow: {type: action, action: test.slow, save_as: s, next: act}
  act: {type: action, action: test.fail, args: {how: db}, next: done, on_error: bad}
  done: {type: end, text: "готово"}
  bad: {type: end, text: "ошибка {{ action_error }}"}
"""
    account, _sender, started = await install(otklik, source)
    await otklik.ingest(start(account, "echo.slowfail"))
    (timer_id,) = started
    await otklik.timers.run_action(timer_id, claimed_already=False)
    (text,) = await bot_texts(otklik)
    assert text.startswith("ошибка IntegrityError")
    assert await count(otklik, ContactTag) == 0
    async with otklik.db.read() as session:
        assert await session.scalar(select(Contact.tags)) == {}
        assert (await session.execute(select(Timer.status))).scalars().all() == ["done"]
        assert await session.scalar(select(Conversation.flow)) is None


async def test_a_quick_action_has_no_way_to_the_database(otklik: Otklik) -> None:
    seen: list[QuickContext] = []

    async def peek(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
        seen.append(ctx)
        return {}

    source = """
id: echo.peek
start: act
nodes:
  act: {type: action, action: test.peek, next: done}
  done: {type: end, text: "ok"}
"""
    otklik.actions.register("test.peek", peek, quick=True)
    account, _sender, _started = await install(otklik, source)
    await otklik.ingest(start(account, "echo.peek"))
    (ctx,) = seen
    names = {f.name for f in dataclasses.fields(ctx)}
    assert names == {"conversation_id", "contact_id", "account", "language", "vars", "last_inbound", "tx", "now"} | {
        "settings",
        "marketplace_kinds",
        "state",
    }
    assert all(isinstance(kind, str) for kind in ctx.marketplace_kinds)
    assert ctx.state is otklik.ctx.state  # the app's caches (e.g. the catalog index), no handle to I/O
    for handle in ("db", "runtime", "session", "llm", "senders"):
        assert not hasattr(ctx, handle)
    assert {a for a in dir(ctx.tx) if not a.startswith("_")} == {"fetch", "execute", "insert_id", "is_sqlite"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.tx = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        ctx.vars["x"] = 1  # type: ignore[index]
    found = _reachable(ctx, (Database, RuntimeContext, Otklik, Ingest, Timers, ActionRegistry))
    assert found == [], found

    async def sneaky(ctx: Any, args: dict[str, Any]) -> Any:
        async with ctx.runtime.db.write() as session:  # would wait for the write lock its own step holds
            return session

    with pytest.raises(ValueError, match="runtime"):
        otklik.actions.register("test.sneaky", sneaky, quick=True)


def _reachable(root: object, kinds: tuple[type, ...], depth: int = 5) -> list[str]:
    """Instances of `kinds` reachable from `root` through fields, slots, instance dicts and containers."""
    found: list[str] = []
    seen: set[int] = set()

    def walk(obj: object, path: str, left: int) -> None:
        if id(obj) in seen or left < 0 or obj is None:
            return
        seen.add(id(obj))
        if isinstance(obj, kinds):
            found.append(f"{path}: {type(obj).__name__}")
            return
        if isinstance(obj, str | bytes | int | float | bool | type | types.ModuleType | types.FunctionType):
            return
        if isinstance(obj, dict | types.MappingProxyType):
            for k, v in obj.items():
                walk(v, f"{path}[{k!r}]", left - 1)
            return
        if isinstance(obj, list | tuple | set | frozenset):
            for i, v in enumerate(obj):
                walk(v, f"{path}[{i}]", left - 1)
            return
        attrs: dict[str, object] = dict(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    attrs[slot] = getattr(obj, slot)
        for name, value in attrs.items():
            walk(value, f"{path}.{name}", left - 1)

    walk(root, "ctx", depth)
    return found


async def test_knowledge_answer_is_quick_only_without_an_llm(otklik: Otklik) -> None:
    assert otklik.ctx.llm is None and otklik.actions.is_quick("knowledge.answer", otklik.ctx)
    otklik.ctx.llm = object()
    try:
        assert not otklik.actions.is_quick("knowledge.answer", otklik.ctx)
    finally:
        otklik.ctx.llm = None
    assert otklik.actions.is_quick("care.record_incident", otklik.ctx)
    assert otklik.actions.is_quick("care.find_product", otklik.ctx)
    assert otklik.actions.is_quick("contact.add_tag", otklik.ctx)
    for slow in ("wb.check_barcode", "cashback.step", "cashback.nudge"):
        assert not otklik.actions.is_quick(slow, otklik.ctx)


_CONTACT = select(Contact.tags, Contact.subscribed, Contact.fields, Contact.created_at, Contact.last_seen_at).where(
    Contact.id == bindparam("cid")
)
_SET_FIELDS = update(Contact).where(Contact.id == bindparam("cid")).values(fields=bindparam("new_fields"))


async def test_core_statements_on_the_plain_sql_path_read_and_write_like_the_orm(otklik: Otklik) -> None:
    """`RawWriter` (the ingest transaction) and `SessionWriter` (an ORM session) run the same Core
    statements with the same values: column defaults, aware datetimes, JSON, booleans."""
    now = utcnow()
    async with raw_write(otklik.db) as tx:
        raw = RawWriter(tx)
        contact = await raw.insert_id(insert(Contact), {"display_name": "Анна", "created_at": now})
        assert await raw.execute(_SET_FIELDS, {"cid": contact, "new_fields": {"size": ["M", 2]}}) == 1
        (row,) = await raw.fetch(_CONTACT, {"cid": contact})
        literal = await raw.fetch(select(Contact.id).where(Contact.display_name == "Анна"))  # values in the statement
    assert row.tags == {} and row.subscribed is True and row.fields == {"size": ["M", 2]}
    assert row.created_at == now and row.created_at.tzinfo is not None and row.last_seen_at is None
    assert [r.id for r in literal] == [contact]
    async with otklik.db.write() as session:
        orm = (await session.execute(select(Contact).where(Contact.id == contact))).scalar_one()
        (same,) = await SessionWriter(session).fetch(_CONTACT, {"cid": contact})
    assert (orm.tags, orm.subscribed, orm.fields, orm.created_at) == ({}, True, {"size": ["M", 2]}, now)
    assert orm.created_at.tzinfo == UTC and tuple(same) == tuple(row)
