"""Survey trees, pure: a tree of button questions compiled into an ordinary flow (docs/outreach.md,
"Survey trees").

Each question has a text, 2–10 options (an optional free-text "other" counts as one), and for each option
the next question (none: the survey ends). An option may be marked `notify: contact` (the client asks to
be called) or `notify: intent` (buying intent): an executive is told. `compile_survey` turns a valid tree
into a `Flow` of `question` (kind choice) nodes, each answer recorded by the quick action `survey.answer`
before the next question, so the survey runs on every channel like any flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from otklik.core import safe_yaml
from otklik.core.errors import FlowInvalid, FlowIssue
from otklik.core.flows.model import (
    ActionNode,
    EndNode,
    Flow,
    Node,
    Option,
    QuestionNode,
    Text,
)
from otklik.core.flows.validate import check_flow
from otklik.core.templates import template_errors

ANSWER_ACTION = "survey.answer"
FLOW_PREFIX = "survey."
MIN_OPTIONS, MAX_OPTIONS = 2, 10
MAX_TITLE = 24  # a WhatsApp list row's title; Telegram and the web chat show longer ones, WhatsApp does not
MAX_TEXT = 1024  # a WhatsApp interactive message's body
MAX_QUESTIONS = 50
OTHER = "other"
MAX_ANSWER = 500  # characters of a free-text "other" answer
_ID = r"^[a-z][a-z0-9_]{0,39}$"


class SurveyOption(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_]{0,31}$")
    title: Text
    next: str | None = None  # the next question; none: the survey ends after this answer
    notify: Literal["contact", "intent"] | None = None  # tell an executive (asks to be called / wants to buy)


class OtherSpec(BaseModel):
    """The free-text "other" option: its button title, the question asked next, and where to go after."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    title: Text
    text: Text
    next: str | None = None
    notify: Literal["contact", "intent"] | None = None


class SurveyQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    text: Text
    options: list[SurveyOption] = Field(default_factory=list, max_length=20)  # 2–10 checked with clear messages
    other: OtherSpec | None = None
    attribute: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")  # contact attribute name


class Survey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=_ID)
    name: str = Field(default="", max_length=200)
    start: str
    intro: Text | None = None  # sent before the first question (a greeting)
    thanks: Text | None = None  # sent when the survey ends
    questions: dict[str, SurveyQuestion] = Field(min_length=1, max_length=MAX_QUESTIONS)

    @property
    def flow_id(self) -> str:
        return FLOW_PREFIX + self.id

    def attribute(self, question: str) -> str:
        """The contact attribute holding the answer to `question` (segments filter on it)."""
        spec = self.questions[question]
        return spec.attribute or f"survey_{self.id}_{question}"


def _issue(survey: str, question: str | None, field: str, message: str) -> FlowIssue:
    return FlowIssue(FLOW_PREFIX + survey, question, field, message)


def _variants(text: Text) -> list[str]:
    return [text] if isinstance(text, str) else list(text.values())


def survey_issues(survey: Survey) -> list[FlowIssue]:
    """Every problem of a parsed survey: a dangling option, a cycle, too many or too few options, an
    over-long button title or text, a question never asked."""
    issues: list[FlowIssue] = []
    sid = survey.id
    questions = survey.questions
    if survey.start not in questions:
        issues.append(_issue(sid, None, "start", f"the first question {survey.start!r} does not exist"))
    for qid, question in questions.items():
        if not _re_id(qid):
            issues.append(_issue(sid, qid, "id", "a question id: lowercase letters, digits and _, at most 40"))
        count = len(question.options) + (1 if question.other else 0)
        if count < MIN_OPTIONS:
            issues.append(_issue(sid, qid, "options", f"{count} option(s): a question needs at least {MIN_OPTIONS}"))
        if count > MAX_OPTIONS:
            issues.append(
                _issue(sid, qid, "options", f'{count} options: at most {MAX_OPTIONS} ("other" counts as one)')
            )
        ids = [o.id for o in question.options]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            issues.append(_issue(sid, qid, "options", f"option id {dup!r} is used twice"))
        if question.other and OTHER in ids:
            issues.append(_issue(sid, qid, "options", f"option id {OTHER!r} is reserved for the free-text option"))
        for field, text, limit in _texts_of(question):
            for variant in _variants(text):
                if not variant.strip():
                    issues.append(_issue(sid, qid, field, "empty text"))
                elif len(variant) > limit:
                    what = "button title" if limit == MAX_TITLE else "text"
                    issues.append(
                        _issue(
                            sid, qid, field, f"{what} {variant[:40]!r} is {len(variant)} characters; at most {limit}"
                        )
                    )
                issues += [_issue(sid, qid, field, m) for m in template_errors(variant)]
        for i, option in enumerate(question.options):
            if option.next is not None and option.next not in questions:
                issues.append(
                    _issue(
                        sid, qid, f"options.{i}.next", f"option {option.id!r} goes to unknown question {option.next!r}"
                    )
                )
        if question.other and question.other.next is not None and question.other.next not in questions:
            issues.append(_issue(sid, qid, "other.next", f'"other" goes to unknown question {question.other.next!r}'))
    extra: list[tuple[str, Text | None]] = [("intro", survey.intro), ("thanks", survey.thanks)]
    for field, maybe in extra:
        for variant in _variants(maybe) if maybe else []:
            if len(variant) > MAX_TEXT:
                issues.append(_issue(sid, None, field, f"text is {len(variant)} characters; at most {MAX_TEXT}"))
            issues += [_issue(sid, None, field, m) for m in template_errors(variant)]
    if survey.intro and survey.start in questions:  # sent as one message with the first question
        for variant in _variants(_join(survey.intro, questions[survey.start].text)):
            if len(variant) > MAX_TEXT:
                issues.append(
                    _issue(
                        sid,
                        survey.start,
                        "text",
                        f"intro and first question make {len(variant)} characters; at most {MAX_TEXT}",
                    )
                )
    issues += _cycles(survey)
    if survey.start in questions:
        reached = _reachable(survey)
        for qid in questions:
            if qid not in reached:
                issues.append(_issue(sid, qid, "id", f"question {qid!r} is never asked (no option leads to it)"))
    return issues


def _re_id(value: str) -> bool:
    import re

    return re.fullmatch(_ID, value) is not None


def _texts_of(question: SurveyQuestion) -> list[tuple[str, Text, int]]:
    out: list[tuple[str, Text, int]] = [("text", question.text, MAX_TEXT)]
    out += [(f"options.{i}.title", o.title, MAX_TITLE) for i, o in enumerate(question.options)]
    if question.other:
        out += [("other.title", question.other.title, MAX_TITLE), ("other.text", question.other.text, MAX_TEXT)]
    return out


def _edges(survey: Survey, qid: str) -> list[str]:
    question = survey.questions[qid]
    targets = [o.next for o in question.options if o.next]
    if question.other and question.other.next:
        targets.append(question.other.next)
    return [t for t in targets if t in survey.questions]


def _cycles(survey: Survey) -> list[FlowIssue]:
    """A survey is a tree (a DAG): an option leading back to an earlier question is refused."""
    issues: list[FlowIssue] = []
    state = dict.fromkeys(survey.questions, 0)
    reported: set[tuple[str, ...]] = set()

    def visit(qid: str, path: list[str]) -> None:
        state[qid] = 1
        for target in _edges(survey, qid):
            if state[target] == 1:
                loop = [*path[path.index(target) :], target]
                key = tuple(sorted(set(loop)))
                if key not in reported:
                    reported.add(key)
                    issues.append(
                        _issue(survey.id, qid, "next", "cycle: " + " -> ".join(loop) + " (a survey is a tree)")
                    )
            elif state[target] == 0:
                visit(target, [*path, target])
        state[qid] = 2

    for qid in survey.questions:
        if state[qid] == 0:
            visit(qid, [qid])
    return issues


def _reachable(survey: Survey) -> set[str]:
    seen, todo = {survey.start}, [survey.start]
    while todo:
        for target in _edges(survey, todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def build_survey(data: Any) -> Survey:
    """A parsed mapping -> a valid `Survey`, or `FlowInvalid` listing every problem."""
    if not isinstance(data, Mapping):
        raise FlowInvalid([FlowIssue("?", None, "", "a survey must be a mapping with id, start and questions")])
    sid = str(data.get("id") or "?")[:80]
    try:
        survey = Survey.model_validate(data)
    except ValidationError as exc:
        raise FlowInvalid([_pydantic_issue(sid, err) for err in exc.errors()]) from None
    issues = survey_issues(survey)
    if issues:
        raise FlowInvalid(issues)
    return survey


def parse_survey_yaml(source: str) -> Survey:
    """YAML text -> a valid `Survey` (hostile YAML refused first, as for flows)."""
    try:
        data = safe_yaml.load(source)
    except safe_yaml.UnsafeYaml as exc:
        raise FlowInvalid([FlowIssue("?", None, "", str(exc))]) from None
    except yaml.YAMLError as exc:
        raise FlowInvalid([FlowIssue("?", None, "", safe_yaml.syntax_message(exc))]) from None
    return build_survey(data)


def _pydantic_issue(survey: str, err: Any) -> FlowIssue:
    loc = [str(part) for part in err.get("loc", ())]
    question = loc[1] if len(loc) >= 2 and loc[0] == "questions" else None
    field = ".".join(loc[2:] if question is not None else loc)
    message = str(err.get("msg", "invalid"))
    if isinstance(err.get("input"), bool):  # YAML 1.1 reads yes/no/on/off unquoted as true/false
        message += ": YAML read a yes/no word as true/false — put it in quotes ('no')"
    return FlowIssue(FLOW_PREFIX + survey, question, field, message)


# --- compiling into a flow ------------------------------------------------------------------------


def question_node(qid: str) -> str:
    return f"q_{qid}"


def _answer_node(qid: str, option: str) -> str:
    return f"a_{qid}__{option}"


def compile_survey(survey: Survey) -> Flow:
    """The flow that asks the survey: `q_<question>` choice questions; each option goes to an action node
    recording the answer (`survey.answer`), then to the next question or to `end`."""
    nodes: dict[str, Node] = {}
    end_id = "end"

    def after(target: str | None) -> str:
        return question_node(target) if target else end_id

    def answer(qid: str, option: str, notify: str | None, target: str | None, free_text: bool) -> ActionNode:
        args: dict[str, Any] = {"survey": survey.id, "question": qid, "option": option}
        args["attribute"] = survey.attribute(qid)
        if notify:
            args["notify"] = notify
        if free_text:
            args["text"] = "{{ vars." + _other_var(qid) + " }}"
        return ActionNode(type="action", action=ANSWER_ACTION, args=args, next=after(target), on_error=after(target))

    for qid, question in survey.questions.items():
        options = [Option(title=o.title, value=o.id, next=_answer_node(qid, o.id)) for o in question.options]
        if question.other is not None:
            options.append(Option(title=question.other.title, value=OTHER, next=f"o_{qid}"))
        text = question.text
        if qid == survey.start and survey.intro:
            text = _join(survey.intro, question.text)
        nodes[question_node(qid)] = QuestionNode(
            type="question", kind="choice", text=text, options=options, save_as=f"survey_{qid}"
        )
        for o in question.options:
            nodes[_answer_node(qid, o.id)] = answer(qid, o.id, o.notify, o.next, False)
        if question.other is not None:
            other = question.other
            nodes[f"o_{qid}"] = QuestionNode(
                type="question",
                kind="text",
                text=other.text,
                save_as=_other_var(qid),
                max_length=4096,  # a long answer is kept, cut to MAX_ANSWER by `survey.answer`
                next=_answer_node(qid, OTHER),
            )
            nodes[_answer_node(qid, OTHER)] = answer(qid, OTHER, other.notify, other.next, True)
    nodes[end_id] = EndNode(type="end", text=survey.thanks)
    flow = Flow(
        id=survey.flow_id,
        name=survey.name or survey.id,
        description="compiled from a survey tree",
        start=question_node(survey.start),
        nodes=nodes,
    )
    issues = check_flow(flow)
    if issues:  # pragma: no cover - a valid survey always compiles to a valid flow
        raise FlowInvalid(issues)
    return flow


def _other_var(qid: str) -> str:
    return f"survey_{qid}_other"


def _join(intro: Text, text: Text) -> Text:
    if isinstance(intro, str) and isinstance(text, str):
        return f"{intro}\n\n{text}"
    a = {"": intro} if isinstance(intro, str) else dict(intro)
    b = {"": text} if isinstance(text, str) else dict(text)
    languages = (set(a) | set(b)) - {""}
    if not languages:
        return f"{a['']}\n\n{b['']}"
    return {
        lang: f"{a.get(lang, a.get('', next(iter(a.values()))))}\n\n{b.get(lang, b.get('', next(iter(b.values()))))}"
        for lang in languages
    }


def flow_yaml(flow: Flow) -> str:
    """The flow as YAML source (what the flow store keeps and the editor shows)."""
    data = flow.model_dump(by_alias=True, exclude_defaults=True, exclude_none=True)
    data["id"], data["start"] = flow.id, flow.start
    for node_id, node in flow.nodes.items():
        data["nodes"][node_id]["type"] = node.type
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)
