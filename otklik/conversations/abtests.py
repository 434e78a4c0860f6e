"""A/B tests in the kernel: exposures, conversions, results, ending a test (docs/outreach.md, "A/B tests").

A flow's message node with `ab:` (docs/flows.md) is assigned, exposed and converted by the engine; the
ingest step writes what the engine recorded (`ab_exposure`, `ab_conversion`) here. A broadcast uses the
same helpers: `assign_variant(test_key, contact_id, splits)` (pure, `otklik.core.abtest`) picks the variant,
`record_exposure(tx, …)` stores that the contact saw it — and, with the conversation, makes the engine
watch the goal (replied, clicked) on the contact's next messages. "ordered" and "booked" goals are read at
results time from the capabilities' `orders` / `bookings` counters (`Capability.counters`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import ABConversion, ABExposure, ABTest, Conversation
from otklik.clock import utcnow
from otklik.conversations.repo import as_tx
from otklik.core import abtest
from otklik.core.abtest import AB_VAR, VariantResult
from otklik.core.errors import InvalidInput, NotFound
from otklik.core.flows.model import AB_GOALS, ABGoal, MessageNode, parse_duration

if TYPE_CHECKING:
    from otklik.conversations.timers import QuickTx

__all__ = [
    "COUNTER_OF_GOAL",
    "TestResults",
    "assign_variant",
    "record_conversion",
    "record_exposure",
    "test_results",
]

assign_variant = abtest.assign_variant
COUNTER_OF_GOAL = {"ordered": "orders", "booked": "bookings"}  # `Counter.name` a goal reads
MAX_KEY, MAX_VARIANT, MAX_SOURCE = 80, 32, 120


def _inserts(table: Any, keys: tuple[str, ...]) -> tuple[Any, Any]:
    return (
        sqlite_insert(table).on_conflict_do_nothing(index_elements=list(keys)),
        pg_insert(table).on_conflict_do_nothing(index_elements=list(keys)),
    )


_ADD_TEST = _inserts(ABTest, ("key",))
_ADD_EXPOSURE = _inserts(ABExposure, ("test_key", "contact_id"))
_ADD_CONVERSION = _inserts(ABConversion, ("test_key", "contact_id"))
# locked like ingest locks the conversation, so a step running at the same time cannot lose this change
# (SQLite serialises writers and renders no FOR UPDATE)
_STATE = select(Conversation.state).where(Conversation.id == bindparam("cid")).with_for_update()
_SET_STATE = update(Conversation).where(Conversation.id == bindparam("cid")).values(state=bindparam("new_state"))


def _pick(pair: tuple[Any, Any], tx: QuickTx) -> Any:
    return pair[0] if tx.is_sqlite else pair[1]


def _goal(goal: Mapping[str, Any] | ABGoal) -> ABGoal:
    try:
        return goal if isinstance(goal, ABGoal) else ABGoal.model_validate(dict(goal))
    except ValueError as exc:
        raise InvalidInput(f"goal: {exc}") from None


async def record_exposure(
    tx: QuickTx | AsyncSession,
    test_key: str,
    contact_id: int,
    variant: str,
    *,
    goal: Mapping[str, Any] | ABGoal,
    variants: Sequence[tuple[str, int | float]] = (),
    source: str = "",
    conversation_id: int | None = None,
    now: datetime | None = None,
) -> bool:
    """The contact saw `variant` of `test_key` (in the caller's transaction). The first exposure counts; a
    second one writes nothing and returns False. `variants`: (key, split) of every variant, in order (the
    first is the control), kept with the test on its first exposure. With `conversation_id`, a goal the
    engine sees (replied, clicked; reached for flow tests) is watched on that conversation's next messages."""
    if not test_key or len(test_key) > MAX_KEY or not variant or len(variant) > MAX_VARIANT:
        raise InvalidInput("an A/B test key (1-80 characters) and a variant (1-32) are required")
    checked = _goal(goal)
    now = now or utcnow()
    tx = as_tx(tx)
    keys = [str(k)[:MAX_VARIANT] for k, _ in variants] or [variant]
    splits = [float(s) for _, s in variants]
    await tx.execute(
        _pick(_ADD_TEST, tx),
        {
            "key": test_key,
            "source": source[:MAX_SOURCE],
            "variants": {"keys": keys, "splits": splits},
            "goal": checked.model_dump(exclude_none=True),
            "status": "running",
            "kept": None,
            "created_at": now,
            "ended_at": None,
            "ended_by": None,
        },
    )
    added = await tx.execute(
        _pick(_ADD_EXPOSURE, tx),
        {
            "test_key": test_key,
            "contact_id": contact_id,
            "conversation_id": conversation_id,
            "variant": variant,
            "source": source[:MAX_SOURCE],
            "exposed_at": now,
        },
    )
    if added and conversation_id is not None and checked.kind in ("replied", "clicked"):
        await _watch(tx, conversation_id, test_key, variant, checked, now)
    return bool(added)


async def _watch(tx: QuickTx, conversation_id: int, test_key: str, variant: str, goal: ABGoal, now: datetime) -> None:
    """Put the test in the conversation's open tests (`AB_VAR`), where the engine looks for its goal."""
    rows = await tx.fetch(_STATE, {"cid": conversation_id})
    if not rows:
        return
    state = dict(rows[0][0] or {})
    variables = dict(state.get("vars") or {})
    open_tests = dict(variables.get(AB_VAR) or {})
    if test_key in open_tests:
        return
    until = now + timedelta(seconds=parse_duration(goal.window))
    open_tests[test_key] = {
        "variant": variant,
        "goal": goal.kind,
        "button": goal.button,
        "node": None,
        "until": until.isoformat(),
    }
    variables[AB_VAR] = open_tests
    state["vars"] = variables
    await tx.execute(_SET_STATE, {"cid": conversation_id, "new_state": state})


async def record_conversion(
    tx: QuickTx | AsyncSession, test_key: str, contact_id: int, variant: str, goal: str, now: datetime
) -> bool:
    """The contact reached the goal of `test_key` (once per test and contact)."""
    tx = as_tx(tx)
    added = await tx.execute(
        _pick(_ADD_CONVERSION, tx),
        {
            "test_key": test_key[:MAX_KEY],
            "contact_id": contact_id,
            "variant": str(variant)[:MAX_VARIANT],
            "goal": str(goal)[:16],
            "converted_at": now,
        },
    )
    return bool(added)


async def apply_record(tx: QuickTx, kind: str, data: Mapping[str, Any], contact_id: int, conversation_id: int,
                       now: datetime) -> None:  # fmt: skip
    """What an engine `Record` of an A/B test means for the tables (called by the ingest step)."""
    test, variant = str(data.get("test") or ""), str(data.get("variant") or "")
    if not test or not variant:
        return
    if kind == "ab_exposure":
        raw = data.get("variants")
        variants = [(str(k), float(s)) for k, s in raw] if isinstance(raw, list) else []
        source = f"flow:{data.get('flow')}/{data.get('node')}"
        await record_exposure(
            tx, test, contact_id, variant, goal=data.get("goal") or {"kind": "replied"}, variants=variants,
            source=source, now=now,
        )  # fmt: skip
    elif kind == "ab_conversion":
        await record_conversion(tx, test, contact_id, variant, str(data.get("goal") or ""), now)


# --- results ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestResults:
    key: str
    source: str
    goal: dict[str, Any]
    status: str
    kept: str | None
    variants: list[VariantResult]
    note: str = ""  # e.g. no capability counts bookings

    @property
    def flow_node(self) -> tuple[str, str] | None:
        """The flow and node of a flow's test ("flow:<flow>/<node>")."""
        if not self.source.startswith("flow:") or "/" not in self.source:
            return None
        flow, _, node = self.source[5:].partition("/")
        return flow, node


async def list_tests(session: AsyncSession) -> list[dict[str, Any]]:
    """Every test with its exposures and conversions (the admin's list)."""
    tests = (await session.execute(select(ABTest).order_by(ABTest.created_at.desc()).limit(500))).scalars().all()
    seen_rows = await session.execute(select(ABExposure.test_key, func.count()).group_by(ABExposure.test_key))
    seen = {str(k): int(n) for k, n in seen_rows}
    won_rows = await session.execute(select(ABConversion.test_key, func.count()).group_by(ABConversion.test_key))
    won = {str(k): int(n) for k, n in won_rows}
    return [
        {
            "key": t.key, "source": t.source, "goal": t.goal.get("kind", ""), "status": t.status, "kept": t.kept,
            "exposures": int(seen.get(t.key, 0)), "conversions": int(won.get(t.key, 0)), "created_at": t.created_at,
        }
        for t in tests
    ]  # fmt: skip


CounterFn = Any  # `fn(session, since, until) -> [(when, conversation_id)]` of `platform.plugins.Counter`


async def test_results(
    session: AsyncSession, test_key: str, counters: Mapping[str, CounterFn] | None = None
) -> TestResults:
    """Per variant: sample (contacts exposed), conversions, rate with its Wilson interval, and a
    two-proportion z-test against the first variant. `counters`: name -> counter function of the
    plugged-in capabilities, for the goals "ordered" (`orders`) and "booked" (`bookings`)."""
    test = await session.get(ABTest, test_key)
    if test is None:
        raise NotFound(f"no A/B test {test_key[:80]!r}")
    goal = dict(test.goal or {})
    kind = str(goal.get("kind", ""))
    note = ""
    sample_rows = await session.execute(
        select(ABExposure.variant, func.count()).where(ABExposure.test_key == test_key).group_by(ABExposure.variant)
    )
    sample = {str(v): int(n) for v, n in sample_rows}
    wins: dict[str, int] = {}
    if kind in COUNTER_OF_GOAL:
        fn = (counters or {}).get(COUNTER_OF_GOAL[kind])
        if fn is None:
            note = f"no plugged-in capability counts {COUNTER_OF_GOAL[kind]}"
        elif sample:
            exposures = (
                await session.execute(
                    select(ABExposure.contact_id, ABExposure.variant, ABExposure.exposed_at).where(
                        ABExposure.test_key == test_key
                    )
                )
            ).all()
            window = parse_duration(str(goal.get("window") or "7d"))
            for variant in (await _counted(session, fn, exposures, window)).values():
                wins[variant] = wins.get(variant, 0) + 1
    else:  # the exposure's variant counts (a conversion row repeats it)
        won = await session.execute(
            select(ABExposure.variant, func.count())
            .join(
                ABConversion,
                (ABConversion.test_key == ABExposure.test_key) & (ABConversion.contact_id == ABExposure.contact_id),
            )
            .where(ABExposure.test_key == test_key)
            .group_by(ABExposure.variant)
        )
        wins = {str(v): int(n) for v, n in won}
    order = [str(k) for k in (test.variants or {}).get("keys", [])]
    order += sorted(v for v in sample if v not in order)
    counts = [(v, sample.get(v, 0), wins.get(v, 0)) for v in order]
    return TestResults(
        test.key, test.source, goal, test.status, test.kept, abtest.results(counts) if counts else [], note
    )


async def _counted(session: AsyncSession, fn: CounterFn, exposures: Sequence[Any], window: float) -> dict[int, str]:
    """Contacts with an item of the counter (an order) within `window` seconds after their exposure."""
    first = min(e.exposed_at for e in exposures)
    last = max(e.exposed_at for e in exposures) + timedelta(seconds=window)
    items = [(when, cid) for when, cid in await fn(session, first, last) if cid is not None]
    if not items:
        return {}
    conv_ids = sorted({int(cid) for _, cid in items})
    owners: dict[int, int] = {}
    for chunk in range(0, len(conv_ids), 500):
        part = conv_ids[chunk : chunk + 500]
        rows = await session.execute(select(Conversation.id, Conversation.contact_id).where(Conversation.id.in_(part)))
        owners.update({int(i): int(c) for i, c in rows})
    by_contact: dict[int, list[datetime]] = {}
    for when, cid in items:
        owner = owners.get(int(cid))
        if owner is not None:
            by_contact.setdefault(owner, []).append(when)
    out: dict[int, str] = {}
    span = timedelta(seconds=window)
    for contact_id, variant, exposed_at in exposures:
        times = by_contact.get(int(contact_id), [])
        if any(exposed_at <= t < exposed_at + span for t in times):
            out[int(contact_id)] = str(variant)
    return out


# --- ending a test keeping one variant -----------------------------------------------------------------


def keep_variant_source(source: str, node_id: str, test_key: str, variant: str) -> str:
    """The flow's YAML with node `node_id`'s A/B test replaced by `variant`'s text (and buttons): what
    "end the test keeping X" publishes. Comments and layout of the rest of the source are not kept: the
    flow is written again from its model, as validated."""
    from otklik.core.flows.validate import parse_flow_yaml
    from otklik.core.survey import flow_yaml

    flow = parse_flow_yaml(source, known_flows=_gotos(source))
    node = flow.nodes.get(node_id)
    if not isinstance(node, MessageNode) or node.ab is None or node.ab.id != test_key:
        raise InvalidInput(f"node {node_id!r} of flow {flow.id!r} has no A/B test {test_key!r} any more")
    chosen = next((v for v in node.ab.variants if v.key == variant), None)
    if chosen is None:
        keys = ", ".join(v.key for v in node.ab.variants)
        raise InvalidInput(f"the test has no variant {variant!r} (variants: {keys})")
    update_: dict[str, Any] = {"text": chosen.text, "ab": None}
    if chosen.buttons is not None:
        update_["buttons"] = chosen.buttons
    nodes = dict(flow.nodes)
    nodes[node_id] = node.model_copy(update=update_)
    return flow_yaml(flow.model_copy(update={"nodes": nodes}))


def _gotos(source: str) -> set[str]:
    """Flows a source names in `goto` nodes: known, as the source was valid when it was published."""
    from otklik.core import safe_yaml

    data = safe_yaml.load(source)
    nodes = data.get("nodes") if isinstance(data, dict) else None
    out: set[str] = set()
    for node in (nodes or {}).values():
        if isinstance(node, dict) and node.get("type") == "goto" and isinstance(node.get("flow"), str):
            out.add(node["flow"])
    return out


async def mark_ended(session: AsyncSession, test_key: str, variant: str, actor: str, now: datetime) -> None:
    """The test row: ended, keeping `variant` (in the caller's transaction; the caller audits)."""
    test = await session.get(ABTest, test_key)
    if test is None:
        raise NotFound(f"no A/B test {test_key[:80]!r}")
    test.status, test.kept, test.ended_at, test.ended_by = "ended", variant, now, actor[:120]


GOALS = AB_GOALS
