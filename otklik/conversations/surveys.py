"""Survey trees in the kernel: installing one as a flow, recording answers, results and CSV
(docs/outreach.md, "Survey trees"; the pure model is `otklik.core.survey`).

`survey.answer` is a quick action (it runs in the step's transaction, on every channel): one
`survey_answers` row per question, contact and source; the answer as a contact attribute
(`survey_<survey>_<question>` unless the question names its `attribute`) that segments filter on; and, for
an option marked `notify: contact` or `notify: intent`, a staff notification to the executives of the
account's pack (`platform.staff`), written in the same transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.models import Contact, FlowVersion, StaffMember, StaffNotification, SurveyAnswer
from otklik.conversations import events
from otklik.core import survey as model
from otklik.core.redact import mask_sensitive
from otklik.platform.staff.members import Member, split
from otklik.platform.staff.outbox import StaffMessage, notification_rows

if TYPE_CHECKING:
    from otklik.conversations.flowstore import FlowStore, FlowVersionInfo
    from otklik.conversations.timers import QuickContext, QuickTx

SOURCE_VAR = "survey_source"  # set by the run that starts the survey flow ("winback:3", "broadcast:12")
MAX_TEXT = 500
CSV_BATCH = 1000

_ADD_ANSWER = (
    sqlite_insert(SurveyAnswer).on_conflict_do_nothing(index_elements=["survey", "question", "contact_id", "source"]),
    pg_insert(SurveyAnswer).on_conflict_do_nothing(index_elements=["survey", "question", "contact_id", "source"]),
)
_ADD_NOTIFICATION = (
    sqlite_insert(StaffNotification).on_conflict_do_nothing(index_elements=["dedupe_key"]),
    pg_insert(StaffNotification).on_conflict_do_nothing(index_elements=["dedupe_key"]),
)
_FIELDS = select(Contact.fields, Contact.display_name).where(Contact.id == bindparam("contact_id"))
_SET_FIELDS = update(Contact).where(Contact.id == bindparam("contact_id")).values(fields=bindparam("new_fields"))
_MEMBERS = (
    select(
        StaffMember.id, StaffMember.name, StaffMember.email, StaffMember.telegram_chat_id, StaffMember.packs,
        StaffMember.rules,
    )
    .where(StaffMember.active.is_(True))
    .order_by(StaffMember.id)
)  # fmt: skip
_SUBJECTS = {
    "contact": {"es": "Un cliente pide que lo llamen", "ru": "Клиент просит перезвонить", "en": "A client asks to be called"},
    "intent": {"es": "Un cliente quiere comprar", "ru": "Клиент хочет купить", "en": "A client wants to buy"},
}  # fmt: skip


def _clean(value: Any, limit: int) -> str:
    return " ".join(str(value or "").split())[:limit]


async def answer(ctx: QuickContext, args: dict[str, Any]) -> dict[str, Any]:
    """`survey.answer` {survey, question, option, attribute, text?, notify?}: record one answer."""
    survey = _clean(args.get("survey"), 80)
    question = _clean(args.get("question"), 64)
    option = _clean(args.get("option"), 64)
    if not survey or not question or not option:
        raise ValueError("survey, question and option are required")
    text = _clean(mask_sensitive(_clean(args.get("text"), 4096)), MAX_TEXT) if "text" in args else None
    source = _clean(ctx.vars.get(SOURCE_VAR), 120)
    tx = ctx.tx
    added = await tx.execute(
        _ADD_ANSWER[0] if tx.is_sqlite else _ADD_ANSWER[1],
        {
            "survey": survey, "question": question, "option": option, "text": text or None,
            "contact_id": ctx.contact_id, "conversation_id": ctx.conversation_id, "source": source,
            "answered_at": ctx.now,
        },
    )  # fmt: skip
    attribute = _clean(args.get("attribute"), 64) or f"survey_{survey}_{question}"
    rows = await tx.fetch(_FIELDS, {"contact_id": ctx.contact_id})
    name = ""
    if rows:
        fields = dict(rows[0][0] or {})
        name = str(rows[0][1] or "")
        if fields.get(attribute) != option:
            fields[attribute] = option
            await tx.execute(_SET_FIELDS, {"contact_id": ctx.contact_id, "new_fields": fields})
    notified = 0
    notify = args.get("notify")
    if added:  # the answer's event, in the step's transaction, once (a repeat records nothing)
        answered = {"survey": survey, "question": question, "option": option, "text": text or None, "source": source}
        event = events.survey_answered(ctx.conversation_id, ctx.contact_id, ctx.account.kind, answered, ctx.now)
        await events.emit_events(tx, ctx.conversation_id, [event], ctx.now)
    if added and notify in _SUBJECTS:
        notified = await _notify(ctx, tx, str(notify), survey, question, option, text, name, source)
    return {"recorded": bool(added), "notified": notified}


async def _notify(
    ctx: QuickContext, tx: QuickTx, why: str, survey: str, question: str, option: str, text: str | None,
    name: str, source: str,
) -> int:  # fmt: skip
    pack = ctx.account.pack
    members = [
        Member(int(r[0]), str(r[1]), r[2], r[3], True, split(r[4]), split(r[5])) for r in await tx.fetch(_MEMBERS)
    ]
    members = [m for m in members if m.serves(pack)]
    language = ctx.language if ctx.language in ("es", "ru") else "en"
    body = [
        f"{name or 'contact'} (#{ctx.contact_id})",
        f"survey {survey}, question {question}: {option}" + (f" — {text}" if text else ""),
    ]
    if source:
        body.append(f"source: {source}")
    message = StaffMessage(
        subject=_SUBJECTS[why][language],
        text="\n".join(body),
        link=f"/admin/inbox/c/{ctx.conversation_id}",
        about=("conversation", str(ctx.conversation_id)),
    )
    rows = notification_rows(
        members, message, dedupe=f"survey:{survey}:{question}:{ctx.contact_id}:{source}", now=ctx.now
    )
    written = 0
    for row in rows:
        written += max(await tx.execute(_ADD_NOTIFICATION[0] if tx.is_sqlite else _ADD_NOTIFICATION[1], row), 0)
    return written


# --- installing a survey --------------------------------------------------------------------------


async def install(flows: FlowStore, source: str, *, pack: str, author: str) -> tuple[model.Survey, FlowVersionInfo]:
    """Validate a survey tree (YAML) and publish its compiled flow `survey.<id>` through the flow store
    (validated again, versioned and audited like an edit in the flow editor)."""
    survey = model.parse_survey_yaml(source)
    flow = model.compile_survey(survey)
    info = await flows.save(model.flow_yaml(flow), pack=pack, author=author, activate=True)
    return survey, info


# --- results --------------------------------------------------------------------------------------


async def surveys(session: AsyncSession) -> list[tuple[str, int, int]]:
    """(survey, answers, contacts) of every survey with answers, plus installed surveys without any."""
    rows = await session.execute(
        select(SurveyAnswer.survey, func.count(), func.count(func.distinct(SurveyAnswer.contact_id)))
        .group_by(SurveyAnswer.survey)
        .order_by(SurveyAnswer.survey)
    )
    found = {str(s): (int(a), int(c)) for s, a, c in rows}
    keys = await session.execute(
        select(FlowVersion.flow_key).where(FlowVersion.flow_key.startswith(model.FLOW_PREFIX)).distinct()
    )
    for key in keys.scalars():
        found.setdefault(key[len(model.FLOW_PREFIX) :], (0, 0))
    return [(s, a, c) for s, (a, c) in sorted(found.items())]


async def distribution(
    session: AsyncSession, survey: str, source: str | None = None
) -> dict[str, list[tuple[str, int]]]:
    """Per question, each option's count (most chosen first); `source` limits it to one run."""
    query = select(SurveyAnswer.question, SurveyAnswer.option, func.count()).where(SurveyAnswer.survey == survey)
    if source is not None:
        query = query.where(SurveyAnswer.source == source)
    rows = await session.execute(query.group_by(SurveyAnswer.question, SurveyAnswer.option))
    out: dict[str, list[tuple[str, int]]] = {}
    for question, option, count in rows:
        out.setdefault(str(question), []).append((str(option or ""), int(count)))
    for counts in out.values():
        counts.sort(key=lambda item: (-item[1], item[0]))
    return out


async def sources(session: AsyncSession, survey: str) -> list[str]:
    rows = await session.execute(
        select(SurveyAnswer.source).where(SurveyAnswer.survey == survey).distinct().order_by(SurveyAnswer.source)
    )
    return [str(s) for s in rows.scalars()]


CSV_HEADER = ("answered_at", "source", "contact_id", "question", "option", "text")


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


async def csv_rows(session: AsyncSession, survey: str, source: str | None = None) -> AsyncIterator[str]:
    """The answers as CSV text, in batches of `CSV_BATCH` rows (keyset pagination on the id)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    yield _drain(buffer)
    last = 0
    while True:
        query = select(*_CSV_COLUMNS).where(SurveyAnswer.survey == survey, SurveyAnswer.id > last)
        if source is not None:
            query = query.where(SurveyAnswer.source == source)
        batch = (await session.execute(query.order_by(SurveyAnswer.id).limit(CSV_BATCH))).all()
        if not batch:
            return
        writer.writerows(_line(row) for row in batch)
        last = int(batch[-1].id)
        yield _drain(buffer)


_CSV_COLUMNS = (
    SurveyAnswer.id, SurveyAnswer.answered_at, SurveyAnswer.source, SurveyAnswer.contact_id, SurveyAnswer.question,
    SurveyAnswer.option, SurveyAnswer.text,
)  # fmt: skip


def _line(row: Any) -> Iterable[str]:
    when: datetime = row.answered_at
    return (
        when.isoformat(), _cell(row.source), str(row.contact_id), _cell(row.question), _cell(row.option or ""),
        _cell(row.text or ""),
    )  # fmt: skip


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
