"""Replies to WB reviews: drafts from templates per category (phrased by the LLM when one is configured
and its draft passes the guardrails), an operator's edit and approval, posting through
`POST /api/v1/feedbacks/answer` with a confirming re-read, visible failures and retries.

States: draft -> approved -> posting -> posted | failed; failed -> approved again by `retry_reply`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.db.engine import Database
from otklik.adapters.wildberries import WBClient, WBError, WBNotFound
from otklik.capabilities.care.classify import review_text
from otklik.capabilities.care.models import WBFeedback, WBReviewReply
from otklik.clock import utcnow
from otklik.core.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)


class ReplyStatus(StrEnum):
    """`wb_review_replies.status`, in the order the admin lists them."""

    DRAFT = "draft"
    APPROVED = "approved"
    POSTING = "posting"  # claimed by a worker; older than `STALE_POSTING` means interrupted
    FAILED = "failed"
    POSTED = "posted"


_EDITABLE = (ReplyStatus.DRAFT, ReplyStatus.FAILED, ReplyStatus.APPROVED)

MIN_WORDS, MAX_CHARS = 3, 5000  # WB forbids one-word answers; an answer is 2-5000 characters
STALE_POSTING = timedelta(minutes=5)  # a `posting` row older than this was interrupted: re-read, then retry

_OPEN = "Здравствуйте! Спасибо, что поделились впечатлением."
TEMPLATES: dict[str, str] = {
    "wrong_item": _OPEN + " Нам очень жаль, что пришёл не тот товар. Оформите, пожалуйста, возврат в приложении "
    "Wildberries с причиной «Не тот товар» и приложите фото этикетки со штрихкодом — так Wildberries быстрее "
    "разберётся. Мы проверим, как собирался заказ.",
    "defective_item": _OPEN + " Нам жаль, что товар пришёл с дефектом. Бракованный товар можно вернуть через "
    "приложение Wildberries: «Покупки» → товар → «Вернуть товар» → «Брак», с фото дефекта. Мы передали случай в "
    "контроль качества.",
    "side_effect": _OPEN + " Нам жаль, что средство вызвало неприятные ощущения. Пожалуйста, смойте его водой и "
    "прекратите использование; если появились отёк, волдыри или трудно дышать — обратитесь к врачу. Подробная "
    "инструкция есть в описании товара.",
    "return_refund": _OPEN + " Возвраты и деньги за них оформляет Wildberries: статус возврата виден в приложении в "
    "разделе «Покупки». Если что-то пошло не так, поддержка Wildberries поможет разобраться.",
    "delivery_issue": _OPEN + " Нам жаль, что доставка заняла так много времени. Доставку заказов выполняет "
    "Wildberries, и мы передаём им товар заранее; надеемся, следующий заказ придёт быстрее.",
    "size_fit": _OPEN + " Жаль, что размер не подошёл. Советуем сверяться с размерной таблицей в карточке товара — мы "
    "указали в ней мерки каждого размера. Ваш отзыв поможет другим покупателям с выбором.",
    "smell": _OPEN + " Спасибо за замечание о запахе, мы передадим его производителю. У средства может быть "
    "собственный аромат компонентов; если он вызывает дискомфорт, лучше прекратить использование.",
    "packaging": _OPEN + " Нам жаль, что упаковка пришла в таком виде. Мы проверим, как упаковываются заказы, чтобы "
    "товар приходил аккуратным.",
    "quality": _OPEN + " Жаль, что товар не оправдал ожиданий. Мы передали ваш отзыв в контроль качества и "
    "внимательно его разберём.",
    "price": _OPEN + " Понимаем ваше мнение о цене. Мы стараемся держать её честной для такого качества и следим за "
    "акциями Wildberries.",
    "other": _OPEN + " Нам жаль, что вы остались недовольны. Мы внимательно прочитали ваш отзыв и учтём его.",
    "positive": "Здравствуйте! Спасибо за отзыв и высокую оценку. Рады, что товар понравился — будем рады видеть вас "
    "снова!",
}


@dataclass(frozen=True, slots=True)
class ReplyView:
    """One reply as the admin shows it, with the review it answers."""

    id: int
    feedback_row_id: int
    feedback_id: str
    nm_id: int
    rating: int | None
    category: str | None
    review: str
    text: str
    source: str  # template | llm | operator
    status: str  # draft | approved | posting | posted | failed
    approved_by: str
    approved_at: datetime | None
    attempts: int
    error: str | None
    answer_state: str  # WB's answer state on the confirming re-read (wbRu, reviewRequired…)
    posted_at: datetime | None


#: Called with the session and the changed reply inside the change's transaction (the admin audits there).
OnChange = Callable[[AsyncSession, ReplyView], None]


def _view(reply: WBReviewReply, fb: WBFeedback) -> ReplyView:
    return ReplyView(
        reply.id, fb.id, fb.feedback_id, fb.nm_id, fb.rating, fb.category, review_text(fb.text, fb.cons),
        reply.text, reply.source, reply.status, reply.approved_by, reply.approved_at, reply.attempts,
        reply.error, reply.answer_state, reply.posted_at,
    )  # fmt: skip


def check_reply_text(text: str) -> str:
    """An answer an operator may approve: 3+ words, at most 5000 characters, and it passes the marketplace
    guardrails (no promises of money, no contacts, links or other platforms, no diagnoses)."""
    from otklik.conversations.llm.guardrails import check_reply

    text = text.strip()
    if len(text.split()) < MIN_WORDS or len(text) > MAX_CHARS:
        raise InvalidInput(f"a reply needs at least {MIN_WORDS} words and at most {MAX_CHARS} characters")
    verdict = check_reply(text, language="ru", channel_is_marketplace=True)
    if not verdict.ok:
        raise InvalidInput("the reply breaks marketplace rules: " + ", ".join(verdict.reasons), details=verdict.reasons)
    return text


def template_for(category: str | None, negative: bool) -> str:
    return TEMPLATES["positive"] if not negative else TEMPLATES.get(category or "other", TEMPLATES["other"])


async def create_drafts(
    db: Database, *, account_id: int | None = None, llm: Any = None, limit: int = 200
) -> list[ReplyView]:
    """Drafts for unanswered reviews with text that have no reply yet, oldest first (WB archives
    unanswered reviews after 30 days). With an LLM the draft is its phrasing when it passes the guardrails."""
    from otklik.conversations.llm.tasks import draft_review_reply

    query = (
        select(WBFeedback)
        .outerjoin(WBReviewReply, WBReviewReply.feedback_row_id == WBFeedback.id)
        .where(WBReviewReply.id.is_(None), WBFeedback.answer_text == "")
        .order_by(WBFeedback.created_date)
        .limit(limit)
    )
    if account_id is not None:
        query = query.where(WBFeedback.channel_account_id == account_id)
    async with db.read() as session:
        rows = [r for r in (await session.execute(query)).scalars() if review_text(r.text, r.cons)]
    made: list[ReplyView] = []
    for fb in rows:
        text, source = template_for(fb.category, fb.negative), "template"
        if llm is not None:
            phrased = await draft_review_reply(
                llm, review_text(fb.text, fb.cons), fb.rating or 0, fb.category or "positive", "ru"
            )
            if phrased:
                text, source = phrased, "llm"
        now = utcnow()
        async with db.write() as session:
            if await session.scalar(select(WBReviewReply.id).where(WBReviewReply.feedback_row_id == fb.id)):
                continue  # another process drafted it meanwhile
            reply = WBReviewReply(
                feedback_row_id=fb.id, text=text, source=source, status=ReplyStatus.DRAFT, approved_by="", attempts=0,
                answer_state="", created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(reply)
            await session.flush()
            made.append(_view(reply, fb))
    return made


async def _load(session: AsyncSession, reply_id: int) -> tuple[WBReviewReply, WBFeedback]:
    row = (
        await session.execute(
            select(WBReviewReply, WBFeedback)
            .join(WBFeedback, WBFeedback.id == WBReviewReply.feedback_row_id)
            .where(WBReviewReply.id == reply_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no reply #{reply_id}")
    return row[0], row[1]


async def edit_reply(db: Database, reply_id: int, text: str, *, on_change: OnChange | None = None) -> ReplyView:
    """Change a draft's (or a failed reply's) text; it becomes an operator's draft again."""
    text = check_reply_text(text)
    async with db.write() as session:
        reply, fb = await _load(session, reply_id)
        if reply.status not in _EDITABLE:
            raise Conflict(f"reply #{reply_id} is {reply.status}; it can no longer be edited")
        reply.text, reply.source, reply.status, reply.updated_at = text, "operator", ReplyStatus.DRAFT, utcnow()
        view = _view(reply, fb)
        if on_change is not None:
            on_change(session, view)
        return view


async def approve_reply(
    db: Database,
    reply_id: int,
    *,
    user_id: int,
    user_name: str,
    text: str | None = None,
    on_change: OnChange | None = None,
) -> ReplyView:
    """An operator approves the reply (optionally with an edited text); the worker posts it."""
    async with db.write() as session:
        reply, fb = await _load(session, reply_id)
        if reply.status not in _EDITABLE:
            raise Conflict(f"reply #{reply_id} is {reply.status}; it cannot be approved again")
        if text is not None and text.strip() != reply.text:
            reply.text, reply.source = check_reply_text(text), "operator"
        else:
            check_reply_text(reply.text)
        now = utcnow()
        reply.status, reply.approved_by_id, reply.approved_by = ReplyStatus.APPROVED, user_id, user_name[:200]
        reply.approved_at, reply.updated_at, reply.error = now, now, None
        view = _view(reply, fb)
        if on_change is not None:
            on_change(session, view)
        return view


async def retry_reply(
    db: Database, reply_id: int, *, user_id: int, user_name: str, on_change: OnChange | None = None
) -> ReplyView:
    """Send a failed reply again (the same text, approved again by this user)."""
    async with db.read() as session:
        reply, _fb = await _load(session, reply_id)
        if reply.status != ReplyStatus.FAILED:
            raise Conflict(f"reply #{reply_id} is {reply.status}, not failed")
    return await approve_reply(db, reply_id, user_id=user_id, user_name=user_name, on_change=on_change)


async def list_replies(
    db: Database, *, status: str | None = None, account_id: int | None = None, limit: int = 100, offset: int = 0
) -> list[ReplyView]:
    """Replies with their reviews, oldest review first (the admin's queue)."""
    query = select(WBReviewReply, WBFeedback).join(WBFeedback, WBFeedback.id == WBReviewReply.feedback_row_id)
    if status is not None:
        query = query.where(WBReviewReply.status == status)
    if account_id is not None:
        query = query.where(WBFeedback.channel_account_id == account_id)
    query = query.order_by(WBFeedback.created_date, WBReviewReply.id).limit(limit).offset(offset)
    async with db.read() as session:
        return [_view(r, fb) for r, fb in (await session.execute(query)).all()]


@dataclass(frozen=True, slots=True)
class PostReport:
    posted: int
    failed: int


async def _claim(db: Database, account_id: int, limit: int) -> list[tuple[int, str, str, int]]:
    """Approved replies (and interrupted posts) of the account -> posting: (id, feedback id, text, attempts)."""
    now = utcnow()
    async with db.write() as session:
        rows = (
            await session.execute(
                select(WBReviewReply, WBFeedback)
                .join(WBFeedback, WBFeedback.id == WBReviewReply.feedback_row_id)
                .where(
                    WBFeedback.channel_account_id == account_id,
                    (WBReviewReply.status == ReplyStatus.APPROVED)
                    | (
                        (WBReviewReply.status == ReplyStatus.POSTING) & (WBReviewReply.updated_at < now - STALE_POSTING)
                    ),
                )
                .order_by(WBFeedback.created_date)
                .limit(limit)
            )
        ).all()
        out = []
        for reply, fb in rows:
            out.append((reply.id, fb.feedback_id, reply.text, reply.attempts))
            reply.status, reply.attempts, reply.updated_at = ReplyStatus.POSTING, reply.attempts + 1, now
    return out


async def post_approved(db: Database, client: WBClient, account_id: int, *, limit: int = 50) -> PostReport:
    """Post approved replies of one WB account and confirm each by re-reading the review."""
    posted = failed = 0
    for reply_id, feedback_id, text, attempts in await _claim(db, account_id, limit):
        ok = await _post_one(db, client, reply_id, feedback_id, text, retry=attempts > 0)
        posted, failed = posted + ok, failed + (not ok)
    return PostReport(posted, failed)


async def _post_one(db: Database, client: WBClient, reply_id: int, feedback_id: str, text: str, *, retry: bool) -> bool:
    try:
        if retry:  # an earlier attempt may have landed although its response was lost
            current = await client.get_feedback(feedback_id)
            if current.answer_text.strip() == text.strip():
                await _finish(db, reply_id, ReplyStatus.POSTED, None, current.answer.state if current.answer else "")
                return True
            if current.answer_text.strip():
                await _finish(
                    db, reply_id, ReplyStatus.FAILED, "the review already has another answer on Wildberries", ""
                )
                return False
        confirmed = await client.answer_feedback_confirmed(feedback_id, text)
    except WBNotFound as exc:
        await _finish(db, reply_id, ReplyStatus.FAILED, f"{exc.user_message('ru')} ({exc})", "")
        return False
    except WBError as exc:
        log.warning("posting reply %s failed: %s", reply_id, exc)
        await _finish(db, reply_id, ReplyStatus.FAILED, f"{exc.user_message('ru')} ({exc})"[:1000], "")
        return False
    await _finish(db, reply_id, ReplyStatus.POSTED, None, confirmed.answer.state if confirmed.answer else "")
    return True


async def _finish(db: Database, reply_id: int, status: ReplyStatus, error: str | None, answer_state: str) -> None:
    now = utcnow()
    async with db.write() as session:
        reply, fb = await _load(session, reply_id)
        reply.status, reply.error, reply.updated_at = status, error, now
        if status == ReplyStatus.POSTED:
            reply.posted_at, reply.answer_state = now, answer_state[:32]
            fb.answer_text, fb.answer_state, fb.updated_at = reply.text, answer_state[:32], now
