"""The flow editor's test console: chat with a saved (draft) version through the real engine, in memory.

Nothing is stored and nothing is sent: the engine is pure, so one console step is `Engine.handle` on a
state the page keeps and sends back (bounded in size), with the draft put in place of its live version.
Timers and actions are not run; the page offers to fire the timer or to return an action's result now.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from otklik.clock import utcnow
from otklik.conversations.flowstore import FlowVersionSource, parse_source
from otklik.core.conversation import (
    ContactView,
    ConversationState,
    Handoff,
    Record,
    RunAction,
    Send,
    SetSubscribed,
    StartTimer,
    StepResult,
)
from otklik.core.errors import InvalidInput, NotFound
from otklik.core.flows.engine import Engine
from otklik.core.flows.model import Flow
from otklik.core.messages import EventKind, InboundEvent
from otklik.platform.webkit.params import BodyVersion

MAX_STATE_BYTES = 64 * 1024
_CACHE_SIZE = 32
#: Parsed draft versions, (flow key, version, source digest, flow revision) -> Flow. One per web app
#: (`app.state.flow_drafts`, made by `otklik.web.app.create_app`), never a module global.
Drafts = OrderedDict[tuple[str, int, str, int], Flow]


class ConsoleIn(BaseModel):
    """One console step sent by the page."""

    model_config = ConfigDict(extra="forbid")
    version: BodyVersion
    action: Literal["start", "text", "button", "timer", "action_ok", "action_error"]
    text: str | None = Field(None, max_length=4096)
    payload: str | None = Field(None, max_length=256)
    language: Literal["ru", "en", "es"] | None = None
    state: dict[str, Any] | None = None
    step: int = Field(0, ge=0, le=1_000_000)


def draft_flow(drafts: Drafts, version: FlowVersionSource, known: set[str], revision: int) -> Flow:
    """The parsed version, cached in `drafts` (the app's `app.state.flow_drafts`): a stored version never
    changes, but the flows it may reach do, hence the revision in the key."""
    digest = hashlib.sha256(version.source.encode()).hexdigest()
    key = (version.info.flow_key, version.info.version, digest, revision)
    flow = drafts.get(key)
    if flow is None:
        flow = parse_source(version.source, known | {version.info.flow_key})
        drafts[key] = flow
        while len(drafts) > _CACHE_SIZE:
            drafts.popitem(last=False)
    drafts.move_to_end(key)
    return flow


def draft_engine(live: Engine, flow: Flow) -> Engine:
    """The pack's engine (config, classifier, live flows) with `flow` in place of its published version."""
    return Engine(live.pack, {**live.flows, flow.id: flow}, live.classifier)


async def step(engine: Engine, flow: Flow, body: ConsoleIn, t: Callable[..., str]) -> dict[str, Any]:
    """Run one console step; returns the replies to show, the new state and what the console waits for."""
    state = _state(body)
    event = _event(flow, body, state)
    contact = ContactView(first_name="Test", language=body.language or engine.pack.language)
    result = await asyncio.to_thread(engine.handle, state, event, contact, utcnow())
    new_state = result.state.to_dict()
    if len(json.dumps(new_state, default=str)) > MAX_STATE_BYTES:
        raise InvalidInput("the console state grew too large; restart the console")
    return {
        "replies": _replies(result, t),
        "state": new_state,
        "waiting": result.state.waiting,
        "status": result.state.status,
        "node": result.state.node,
        "flow": result.state.flow,
    }


def _state(body: ConsoleIn) -> ConversationState:
    if body.action == "start" or body.state is None:
        return ConversationState()
    if len(json.dumps(body.state, default=str)) > MAX_STATE_BYTES:
        raise InvalidInput("the console state is too large; restart the console")
    try:
        return ConversationState.from_dict(body.state)
    except (TypeError, ValueError):
        raise InvalidInput("the console state is damaged; restart the console") from None


def _event(flow: Flow, body: ConsoleIn, state: ConversationState) -> InboundEvent:
    def event(kind: EventKind, **fields: Any) -> InboundEvent:
        return InboundEvent(0, f"console-{body.step}", "console", kind, **fields)

    if body.action == "start":
        return event(EventKind.BUTTON, payload=f"flow:{flow.id}")
    if body.action == "text":
        if not (body.text or "").strip():
            raise InvalidInput("write a message first")
        return event(EventKind.TEXT, text=body.text)
    if body.action == "button":
        if not body.payload:
            raise InvalidInput("a button needs its payload")
        return event(EventKind.BUTTON, payload=body.payload, text=body.text)
    if body.action == "timer":
        return event(EventKind.TIMER, payload=state.token)
    ok = body.action == "action_ok"
    data = {"ok": True, "result": None} if ok else {"ok": False, "error": "failed in the test console"}
    return event(EventKind.ACTION_RESULT, payload=state.token, data=data)


def _replies(result: StepResult, t: Callable[..., str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for effect in result.effects:
        if isinstance(effect, Send):
            message = effect.message
            out.append(
                {
                    "kind": "bot",
                    "text": message.text,
                    "buttons": [{"title": b.title, "payload": b.payload} for b in message.buttons],
                    "attachments": len(message.attachments),
                }
            )
        elif isinstance(effect, Handoff):
            out.append({"kind": "note", "text": t("flows.note_handoff", reason=effect.reason)})
        elif isinstance(effect, StartTimer):
            out.append({"kind": "note", "text": t("flows.note_timer", duration=_duration(effect.seconds))})
        elif isinstance(effect, RunAction):
            args = json.dumps(effect.args, ensure_ascii=False, default=str)[:300]
            out.append({"kind": "note", "text": t("flows.note_action", name=effect.name, args=args)})
        elif isinstance(effect, SetSubscribed):
            out.append(
                {"kind": "note", "text": t("flows.note_subscribed", value=t("yes" if effect.subscribed else "no"))}
            )
        elif isinstance(effect, Record):
            note = _record_note(effect, t)
            if note:
                out.append({"kind": "note", "text": note})
    return out


_REPAIR = frozenset(
    {
        "interrupted",
        "not_interrupted",
        "resume_offered",
        "resumed",
        "resume_declined",
        "cancelled",
        "skipped",
        "frame_dropped",
        "frame_expired",
    }
)


def _record_note(record: Record, t: Callable[..., str]) -> str | None:
    data = record.data
    if record.kind == "understood":
        return t("flows.note_intent", intent=data.get("intent"), confidence=data.get("confidence"))
    if record.kind == "flow_end":
        return t("flows.note_flow_end", flow=data.get("flow"))
    if record.kind in _REPAIR:
        explain = data.get("explain") or " ".join(f"{k}={v}" for k, v in data.items() if v not in (None, ""))
        return t("flows.note_repair", kind=record.kind, explain=str(explain)[:200])
    if record.kind in ("flow_missing", "node_missing", "step_limit", "timer_stale", "action_result_stale"):
        return t("flows.note_problem", kind=record.kind, data=json.dumps(data, ensure_ascii=False, default=str)[:200])
    return None


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def live_engine(engines: dict[str, Engine], pack: str) -> Engine:
    engine = engines.get(pack)
    if engine is None:
        raise NotFound(f"the pack {pack!r} is not loaded (no channel account uses it), so it cannot be tried here")
    return engine
