"""Conversation state and the effects the engine asks the runtime to carry out."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from otklik.core.messages import OutboundMessage


class Status(StrEnum):
    BOT = "bot"
    WAITING_OPERATOR = "waiting_operator"
    OPERATOR = "operator"
    CLOSED = "closed"


@dataclass(slots=True)
class ConversationState:
    """Where a conversation stands in its flows. Serialised as JSON in the database."""

    status: str = Status.BOT
    flow: str | None = None
    node: str | None = None
    waiting: str | None = None  # "input" | "action" | "timer" | None
    token: str | None = None  # guards timers and action results against staleness
    retries: int = 0
    priority: bool = False
    vars: dict[str, Any] = field(default_factory=dict)
    # interrupted flows, oldest first: {flow, node, waiting, vars, at, reason} (conversation repair)
    stack: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "flow": self.flow,
            "node": self.node,
            "waiting": self.waiting,
            "token": self.token,
            "retries": self.retries,
            "priority": self.priority,
            "vars": self.vars,
            "stack": self.stack,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ConversationState:
        data = data or {}
        return cls(
            status=str(data.get("status") or Status.BOT),
            flow=data.get("flow"),
            node=data.get("node"),
            waiting=data.get("waiting"),
            token=data.get("token"),
            retries=int(data.get("retries") or 0),
            priority=bool(data.get("priority")),
            vars=dict(data.get("vars") or {}),
            stack=[dict(f) for f in data.get("stack") or [] if isinstance(f, dict)],
        )

    def copy(self) -> ConversationState:
        return ConversationState.from_dict(
            self.to_dict() | {"vars": dict(self.vars), "stack": copy.deepcopy(self.stack)}
        )


# --- commands: the named ways to change a state outside the engine (each returns a new state) ---

#: Set by the engine once it told a buyer waiting for an operator that one will answer; cleared when the
#: wait ends, so the next wait acknowledges again.
OPERATOR_ACKED = "_operator_acknowledged"


def is_idle(state: ConversationState) -> bool:
    """With the bot and in no flow: the buyer's next message starts a new request."""
    return state.status == Status.BOT and state.flow is None


def park(state: ConversationState, flow: str, node: str, **variables: Any) -> ConversationState:
    """An idle conversation put at the question `node` of `flow`: the buyer's next message is its answer.
    `variables` are set in the state's variables (what the flow expects to find there).

    Raises ValueError if the conversation is not idle (`is_idle`): a conversation in a flow or with an
    operator is never moved from outside."""
    if not is_idle(state):
        raise ValueError(f"only an idle conversation can be parked (status {state.status}, flow {state.flow})")
    parked = state.copy()
    parked.flow, parked.node, parked.waiting, parked.token, parked.retries = flow, node, "input", None, 0
    parked.vars.update(variables)
    return parked


def redact_var(state: ConversationState, name: str) -> ConversationState:
    """The state without the flow variable `name` (e.g. a buyer's answer that must not be kept)."""
    redacted = state.copy()
    redacted.vars.pop(name, None)
    return redacted


def close(state: ConversationState) -> ConversationState:
    """Closed by an operator: nothing pending; the buyer's next message starts afresh with the bot."""
    closed = state.copy()
    closed.status, closed.priority, closed.waiting, closed.token = Status.CLOSED, False, None, None
    closed.vars.pop(OPERATOR_ACKED, None)
    return closed


def hand_back(state: ConversationState) -> ConversationState:
    """Returned to the bot by an operator: idle (`is_idle`), no priority, the flow variables kept."""
    back = state.copy()
    back.status, back.priority, back.retries = Status.BOT, False, 0
    back.flow, back.node, back.waiting, back.token = None, None, None, None
    back.vars.pop(OPERATOR_ACKED, None)
    return back


@dataclass(frozen=True, slots=True)
class ContactView:
    """What flows may read about a contact (minimal personal data)."""

    first_name: str = ""
    language: str | None = None
    subscribed: bool = True
    tags: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
    # the buyer writes in a marketplace's chat (`ChannelKind.marketplace`): its rules apply, and flows
    # declared `marketplace: false` (rewards for reviews) are never entered nor offered
    marketplace: bool = False
    # the contact's id: the key of A/B-test assignment (never shown to flows); None in pure tests
    id: int | None = None

    def scope(self) -> dict[str, Any]:
        return {
            "first_name": self.first_name,
            "language": self.language,
            "tags": list(self.tags),
            **self.fields,
            "marketplace": self.marketplace,
        }


# --- effects: what the runtime must do after a step (all written in the same transaction) ---


@dataclass(frozen=True, slots=True)
class Send:
    message: OutboundMessage


@dataclass(frozen=True, slots=True)
class Handoff:
    priority: bool
    reason: str
    context: dict[str, Any] = field(default_factory=dict)  # where the buyer was: flow, node, stack, intent


@dataclass(frozen=True, slots=True)
class CloseDrafts:
    """The buyer cancelled a flow: whatever it left half-done (a claim or order draft, an open case) is
    closed with `reason`. The kernel records it; capabilities close their own drafts of the case."""

    flow: str
    reason: str
    case: str = ""


@dataclass(frozen=True, slots=True)
class StartTimer:
    token: str
    seconds: float
    purpose: str  # "wait" | "timeout"


@dataclass(frozen=True, slots=True)
class RunAction:
    token: str
    name: str
    args: dict[str, Any]
    timeout: float


@dataclass(frozen=True, slots=True)
class SetSubscribed:
    subscribed: bool


@dataclass(frozen=True, slots=True)
class Record:
    """An entry for the conversation's event log (intent recognised, flow ended, ...)."""

    kind: str
    data: dict[str, Any]


Effect = Send | Handoff | StartTimer | RunAction | SetSubscribed | Record | CloseDrafts


@dataclass(frozen=True, slots=True)
class StepResult:
    state: ConversationState
    effects: tuple[Effect, ...]

    def sent(self) -> list[OutboundMessage]:
        return [e.message for e in self.effects if isinstance(e, Send)]
