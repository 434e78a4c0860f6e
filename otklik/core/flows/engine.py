"""The flow interpreter: pure. `handle(state, event)` returns the new state and a list of effects.

Nothing here does I/O; the runtime stores the state and carries out the effects in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from otklik.core.conversation import (
    OPERATOR_ACKED,
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
from otklik.core.messages import Attachment, Button, EventKind, InboundEvent, OutboundMessage
from otklik.core.packs import PackConfig
from otklik.core.redact import mask_cards, mask_sensitive
from otklik.core.templates import pick_language, render
from otklik.core.understanding import IntentClassifier, Understanding

MAX_STEPS = 64
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
        state = run.state
        if state.status in (Status.WAITING_OPERATOR, Status.OPERATOR):
            run.effects.append(Record("message_for_operator", {}))
            if state.status == Status.WAITING_OPERATOR and not state.vars.get(OPERATOR_ACKED):
                state.vars[OPERATOR_ACKED] = True  # acknowledge once per wait, not every message
                run.effects.append(Send(self._msg(run, self.pack.text("with_operator"))))
            return
        if state.status == Status.CLOSED:
            run.state = ConversationState(vars=dict(state.vars))
        if command.startswith("/start"):
            self._on_start(run, run.event.payload or command[6:].strip())
            return
        if command in self.pack.operator_words:
            self._handoff(run, priority=False, reason="buyer_request", text=None)
            return
        if text:  # what the buyer last wrote (a knowledge answer reads it); a button press clears it
            run.state.vars["last_text"] = (mask_sensitive(text) if sensitive else mask_cards(text))[:1000]
        else:
            run.state.vars.pop("last_text", None)
        if run.event.kind == EventKind.BUTTON and (run.event.payload or "").startswith("flow:"):
            self._enter(run, (run.event.payload or "")[5:], None)
            return
        if text and self._escalates(run, text):
            return
        run.input_pending = True
        self._dispatch_input(run)

    def _escalates(self, run: _Run, text: str) -> bool:
        """Red flags and an explicit wish for a human hand the conversation over at once."""
        language = run.contact.language or self.pack.language
        understanding = run.understanding or self.classifier.understand(text, language)
        run.understanding = understanding
        run.effects.append(
            Record("understood", {"intent": understanding.intent, "confidence": round(understanding.confidence, 3)})
        )
        if understanding.red_flag:
            self._handoff(run, priority=True, reason=f"red_flag:{understanding.red_flag}", text=None)
            return True
        question = self._current(run)
        asks_free_text = isinstance(question, QuestionNode) and question.kind == "text"
        if (
            understanding.intent == self.pack.operator_intent
            and not asks_free_text
            and understanding.confidence >= self.pack.operator_confidence
        ):
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
            self._route(run, node)
        elif state.waiting == "timer" and isinstance(node, WaitNode):
            self._goto(run, node.on_reply or node.next)
        elif state.waiting == "action":
            run.effects.append(Record("message_during_action", {}))
        else:
            self._enter(run, self.pack.default_flow, None)

    def _on_start(self, run: _Run, payload: str) -> None:
        flow_id = self.pack.flow_for_payload(payload) if payload else None
        if payload:
            run.state.vars["start_payload"] = payload
        run.effects.append(Record("start", {"payload": payload, "flow": flow_id}))
        self._enter(run, flow_id or self.pack.default_flow, None)

    def _answer(self, run: _Run, node: QuestionNode) -> None:
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
            self._retry(run, node)
            return
        value, override = parsed
        run.input_pending = False
        if node.save_as:
            run.state.vars[node.save_as] = _storable(value, sensitive=node.sensitive)
        run.state.retries = 0
        self._goto(run, override or node.next)

    def _retry(self, run: _Run, node: QuestionNode) -> None:
        run.state.retries += 1
        run.input_pending = False
        if run.state.retries > node.max_retries:
            run.state.retries = 0
            if node.on_fail:
                self._goto(run, node.on_fail)
            else:
                self._handoff(run, priority=False, reason="retries_exhausted", text=None)
            return
        retry = node.retry_text or self.pack.text("not_understood")
        prefix = self._render(run, retry)
        question = self._question_message(run, node)
        run.effects.append(
            Send(
                OutboundMessage(
                    text=f"{prefix}\n{question.text}".strip(),
                    buttons=question.buttons,
                    request_contact=question.request_contact,
                )
            )
        )

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
            run.effects.append(Send(self._message_node(run, node)))
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

    def _router(self, run: _Run, node: IntentRouterNode) -> None:
        intent_button = run.event.kind == EventKind.BUTTON and (run.event.payload or "").startswith("intent:")
        if run.input_pending and ((run.event.text or "").strip() or intent_button):
            self._route(run, node)
            return
        if node.text or node.buttons:
            buttons = tuple(Button(self._render(run, b.title), b.payload) for b in node.buttons)
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
        run.effects.append(Handoff(priority=priority, reason=reason))
        state = run.state
        state.status = Status.WAITING_OPERATOR
        state.vars.pop(OPERATOR_ACKED, None)
        state.priority = state.priority or priority
        state.waiting, state.token = None, None

    def _finish(self, run: _Run) -> None:
        if run.state.flow is not None:
            run.effects.append(Record("flow_end", {"flow": run.state.flow, "node": run.state.node}))
        run.state.flow, run.state.node, run.state.waiting, run.state.token = None, None, None, None

    # --- rendering ---------------------------------------------------------------------------

    def _current(self, run: _Run) -> Node | None:
        flow = self.flows.get(run.state.flow or "")
        if flow is None or run.state.node is None:
            return None
        return flow.nodes.get(run.state.node)

    def _language(self, run: _Run) -> str:
        return run.contact.language or self.pack.language

    def _scope(self, run: _Run) -> dict[str, Any]:
        return {"vars": run.state.vars, "contact": run.contact.scope(), "now": run.now.isoformat()}

    def _render(self, run: _Run, text: Text) -> str:
        return render(pick_language(text, self._language(run), self.pack.language), self._scope(run))

    def _msg(self, run: _Run, text: Text) -> OutboundMessage:
        return OutboundMessage(text=self._render(run, text))

    def _message_node(self, run: _Run, node: MessageNode) -> OutboundMessage:
        buttons = tuple(Button(self._render(run, b.title), b.payload) for b in node.buttons)
        media = tuple(
            Attachment(
                kind=m.kind, url=m.url, media_id=m.media_id, caption=self._render(run, m.caption) if m.caption else None
            )
            for m in node.media
        )
        return OutboundMessage(text=self._render(run, node.text), buttons=buttons, attachments=media)

    def _question_message(self, run: _Run, node: QuestionNode) -> OutboundMessage:
        buttons = option_buttons(node, self._language(run), self.pack.language)
        rendered = tuple(Button(render(b.title, self._scope(run)), b.payload) for b in buttons)
        return OutboundMessage(
            text=self._render(run, node.text),
            buttons=rendered,
            request_contact=node.request_contact or node.kind == "phone",
        )


def _storable(value: Any, *, sensitive: bool) -> Any:
    """A parsed answer as it may be kept in the conversation state: masked when the question is sensitive,
    card numbers hidden in any text."""
    if sensitive:
        return mask_sensitive(str(value))
    return mask_cards(value) if isinstance(value, str) else value
