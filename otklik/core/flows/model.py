"""The flow language. A flow is a named graph of nodes; texts may have per-language variants.

See docs/flows.md for the language with examples.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Text = str | dict[str, str]
"""A template, or a mapping language -> template ({"ru": "...", "es": "..."})."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int | float) -> float:
    """'48h', '30m', '2d', '15s' or a number of seconds -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 15m, 48h, 2d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0 or seconds > 366 * 86400:
        raise ValueError(f"duration out of range: {value!r}")
    return seconds


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def targets(self) -> list[tuple[str, str]]:
        """(field, node id) pairs this node can move to; used by validation and diagrams."""
        out: list[tuple[str, str]] = []
        for name in (
            "next",
            "on_fail",
            "on_error",
            "on_timeout",
            "on_reply",
            "on_skip",
            "on_cancel",
            "fallback",
            "on_red_flag",
            "else_",
        ):
            value = getattr(self, name, None)
            if isinstance(value, str):
                out.append((name.rstrip("_"), value))
        return out


class ButtonSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    title: Text
    payload: str = Field(min_length=1, max_length=256)


class MediaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["photo", "file"] = "photo"
    url: str | None = None
    media_id: str | None = None
    caption: Text | None = None


class TemplateSpec(BaseModel):
    """An approved WhatsApp template: sent instead of the message once the 24-hour window is closed (or as
    the message, when the node has no text). `params` fill {{1}}, {{2}}, … and may use flow variables."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str | None = Field(None, min_length=2, max_length=15)  # None: the pack's language
    params: list[Text] = Field(default_factory=list, max_length=20)


AB_GOALS = ("replied", "clicked", "reached", "ordered", "booked")
_KEY = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"


class ABVariant(BaseModel):
    """One variant of an A/B-tested message: what replaces the node's text (and buttons, when given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_]{0,31}$")
    split: int = Field(ge=1, le=99)  # percent of the contacts who see this variant
    text: Text
    buttons: list[ButtonSpec] | None = Field(default=None, max_length=12)  # None: the node's own buttons


class ABGoal(BaseModel):
    """What counts as a conversion: the contact replied, clicked the button `button`, reached the node
    `node` of this flow, ordered or booked (the capabilities' `orders` / `bookings` counters) within `window`
    of seeing the variant."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["replied", "clicked", "reached", "ordered", "booked"]
    button: str | None = Field(default=None, min_length=1, max_length=256)
    node: str | None = None
    window: str = "7d"

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class ABTestSpec(BaseModel):
    """`ab:` of a message node: 2–4 variants with their split (percentages adding up to 100) and a goal.
    A contact always sees the same variant (`otklik.core.abtest.assign_variant`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=_KEY, max_length=80)
    variants: list[ABVariant] = Field(min_length=2, max_length=4)
    goal: ABGoal


class MessageNode(_Node):
    """Send a message (text, buttons, media) and continue to `next` (or stop when there is none)."""

    type: Literal["message"]
    text: Text = ""
    buttons: list[ButtonSpec] = Field(default_factory=list, max_length=12)
    media: list[MediaSpec] = Field(default_factory=list, max_length=10)
    template: TemplateSpec | None = None
    ab: ABTestSpec | None = None  # an A/B test of this message (docs/flows.md, "A/B tests")
    next: str | None = None


class Option(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    title: Text
    value: str = Field(min_length=1, max_length=256)
    next: str | None = None


QuestionKind = Literal["text", "choice", "photo", "file", "phone", "number", "date", "email"]
Interruptible = bool | list[str] | None
"""Which intents may interrupt a waiting node: true (any), false (none), a list, or None (the default for
the node's kind: a free-text question or a silent wait is not interrupted, everything else is)."""


class _Repair(_Node):
    """What a node that waits for the buyer declares about conversation repair (docs/flows.md)."""

    interruptible: Interruptible = None
    on_skip: str | None = None  # "у меня нет штрихкода": where to go instead of asking again
    on_cancel: str | None = None  # "отмена": where to go (default: the flow's `on_cancel`, else end)
    resume_text: Text | None = None  # "Вернёмся к штрихкоду?"; "" = do not offer to come back here


class QuestionNode(_Repair):
    """Ask, wait for the answer, validate it, save it into `save_as` and continue.

    An invalid answer gets `retry_text` up to `max_retries` times, then goes to `on_fail`
    (or to an operator when `on_fail` is not set).
    """

    type: Literal["question"]
    kind: QuestionKind = "text"
    text: Text
    options: list[Option] = Field(default_factory=list, max_length=12)
    save_as: str | None = None
    retry_text: Text | None = None
    hint_text: Text | None = None  # the second re-ask explains differently (default: pack text per kind)
    max_retries: int = Field(default=2, ge=0, le=10)
    on_fail: str | None = None
    min: float | None = None
    max: float | None = None
    max_length: int = Field(default=2000, ge=1, le=4096)
    timeout: str | None = None
    on_timeout: str | None = None
    request_contact: bool = False
    sensitive: bool = False  # payout details etc.: only a masked form of the answer is ever stored
    next: str | None = None

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class SetNode(_Node):
    """Set conversation variables from templates."""

    type: Literal["set"]
    vars: dict[str, str] = Field(min_length=1)
    next: str | None = None


class Condition(BaseModel):
    """A structured test on a variable (no code is evaluated): `{var, op, value}`, `all` or `any`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    var: str | None = None
    op: Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "missing", "contains"] = "eq"
    value: Any = None
    all: list[Condition] | None = None
    any: list[Condition] | None = None


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    when: Condition
    next: str


class ConditionNode(_Node):
    """Go to the first branch whose condition holds, else to `else`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    type: Literal["condition"]
    branches: list[Branch] = Field(min_length=1)
    else_: str | None = Field(default=None, alias="else")


class IntentRouterNode(_Node):
    """Classify the buyer's message and go to the node of its intent.

    If the message that reached this node has not been answered yet, it is classified at once;
    otherwise `text` is sent and the next message is classified. Low confidence goes to `fallback`.
    """

    type: Literal["intent_router"]
    text: Text | None = None
    buttons: list[ButtonSpec] = Field(default_factory=list, max_length=12)  # payload "intent:<name>"
    routes: dict[str, str] = Field(min_length=1)
    fallback: str
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    save_entities: bool = True


class ActionNode(_Node):
    """Run a named, pluggable action (e.g. `wb.check_barcode`); its result goes into `save_as`."""

    type: Literal["action"]
    action: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
    args: dict[str, Any] = Field(default_factory=dict)
    save_as: str | None = None
    next: str | None = None
    on_error: str | None = None
    timeout: str = "30s"


class HandoffNode(_Node):
    """Hand the conversation to an operator."""

    type: Literal["handoff"]
    text: Text | None = None
    priority: bool = False
    reason: str = "flow"


class GotoNode(_Node):
    """Continue in another flow (at its start or at `node`)."""

    type: Literal["goto"]
    flow: str
    node: str | None = None


class WaitNode(_Repair):
    """Pause for `duration` (a durable timer), then continue to `next`.

    If the buyer writes before, the conversation goes to `on_reply` (default: `next`).
    """

    type: Literal["wait"]
    duration: str
    text: Text | None = None
    next: str
    on_reply: str | None = None

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class EndNode(_Node):
    """Finish the flow; the next message starts the pack's entry flow again."""

    type: Literal["end"]
    text: Text | None = None


Node = Annotated[
    MessageNode
    | QuestionNode
    | SetNode
    | ConditionNode
    | IntentRouterNode
    | ActionNode
    | HandoffNode
    | GotoNode
    | WaitNode
    | EndNode,
    Field(discriminator="type"),
]


class Flow(BaseModel):
    """A scenario graph. `id` is stable across versions; `start` names the first node."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=80)
    name: str = ""
    description: str = ""
    start: str
    on_cancel: str | None = None  # the node a cancelled flow goes to (default: a short confirmation, end)
    # false: never entered nor offered in a marketplace's chat (its rules forbid it, e.g. rewards for reviews)
    marketplace: bool = True
    nodes: dict[str, Node] = Field(min_length=1)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]
