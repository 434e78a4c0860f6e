"""The flow interpreter: pure. `handle(state, event)` returns the new state and a list of effects.

Nothing here does I/O; the runtime stores the state and carries out the effects in one transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from otklik.core.abtest import AB_VAR, assign_variant
from otklik.core.conversation import (
    OPERATOR_ACKED,
    CloseDrafts,
    ContactView,
    ConversationState,
    Effect,
    Handoff,
    Record,
    RunAction,
    Send,
    SetSubscribed,
    StartTimer,
    Status,
    StepResult,
)
from otklik.core.flows.answers import option_buttons, parse_answer
from otklik.core.flows.conditions import holds
from otklik.core.flows.model import (
    ActionNode,
    ConditionNode,
    EndNode,
    Flow,
    GotoNode,
    HandoffNode,
    IntentRouterNode,
    MessageNode,
    Node,
    QuestionNode,
    SetNode,
    Text,
    WaitNode,
    parse_duration,
)
from otklik.core.flows.repair import (
    Digression,
    Phrases,
    correction,
    digressions,
    first_number,
    fold,
    interruptible,
    yes_no_option,
)
from otklik.core.messages import Attachment, Button, EventKind, InboundEvent, OutboundMessage, TemplateRef
from otklik.core.packs import PackConfig
from otklik.core.redact import mask_cards, mask_sensitive
from otklik.core.templates import pick_language, render
from otklik.core.understanding import IntentClassifier, Understanding

MAX_STEPS = 64
_ACKED = OPERATOR_ACKED
INTERRUPTED = "interrupted_flow"  # set while an interrupted flow waits on the stack (flows may test it)
RESUME, DROP, OPERATOR, SKIP = "repair:resume", "repair:drop", "repair:operator", "repair:skip"
_FREE_TEXT_OPERATOR = 0.9  # at a free-text question an operator request must be this sure
_LAST_ANSWER = "_last_answer"  # {flow, node} of the last question answered: what a correction changes
_OWN_VARS = ("last_text", INTERRUPTED, AB_VAR)  # conversation-level: never restored from an interrupted frame
_ENGINE_VARS = frozenset({"last_text", INTERRUPTED, _LAST_ANSWER, "start_payload", "intent", OPERATOR_ACKED, AB_VAR})
_BUYER_INPUT = (EventKind.TEXT, EventKind.BUTTON, EventKind.PHOTO, EventKind.FILE, EventKind.CONTACT)


@dataclass(slots=True)
class _Run:
    """Working memory of one step."""

    state: ConversationState
    event: InboundEvent
    contact: ContactView
    now: datetime
    understanding: Understanding | None = None
    input_pending: bool = False  # the buyer's message has not been answered by a node yet
    effects: list[Effect] = field(default_factory=list)
    counter: int = 0

    def token(self) -> str:
        self.counter += 1
        return f"{self.event.external_id}#{self.counter}"


class Engine:
    """Runs flows of one pack. Flows are looked up by id in `flows` (the published versions)."""

    def __init__(self, pack: PackConfig, flows: Mapping[str, Flow], classifier: IntentClassifier) -> None:
        self.pack = pack
        self.flows = flows
        self.classifier = classifier
        self.cancel_words = Phrases(pack.cancel_words)
        self.skip_phrases = Phrases(pack.skip_phrases)
        self.yes_words = Phrases(pack.yes_words)
        self.no_words = Phrases(pack.no_words)
        self.digressions: dict[str, Digression] = digressions(flows, pack.default_flow, pack.operator_intent)

    def handle(
        self,
        state: ConversationState,
        event: InboundEvent,
        contact: ContactView,
        now: datetime,
        understanding: Understanding | None = None,
    ) -> StepResult:
        """One step. `understanding` may be computed beforehand (e.g. with an LLM, outside the
        transaction); otherwise the classifier reads the text when the step needs it."""
        run = _Run(state=state.copy(), event=event, contact=contact, now=now, understanding=understanding)
        context = event.data.get("context")
        if isinstance(context, Mapping) and event.kind in _BUYER_INPUT:
            # facts the channel knows about the conversation (the WB chat's product / order card): variables
            for name, value in context.items():
                if isinstance(name, str) and name.isidentifier() and name not in _ENGINE_VARS:
                    run.state.vars[name] = value
        if event.kind == EventKind.TIMER:
            self._on_timer(run)
        elif event.kind == EventKind.ACTION_RESULT:
            self._on_action_result(run)
        elif event.kind in _BUYER_INPUT:
            self._on_input(run)
        else:
            run.effects.append(Record(str(event.kind), {"external_id": event.external_id}))
        return StepResult(run.state, tuple(run.effects))

    def sensitive_input(self, state: ConversationState) -> bool:
        """The conversation waits for the answer to a `sensitive: true` question: the buyer's next text may
        be stored only masked (the runtime hands the raw text, encrypted, to the action that needs it)."""
        if state.status != Status.BOT or state.waiting != "input":
            return False
        flow = self.flows.get(state.flow or "")
        node = flow.nodes.get(state.node) if flow is not None and state.node is not None else None
        return isinstance(node, QuestionNode) and node.sensitive

    # --- buyer input -------------------------------------------------------------------------

    def _on_input(self, run: _Run) -> None:
        text = (run.event.text or "").strip()
        sensitive = self.sensitive_input(run.state)
        command = text.lower()
        if command in self.pack.stop_words:
            run.effects += [SetSubscribed(False), Send(self._msg(run, self.pack.text("unsubscribed")))]
            return
        if command in self.pack.resubscribe_words and not run.contact.subscribed:
            run.effects.append(SetSubscribed(True))
        if AB_VAR in run.state.vars:
            self._ab_converts(run, reply=True)
        state = run.state
        if state.status in (Status.WAITING_OPERATOR, Status.OPERATOR):
            run.effects.append(Record("message_for_operator", {}))
            if state.status == Status.WAITING_OPERATOR and not state.vars.get(OPERATOR_ACKED):
                state.vars[OPERATOR_ACKED] = True  # acknowledge once per wait, not every message
                run.effects.append(Send(self._msg(run, self.pack.text("with_operator"))))
            return
        if state.status == Status.CLOSED:
            kept = {k: v for k, v in state.vars.items() if k != INTERRUPTED}
            run.state = ConversationState(vars=kept)
        if command.startswith("/start"):
            self._on_start(run, run.event.payload or command[6:].strip())
            return
        if command in self.pack.operator_words or self._payload(run) == OPERATOR:
            self._handoff(run, priority=False, reason="buyer_request", text=None)
            return
        if text:  # what the buyer last wrote (a knowledge answer reads it); a button press clears it
            run.state.vars["last_text"] = (mask_sensitive(text) if sensitive else mask_cards(text))[:1000]
        else:
            run.state.vars.pop("last_text", None)
        if self._payload(run).startswith("flow:"):
            self._clear_stack(run, "flow_button")
            self._enter(run, self._payload(run)[5:], None)
            return
        if text and self._escalates(run, text):
            return
        self._expire_frames(run)
        run.input_pending = True
        if run.state.waiting == "resume":
            self._on_resume_answer(run, text)
            return
        self._dispatch_input(run)

    def _payload(self, run: _Run) -> str:
        return (run.event.payload or "") if run.event.kind == EventKind.BUTTON else ""

    def _escalates(self, run: _Run, text: str) -> bool:
        """Red flags and an explicit wish for a human hand the conversation over at once, at any node of
        any flow, before the node reads the message."""
        language = self._language(run)
        understanding = run.understanding or self.classifier.understand(text, language)
        run.understanding = understanding
        run.effects.append(
            Record("understood", {"intent": understanding.intent, "confidence": round(understanding.confidence, 3)})
        )
        if understanding.red_flag:
            self._handoff(run, priority=True, reason=f"red_flag:{understanding.red_flag}", text=None)
            return True
        question = self._current(run)
        free_text = isinstance(question, QuestionNode) and question.kind == "text" and run.state.waiting == "input"
        needed = max(self.pack.operator_confidence, _FREE_TEXT_OPERATOR) if free_text else self.pack.operator_confidence
        if understanding.intent == self.pack.operator_intent and understanding.confidence >= needed:
            self._handoff(run, priority=False, reason="buyer_request", text=None)
            return True
        return False

    def _dispatch_input(self, run: _Run) -> None:
        state = run.state
        node = self._current(run)
        if node is None:
            self._enter(run, self.pack.default_flow, None)
        elif state.waiting == "input" and isinstance(node, QuestionNode):
            self._answer(run, node)
        elif state.waiting == "input" and isinstance(node, IntentRouterNode):
            if self._is_cancel(run):
                self._cancel(run, None)
            else:
                self._route(run, node)
        elif state.waiting == "timer" and isinstance(node, WaitNode):
            self._on_wait_reply(run, node)
        elif state.waiting == "action":
            if self._is_cancel(run):
                self._cancel(run, None)
            else:
                run.effects.append(Record("message_during_action", {}))
        else:
            self._enter(run, self.pack.default_flow, None)

    # --- conversation repair ---------------------------------------------------------------------

    def _is_cancel(self, run: _Run) -> bool:
        text = (run.event.text or "").strip()
        return bool(text) and run.state.flow is not None and self.cancel_words.says(text, max_words=4)

    def _is_skip(self, run: _Run, node: QuestionNode | WaitNode) -> bool:
        if self._payload(run) == SKIP:
            return True
        text = (run.event.text or "").strip()
        if not text or (isinstance(node, QuestionNode) and node.kind == "text" and not node.on_skip):
            return False
        return self.skip_phrases.found(text) is not None and len(fold(text).split()) <= 20

    def _on_wait_reply(self, run: _Run, node: WaitNode) -> None:
        """A message while a `wait` node waits: cancel, skip, another intent, else `on_reply` (the answer)."""
        if self._is_cancel(run):
            self._cancel(run, node)
            return
        if not self._answer_like(run):
            if self._corrects(run):
                return
            if self._is_skip(run, node):
                self._skip(run, node)
                return
            if self._interrupts(run, node):
                return
        self._goto(run, node.on_reply or node.next)

    def _answer_like(self, run: _Run) -> bool:
        """An attachment or a long run of digits (a barcode, an order number) answers whatever was asked."""
        if run.event.attachments or run.event.kind in (EventKind.PHOTO, EventKind.FILE, EventKind.CONTACT):
            return True
        digits = sum(ch.isdigit() for ch in run.event.text or "")
        return digits >= 6

    def _interrupts(self, run: _Run, node: QuestionNode | WaitNode) -> bool:
        """A confident reading of another intent interrupts the node: its flow runs (or the article answers),
        then the buyer is offered to come back here. The decision is recorded with its reasons."""
        text = (run.event.text or "").strip()
        payload = self._payload(run)
        if payload.startswith("intent:"):
            understanding = Understanding(intent=payload[7:], confidence=1.0)
        elif text and run.understanding is not None:
            understanding = run.understanding
        else:
            return False
        digression = self.digressions.get(understanding.intent)
        if digression is None:
            return False
        if digression.leads_to == run.state.flow and digression.leads_to != digression.flow:
            return False  # the same topic: the node reads it as its answer (e.g. "не тот товар" again)
        runner_up = max((p for _, p in understanding.alternatives), default=0.0)
        margin = understanding.confidence - runner_up
        where = f"{run.state.flow}/{run.state.node}"
        reading = f"{understanding.intent} {understanding.confidence:.2f}"
        if not interruptible(node, understanding.intent):
            run.effects.append(Record("not_interrupted", {"explain": f"{where} is not interruptible by {reading}"}))
            return False
        if understanding.confidence < self.pack.interrupt_confidence or margin < self.pack.interrupt_margin:
            run.effects.append(
                Record("not_interrupted", {"explain": f"{where}: {reading} margin {margin:.2f} is not sure enough"})
            )
            return False
        resumable = node.resume_text != "" and run.state.flow != self.pack.default_flow
        if resumable:
            self._push(run, understanding.intent)
        verb = "interrupted" if resumable else "left"
        run.effects.append(
            Record(
                "interrupted",
                {
                    "flow": run.state.flow,
                    "node": run.state.node,
                    "intent": understanding.intent,
                    "confidence": round(understanding.confidence, 3),
                    "margin": round(margin, 3),
                    "resumable": resumable,
                    "explain": f"{verb} {where} by {reading}",
                },
            )
        )
        run.state.vars["intent"] = understanding.intent
        run.state.vars["intent_confidence"] = round(understanding.confidence, 3)
        for entity in understanding.entities:
            run.state.vars.setdefault(f"entity_{entity.kind}", entity.value)
        run.input_pending = False
        run.state.retries = 0
        run.state.flow = digression.flow
        self._goto(run, digression.node)
        return True

    def _push(self, run: _Run, reason: str) -> None:
        state = run.state
        vars_ = {k: copy.deepcopy(v) for k, v in state.vars.items() if k not in _OWN_VARS}
        frame = {
            "flow": state.flow,
            "node": state.node,
            "vars": vars_,
            "at": run.now.isoformat(),
            "reason": reason,
        }
        state.stack.append(frame)
        while len(state.stack) > max(1, self.pack.stack_depth):
            dropped = state.stack.pop(0)
            run.effects.append(Record("frame_dropped", {"flow": dropped.get("flow"), "node": dropped.get("node")}))
        self._sync_stack_var(run)

    def _sync_stack_var(self, run: _Run) -> None:
        if run.state.stack:
            run.state.vars[INTERRUPTED] = run.state.stack[-1].get("flow")
        else:
            run.state.vars.pop(INTERRUPTED, None)

    def _clear_stack(self, run: _Run, why: str) -> None:
        for frame in run.state.stack:
            run.effects.append(
                Record("frame_dropped", {"flow": frame.get("flow"), "node": frame.get("node"), "why": why})
            )
        run.state.stack = []
        self._sync_stack_var(run)

    def _expire_frames(self, run: _Run) -> None:
        """Interrupted flows older than the pack's `stack_timeout` are dropped quietly."""
        limit = run.now - timedelta(seconds=self.pack.stack_timeout)
        kept = []
        for frame in run.state.stack:
            try:
                fresh = datetime.fromisoformat(str(frame.get("at"))) >= limit
            except ValueError:
                fresh = False
            if fresh:
                kept.append(frame)
            else:
                run.effects.append(Record("frame_expired", {"flow": frame.get("flow"), "node": frame.get("node")}))
        if len(kept) != len(run.state.stack):
            run.state.stack = kept
            self._sync_stack_var(run)
            if run.state.waiting == "resume":  # the offer was about a flow that is gone now
                run.state.flow, run.state.node, run.state.waiting, run.state.token = None, None, None, None
                if kept:
                    self._offer_resume(run)
                    run.input_pending = True

    def _frame_node(self, frame: dict[str, Any]) -> QuestionNode | WaitNode | None:
        flow = self.flows.get(str(frame.get("flow") or ""))
        node = flow.nodes.get(str(frame.get("node") or "")) if flow is not None else None
        return node if isinstance(node, QuestionNode | WaitNode) else None

    def _offer_resume(self, run: _Run) -> bool:
        """After an interrupting flow ended: "Вернёмся к штрихкоду?" with yes/no, for the latest frame."""
        state = run.state
        while state.stack:
            frame = state.stack[-1]
            node = self._frame_node(frame)
            if node is None:  # the flow changed meanwhile: nothing to come back to
                state.stack.pop()
                run.effects.append(Record("frame_dropped", {"flow": frame.get("flow"), "node": frame.get("node")}))
                continue
            text = node.resume_text or self.pack.text("resume")
            buttons = (
                Button(self._render(run, self.pack.text("resume_yes")), RESUME),
                Button(self._render(run, self.pack.text("resume_no")), DROP),
            )
            run.effects.append(Send(OutboundMessage(text=self._render(run, text), buttons=buttons)))
            state.flow, state.node, state.waiting, state.token = frame.get("flow"), frame.get("node"), "resume", None
            run.effects.append(Record("resume_offered", {"flow": state.flow, "node": state.node}))
            self._sync_stack_var(run)
            return True
        self._sync_stack_var(run)
        return False

    def _restore(self, run: _Run) -> dict[str, Any]:
        frame = run.state.stack.pop()
        saved = frame.get("vars") or {}
        run.state.vars.update({k: v for k, v in saved.items() if k not in _OWN_VARS})
        run.state.flow, run.state.node = frame.get("flow"), frame.get("node")
        run.state.retries = 0
        self._sync_stack_var(run)
        return frame

    def _on_resume_answer(self, run: _Run, text: str) -> None:
        """The buyer answers "shall we go back?": yes re-asks the interrupted node with the variables it had;
        no (or cancel) drops it; anything else is taken as input to the interrupted node itself."""
        payload = self._payload(run)
        run.input_pending = False
        if payload == RESUME or (text and self.yes_words.is_whole(text)):
            frame = self._restore(run)
            run.effects.append(Record("resumed", {"flow": frame.get("flow"), "node": frame.get("node")}))
            self._goto(run, str(frame.get("node")))
            return
        if payload == DROP or (text and (self.no_words.is_whole(text) or self.cancel_words.says(text, 4))):
            frame = run.state.stack.pop()
            self._sync_stack_var(run)
            run.effects.append(Record("resume_declined", {"flow": frame.get("flow"), "node": frame.get("node")}))
            run.effects.append(Send(self._msg(run, self.pack.text("resume_dropped"))))
            run.state.flow, run.state.node, run.state.waiting = None, None, None
            self._offer_resume(run)
            return
        frame = self._restore(run)
        node = self._frame_node(frame)
        run.effects.append(Record("resumed", {"flow": frame.get("flow"), "node": frame.get("node"), "by": "input"}))
        run.state.waiting = "timer" if isinstance(node, WaitNode) else "input"
        run.input_pending = True
        self._dispatch_input(run)

    def _cancel(self, run: _Run, node: QuestionNode | WaitNode | None) -> None:
        """ "Отмена", "передумал", "cancelar": the current flow ends with a short confirmation (or goes to the
        node's / flow's `on_cancel`); what it left half-done is closed with a reason."""
        state = run.state
        flow = self.flows.get(state.flow or "")
        target = (node.on_cancel if node is not None else None) or (flow.on_cancel if flow is not None else None)
        run.input_pending = False
        run.effects.append(Record("cancelled", {"flow": state.flow, "node": state.node, "to": target}))
        run.effects.append(
            CloseDrafts(flow=state.flow or "", reason="cancelled_by_buyer", case=str(state.vars.get("case_id") or ""))
        )
        state.retries = 0
        if target:
            self._goto(run, target)
            return
        run.effects.append(Send(self._msg(run, self.pack.text("cancelled"))))
        self._finish(run)

    def _skip(self, run: _Run, node: QuestionNode | WaitNode) -> None:
        """ "У меня нет штрихкода": the node's declared alternative instead of the same question again
        (default: `on_fail` of a question, else a person)."""
        target = node.on_skip or (node.on_fail if isinstance(node, QuestionNode) else None)
        run.input_pending = False
        run.state.retries = 0
        run.effects.append(Record("skipped", {"flow": run.state.flow, "node": run.state.node, "to": target}))
        if target:
            if not node.on_skip:
                run.effects.append(Send(self._msg(run, self.pack.text("skipped"))))
            self._goto(run, target)
        else:
            self._handoff(run, priority=False, reason="cannot_answer", text=None)

    def _on_start(self, run: _Run, payload: str) -> None:
        flow_id = self.pack.flow_for_payload(payload) if payload else None
        if payload:
            run.state.vars["start_payload"] = payload
        self._clear_stack(run, "restart")
        run.effects.append(Record("start", {"payload": payload, "flow": flow_id}))
        self._enter(run, flow_id or self.pack.default_flow, None)

    def _answer(self, run: _Run, node: QuestionNode) -> None:
        node = self._for_channel(run, node)
        if node.kind == "text":  # any text is a valid free-text answer: cancel and correction come first
            if self._is_cancel(run):
                self._cancel(run, node)
                return
            if self._corrects(run):
                return
        language = self._language(run)
        parsed = parse_answer(
            node,
            run.event,
            language=language,
            fallback=self.pack.language,
            region=self.pack.region,
            today=run.now.date(),
        )
        if parsed is None:
            parsed = self._yes_no(run, node) or self._option_of_intent(run, node)
        if parsed is None:
            if self._is_cancel(run):
                self._cancel(run, node)
            elif self._corrects(run):
                pass
            elif self._is_skip(run, node):
                self._skip(run, node)
            elif not self._interrupts(run, node):
                self._retry(run, node)
            return
        value, override = parsed
        run.input_pending = False
        if node.save_as:
            run.state.vars[node.save_as] = _storable(value, sensitive=node.sensitive)
            if not node.sensitive:
                run.state.vars[_LAST_ANSWER] = {"flow": run.state.flow, "node": run.state.node}
        run.state.retries = 0
        self._goto(run, override or node.next)

    def _corrects(self, run: _Run) -> bool:
        """ "Нет, не крем, а гель", "mejor 3 unidades": the last answered question of this flow gets the new
        value and the flow goes on from there again (what depends on the value is re-run)."""
        text = (run.event.text or "").strip()
        last = run.state.vars.get(_LAST_ANSWER)
        found = correction(text) if text else None
        if found is None or not isinstance(last, dict) or last.get("flow") != run.state.flow:
            return False
        flow = self.flows.get(run.state.flow or "")
        node_id = str(last.get("node") or "")
        target = flow.nodes.get(node_id) if flow is not None else None
        if not isinstance(target, QuestionNode) or not target.save_as or target.sensitive:
            return False
        old, new = found
        before = run.state.vars.get(target.save_as)
        if old and fold(old) not in fold(str(before or "")):
            return False  # it corrects something else
        parsed = self._parse_as(run, target, new)
        if parsed is None:
            return False
        value, override = parsed
        run.effects.append(
            Record(
                "corrected",
                {
                    "flow": run.state.flow,
                    "node": node_id,
                    "var": target.save_as,
                    "explain": f"{target.save_as}: {before!s:.60} -> {value!s:.60} at {run.state.flow}/{node_id}",
                },
            )
        )
        run.state.vars[target.save_as] = _storable(value, sensitive=False)
        run.input_pending = False
        run.state.retries = 0
        run.state.node = node_id
        self._goto(run, override or target.next)
        return True

    def _parse_as(self, run: _Run, node: QuestionNode, text: str) -> tuple[object, str | None] | None:
        candidates = [text]
        number = first_number(text) if node.kind == "number" else None
        if number is not None:
            candidates.append(number)
        for candidate in candidates:
            event = replace(run.event, kind=EventKind.TEXT, text=candidate, payload=None)
            parsed = parse_answer(
                node,
                event,
                language=self._language(run),
                fallback=self.pack.language,
                region=self.pack.region,
                today=run.now.date(),
            )
            if parsed is not None:
                return parsed
        return None

    def _option_of_intent(self, run: _Run, node: QuestionNode) -> tuple[object, str | None] | None:
        """At a choice question whose option values are intents ("Что случилось?" → wrong_item, …), a
        confident reading of one of them is that option: the buyer described it instead of pressing it."""
        reading = run.understanding
        if node.kind != "choice" or reading is None or reading.confidence < self.pack.interrupt_confidence:
            return None
        option = next((o for o in node.options if o.value == reading.intent), None)
        return (option.value, option.next) if option is not None else None

    def _yes_no(self, run: _Run, node: QuestionNode) -> tuple[object, str | None] | None:
        """ "да" / "не надо" at a choice question whose options are `yes` and `no`."""
        text = (run.event.text or "").strip()
        if not text:
            return None
        for words, answer in ((self.yes_words, True), (self.no_words, False)):
            value = yes_no_option(node, answer) if words.is_whole(text) else None
            if value is not None:
                option = next(o for o in node.options if o.value == value)
                return option.value, option.next
        return None

    def _retry(self, run: _Run, node: QuestionNode) -> None:
        """Re-asks are bounded and vary: the first repeats the question after `retry_text`, the second
        explains differently (`hint_text`), the last one offers a person (and the alternative, if any)."""
        run.state.retries += 1
        run.input_pending = False
        attempt = run.state.retries
        if attempt > node.max_retries:
            run.state.retries = 0
            if node.on_fail:
                self._goto(run, node.on_fail)
            else:
                self._handoff(run, priority=False, reason="retries_exhausted", text=None)
            return
        question = self._question_message(run, node)
        buttons = question.buttons
        if attempt == 1:
            prefix = self._render(run, node.retry_text or self.pack.text("not_understood"))
            text = f"{prefix}\n{question.text}".strip()
        else:
            hint = node.hint_text or self.pack.text(f"reask_hint_{node.kind}") or self.pack.text("reask_hint")
            text = self._render(run, hint)
            if attempt >= 3 or attempt == node.max_retries:
                if attempt >= 3:
                    text = self._render(run, self.pack.text("reask_last"))
                if node.kind != "choice":
                    extra = [Button(self._render(run, self.pack.text("button_operator")), OPERATOR)]
                    if node.on_skip or node.on_fail:
                        extra.insert(0, Button(self._render(run, self.pack.text("button_skip")), SKIP))
                    buttons = (*buttons, *extra)
        run.effects.append(Send(OutboundMessage(text=text, buttons=buttons, request_contact=question.request_contact)))

    def _route(self, run: _Run, node: IntentRouterNode) -> None:
        text = (run.event.text or "").strip()
        understanding = run.understanding
        button = run.event.payload or "" if run.event.kind == EventKind.BUTTON else ""
        if button.startswith("intent:"):
            understanding = Understanding(intent=button[7:], confidence=1.0)
        elif understanding is None and text:
            understanding = self.classifier.understand(text, self._language(run))
        threshold = node.threshold if node.threshold is not None else self.pack.threshold
        target = node.fallback
        if understanding is not None:
            if node.save_entities:
                for entity in understanding.entities:
                    run.state.vars.setdefault(f"entity_{entity.kind}", entity.value)
            run.state.vars["intent"] = understanding.intent
            run.state.vars["intent_confidence"] = round(understanding.confidence, 3)
            if understanding.intent in node.routes and understanding.confidence >= threshold:
                target = node.routes[understanding.intent]
        run.input_pending = False
        self._goto(run, target)

    # --- internal events ---------------------------------------------------------------------

    def _on_timer(self, run: _Run) -> None:
        state = run.state
        if state.token != run.event.payload or state.status != Status.BOT:
            run.effects.append(Record("timer_stale", {"token": run.event.payload}))
            return
        node = self._current(run)
        if isinstance(node, WaitNode):
            self._goto(run, node.next)
        elif isinstance(node, QuestionNode) and node.on_timeout:
            self._goto(run, node.on_timeout)

    def _on_action_result(self, run: _Run) -> None:
        state = run.state
        node = self._current(run)
        if state.token != run.event.payload or state.waiting != "action" or not isinstance(node, ActionNode):
            run.effects.append(Record("action_result_stale", {"token": run.event.payload}))
            return
        data = run.event.data
        if data.get("ok"):
            if node.save_as:
                state.vars[node.save_as] = data.get("result")
            self._goto(run, node.next)
            return
        state.vars["action_error"] = str(data.get("error") or "failed")
        if node.on_error:
            self._goto(run, node.on_error)
        else:
            run.effects.append(Send(self._msg(run, self.pack.text("action_failed"))))
            self._handoff(run, priority=False, reason=f"action_failed:{node.action}", text=None)

    # --- moving through nodes ----------------------------------------------------------------

    def _enter(self, run: _Run, flow_id: str, node_id: str | None) -> None:
        flow = self.flows.get(flow_id)
        if flow is None:
            run.effects.append(Record("flow_missing", {"flow": flow_id}))
            self._handoff(run, priority=False, reason=f"flow_missing:{flow_id}", text=None)
            return
        if self._refused(run, flow.id):
            self._refuse(run, flow.id)
            return
        run.state.flow = flow.id
        self._goto(run, node_id or flow.start)

    def _goto(self, run: _Run, node_id: str | None) -> None:
        steps = 0
        while node_id is not None:
            steps += 1
            if steps > MAX_STEPS:
                run.effects.append(Record("step_limit", {"node": node_id}))
                self._handoff(run, priority=False, reason="step_limit", text=None)
                return
            run.state.node, run.state.waiting, run.state.token = node_id, None, None
            if AB_VAR in run.state.vars:
                self._ab_converts(run, reply=False)
            node = self._current(run)
            if node is None:
                run.effects.append(Record("node_missing", {"node": node_id}))
                self._finish(run)
                return
            node_id = self._execute(run, node)
        if run.state.waiting is None and run.state.status == Status.BOT:
            self._finish(run)

    def _execute(self, run: _Run, node: Node) -> str | None:
        """Carry out one node; return the next node id, or None to stop here."""
        if isinstance(node, MessageNode):
            run.effects.append(Send(self._message_node(run, self._ab_variant(run, node))))
            return node.next
        if isinstance(node, QuestionNode):
            self._ask(run, node)
            return None
        if isinstance(node, SetNode):
            for name, template in node.vars.items():
                run.state.vars[name] = render(template, self._scope(run))
            return node.next
        if isinstance(node, ConditionNode):
            scope = self._scope(run)
            return next((b.next for b in node.branches if holds(b.when, scope)), node.else_)
        if isinstance(node, IntentRouterNode):
            self._router(run, node)
            return None
        if isinstance(node, ActionNode):
            token = run.token()
            args = {k: render(v, self._scope(run)) if isinstance(v, str) else v for k, v in node.args.items()}
            run.effects.append(RunAction(token, node.action, args, parse_duration(node.timeout)))
            run.state.waiting, run.state.token = "action", token
            return None
        if isinstance(node, GotoNode):
            flow = self.flows.get(node.flow)
            if flow is None:
                self._handoff(run, priority=False, reason=f"flow_missing:{node.flow}", text=None)
                return None
            if self._refused(run, flow.id):
                self._refuse(run, flow.id)
                return None
            run.state.flow = flow.id
            return node.node or flow.start
        if isinstance(node, WaitNode):
            self._wait(run, node)
            return None
        if isinstance(node, HandoffNode):
            self._handoff(run, priority=node.priority, reason=node.reason, text=node.text)
            return None
        if isinstance(node, EndNode):
            if node.text:
                run.effects.append(Send(self._msg(run, node.text)))
            self._finish(run)
            return None
        raise AssertionError(f"unhandled node {node!r}")  # pragma: no cover - the union is closed

    # --- A/B tests (docs/flows.md, "A/B tests") ----------------------------------------------------

    def _ab_variant(self, run: _Run, node: MessageNode) -> MessageNode:
        """The node as this contact sees it: the variant of its A/B test the contact is assigned to (the
        first one when the contact is unknown, as in a preview). The first exposure is recorded, and a goal
        the engine can see (replied, clicked, reached) is remembered in the conversation until it converts or
        its window ends."""
        spec = node.ab
        if spec is None:
            return node
        if run.contact.id is None:
            chosen = spec.variants[0]
        else:
            chosen = spec.variants[assign_variant(spec.id, run.contact.id, [v.split for v in spec.variants])]
            open_tests = run.state.vars.get(AB_VAR)
            open_tests = dict(open_tests) if isinstance(open_tests, dict) else {}
            goal = spec.goal
            data: dict[str, Any] = {"test": spec.id, "variant": chosen.key, "flow": run.state.flow}
            data["node"] = run.state.node
            data["variants"] = [[v.key, v.split] for v in spec.variants]
            run.effects.append(Record("ab_exposure", {**data, "goal": goal.model_dump(exclude_none=True)}))
            if goal.kind in ("replied", "clicked", "reached") and spec.id not in open_tests:
                until = run.now + timedelta(seconds=parse_duration(goal.window))
                open_tests[spec.id] = {
                    "variant": chosen.key,
                    "goal": goal.kind,
                    "button": goal.button,
                    "node": [run.state.flow, goal.node] if goal.node else None,
                    "until": until.isoformat(),
                }
                run.state.vars[AB_VAR] = open_tests
        update: dict[str, Any] = {"text": chosen.text}
        if chosen.buttons is not None:
            update["buttons"] = chosen.buttons
        return node.model_copy(update=update)

    def _ab_converts(self, run: _Run, *, reply: bool) -> None:
        """Conversions of the open A/B tests of this conversation: the buyer's message (`reply`) or the node
        just reached. Each converts once; expired ones are dropped."""
        open_tests = run.state.vars.get(AB_VAR)
        if not isinstance(open_tests, dict):
            run.state.vars.pop(AB_VAR, None)
            return
        kept: dict[str, Any] = {}
        payload = run.event.payload if run.event.kind == EventKind.BUTTON else None
        for test, data in open_tests.items():
            if not isinstance(data, dict):
                continue
            until = _when(data.get("until"))
            if until is None or until <= run.now:
                continue
            goal = data.get("goal")
            hit = (
                (reply and goal == "replied")
                or (reply and goal == "clicked" and payload is not None and payload == data.get("button"))
                or (not reply and goal == "reached" and data.get("node") == [run.state.flow, run.state.node])
            )
            if hit:
                run.effects.append(
                    Record("ab_conversion", {"test": test, "variant": data.get("variant"), "goal": goal})
                )
            else:
                kept[test] = data
        if kept:
            run.state.vars[AB_VAR] = kept
        else:
            run.state.vars.pop(AB_VAR, None)

    def _router(self, run: _Run, node: IntentRouterNode) -> None:
        intent_button = run.event.kind == EventKind.BUTTON and (run.event.payload or "").startswith("intent:")
        if run.input_pending and ((run.event.text or "").strip() or intent_button):
            self._route(run, node)
            return
        if node.text or node.buttons:
            shown = [b for b in node.buttons if self._offered(run, b.payload)]
            buttons = tuple(Button(self._render(run, b.title), b.payload) for b in shown)
            run.effects.append(Send(OutboundMessage(text=self._render(run, node.text or ""), buttons=buttons)))
        run.state.waiting = "input"
        return None

    def _ask(self, run: _Run, node: QuestionNode) -> None:
        question = self._question_message(run, node)
        if question.text or question.buttons:  # an empty text makes a silent question (just listen)
            run.effects.append(Send(question))
        run.state.waiting, run.state.retries = "input", 0
        run.input_pending = False
        if node.timeout:
            token = run.token()
            run.state.token = token
            run.effects.append(StartTimer(token, parse_duration(node.timeout), "timeout"))

    def _wait(self, run: _Run, node: WaitNode) -> None:
        if node.text:
            run.effects.append(Send(self._msg(run, node.text)))
        token = run.token()
        run.state.waiting, run.state.token = "timer", token
        run.effects.append(StartTimer(token, parse_duration(node.duration), "wait"))

    def _handoff(self, run: _Run, *, priority: bool, reason: str, text: Text | None) -> None:
        key = "handoff_priority" if priority else "handoff"
        run.effects.append(Send(self._msg(run, text or self.pack.text(key))))
        context: dict[str, Any] = {"flow": run.state.flow, "node": run.state.node}
        if run.state.stack:
            context["interrupted"] = [f"{f.get('flow')}/{f.get('node')}" for f in run.state.stack]
        if run.understanding is not None:
            context["intent"] = run.understanding.intent
        run.effects.append(Handoff(priority=priority, reason=reason, context=context))
        state = run.state
        state.status = Status.WAITING_OPERATOR
        state.vars.pop(OPERATOR_ACKED, None)
        state.priority = state.priority or priority
        state.waiting, state.token = None, None

    def _finish(self, run: _Run) -> None:
        if run.state.flow is not None:
            run.effects.append(Record("flow_end", {"flow": run.state.flow, "node": run.state.node}))
        run.state.flow, run.state.node, run.state.waiting, run.state.token = None, None, None, None
        if run.state.stack and run.state.status == Status.BOT:
            self._offer_resume(run)

    # --- rendering ---------------------------------------------------------------------------

    def _current(self, run: _Run) -> Node | None:
        flow = self.flows.get(run.state.flow or "")
        if flow is None or run.state.node is None:
            return None
        return flow.nodes.get(run.state.node)

    def _language(self, run: _Run) -> str:
        return self.pack.speaks(run.contact.language)

    # --- marketplace chats: flows declared `marketplace: false` are neither entered nor offered --------

    def _refused(self, run: _Run, flow_id: str) -> bool:
        flow = self.flows.get(flow_id)
        return run.contact.marketplace and flow is not None and not flow.marketplace

    def _refuse(self, run: _Run, flow_id: str) -> None:
        run.effects.append(Record("flow_refused", {"flow": flow_id, "reason": "marketplace"}))
        run.effects.append(Send(self._msg(run, self.pack.text("not_on_marketplace"))))
        run.input_pending = False
        self._finish(run)

    def _leads_to_refused(self, run: _Run, node_id: str | None) -> bool:
        flow = self.flows.get(run.state.flow or "")
        node = flow.nodes.get(node_id) if flow is not None and node_id else None
        return isinstance(node, GotoNode) and self._refused(run, node.flow)

    def _offered(self, run: _Run, payload: str) -> bool:
        """May a button with this payload be shown here? Not one that opens a refused flow, directly
        (`flow:<id>`) or through an intent the current flow routes to it."""
        if not run.contact.marketplace:
            return True
        if payload.startswith("flow:"):
            return not self._refused(run, payload[5:])
        if payload.startswith("intent:"):
            flow = self.flows.get(run.state.flow or "")
            routers = [n for n in flow.nodes.values() if isinstance(n, IntentRouterNode)] if flow else []
            return not any(self._leads_to_refused(run, r.routes.get(payload[7:])) for r in routers)
        return True

    def _for_channel(self, run: _Run, node: QuestionNode) -> QuestionNode:
        """The question without the options that lead to a refused flow (asked and answered alike, so the
        numbers a channel without buttons shows still match)."""
        if not run.contact.marketplace or not node.options:
            return node
        kept = [o for o in node.options if not self._leads_to_refused(run, o.next)]
        return node if len(kept) == len(node.options) else node.model_copy(update={"options": kept})

    def _scope(self, run: _Run) -> dict[str, Any]:
        return {"vars": run.state.vars, "contact": run.contact.scope(), "now": run.now.isoformat()}

    def _render(self, run: _Run, text: Text) -> str:
        return render(pick_language(text, self._language(run), self.pack.language), self._scope(run))

    def _msg(self, run: _Run, text: Text) -> OutboundMessage:
        return OutboundMessage(text=self._render(run, text))

    def _message_node(self, run: _Run, node: MessageNode) -> OutboundMessage:
        shown = [b for b in node.buttons if self._offered(run, b.payload)]
        buttons = tuple(Button(self._render(run, b.title), b.payload) for b in shown)
        media = tuple(
            Attachment(
                kind=m.kind, url=m.url, media_id=m.media_id, caption=self._render(run, m.caption) if m.caption else None
            )
            for m in node.media
        )
        template = None
        if node.template is not None:
            spec = node.template
            params = tuple(self._render(run, p) for p in spec.params)
            template = TemplateRef(spec.name, spec.language or self.pack.language, params)
        return OutboundMessage(
            text=self._render(run, node.text),
            buttons=buttons,
            attachments=media,
            template=template,
        )

    def _question_message(self, run: _Run, node: QuestionNode) -> OutboundMessage:
        node = self._for_channel(run, node)
        buttons = option_buttons(node, self._language(run), self.pack.language)
        rendered = tuple(Button(render(b.title, self._scope(run)), b.payload) for b in buttons)
        return OutboundMessage(
            text=self._render(run, node.text),
            buttons=rendered,
            request_contact=node.request_contact or node.kind == "phone",
        )


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _storable(value: Any, *, sensitive: bool) -> Any:
    """A parsed answer as it may be kept in the conversation state: masked when the question is sensitive,
    card numbers hidden in any text."""
    if sensitive:
        return mask_sensitive(str(value))
    return mask_cards(value) if isinstance(value, str) else value
