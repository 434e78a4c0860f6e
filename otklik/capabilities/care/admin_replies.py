"""Replies to WB reviews (admin): the queue by status, edit, approve, post the approved ones now, retry a
failed one. Viewing needs Perm.INBOX_VIEW (operators, who answer buyers, have no DASHBOARDS); every change
needs Perm.INBOX_REPLY and is audited in the transaction of the change (`review.reply_*`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from otklik.adapters.wildberries.accounts import client_for, wb_accounts
from otklik.capabilities.care import admin_queries as q
from otklik.capabilities.care.replies import (
    MAX_CHARS,
    ReplyStatus,
    ReplyView,
    approve_reply,
    edit_reply,
    list_replies,
    post_approved,
    retry_reply,
)
from otklik.core.errors import InvalidInput, OtklikError, TooLarge
from otklik.platform.audit import audit
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

if TYPE_CHECKING:
    from otklik.bootstrap import Otklik

router = APIRouter()
VIEW = need(Perm.INBOX_VIEW)
REPLY = need(Perm.INBOX_REPLY)
PAGE = 50
MAX_BODY = 64 * 1024
NOTICES = ("saved", "approved", "posted", "retried", "no_account")


def _auditor(principal: Principal, kind: str, extra: dict[str, Any] | None = None) -> Any:
    def record(session: AsyncSession, view: ReplyView) -> None:
        audit(session, principal.actor, kind, "wb_review_reply", view.id,
              {"feedback_id": view.feedback_id, "status": view.status, "text": view.text[:500], **(extra or {})})  # fmt: skip

    return record


def _status(value: str) -> str:
    return value if value in q.REPLY_STATUSES else ReplyStatus.DRAFT


async def _page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    otk = otklik_of(request)
    params = request.query_params
    status = _status(str(context.pop("status", None) or params.get("status", "")))
    try:
        account_id = q.parse_int(params.get("account", "")[:20], "account", low=1)
        page = q.parse_int(params.get("page", "")[:10], "page", low=1, high=100_000) or 1
    except InvalidInput as exc:
        account_id, page, status_code = None, 1, 422
        context.setdefault("errors", [exc.user_message])
    rows = await list_replies(otk.db, status=status, account_id=account_id, limit=PAGE + 1, offset=(page - 1) * PAGE)
    notice = params.get("notice", "")
    numbers = {k: q.parse_int(params.get(k, "")[:6], k, high=100_000) or 0 for k in ("ok", "failed")}
    return render(
        request, "admin/care_replies.html", status_code=status_code, status=status, rows=rows[:PAGE],
        more=len(rows) > PAGE, page=page, counts=await q.reply_counts(otk.db, account_id=account_id),
        accounts=await q.wb_account_choices(otk.db), account_id=account_id, max_chars=MAX_CHARS,
        notice=notice if notice in NOTICES else None, numbers=numbers,
        back=urlencode({"status": status, **({"account": account_id} if account_id else {})}), **context,
    )  # fmt: skip


@router.get("/care/replies", response_class=HTMLResponse, include_in_schema=False)
async def replies_page(request: Request, _p: Principal = Depends(VIEW)) -> HTMLResponse:
    return await _page(request)


async def _form(request: Request) -> dict[str, str]:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise TooLarge(f"the form is larger than {MAX_BODY // 1024} KB")
    form = await request.form(max_fields=10, max_files=0)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _back(form: dict[str, str], notice: str, **numbers: int) -> RedirectResponse:
    query = {"status": _status(form.get("back_status", "")), "notice": notice, **numbers}
    account = form.get("account", "")
    if account.isdigit() and len(account) < 16:
        query["account"] = int(account)
    return RedirectResponse(f"/admin/care/replies?{urlencode(query)}", status_code=303)


async def _refused(request: Request, form: dict[str, str], reply_id: int, exc: OtklikError) -> Response:
    """Show the page again with the error beside the reply and the typed text kept."""
    details = exc.details if isinstance(exc.details, list) else []
    return await _page(
        request, exc.status_code, status=form.get("back_status", ""),
        reply_errors={reply_id: exc.user_message}, reply_reasons={reply_id: [str(d) for d in details]},
        typed={reply_id: form.get("text", "")[:MAX_CHARS * 2]},
    )  # fmt: skip


@router.post("/care/replies/{reply_id}/edit", include_in_schema=False)
async def edit(request: Request, reply_id: PathId, principal: Principal = Depends(REPLY)) -> Response:
    form = await _form(request)
    try:
        await edit_reply(otklik_of(request).db, reply_id, form.get("text", ""),
                         on_change=_auditor(principal, "review.reply_edited"))  # fmt: skip
    except OtklikError as exc:
        return await _refused(request, form, reply_id, exc)
    return _back(form, "saved")


@router.post("/care/replies/{reply_id}/approve", include_in_schema=False)
async def approve(request: Request, reply_id: PathId, principal: Principal = Depends(REPLY)) -> Response:
    form = await _form(request)
    text = form.get("text")
    try:
        await approve_reply(otklik_of(request).db, reply_id, user_id=principal.user_id, user_name=principal.name,
                            text=text or None, on_change=_auditor(principal, "review.reply_approved"))  # fmt: skip
    except OtklikError as exc:
        return await _refused(request, form, reply_id, exc)
    return _back(form, "approved")


@router.post("/care/replies/{reply_id}/retry", include_in_schema=False)
async def retry(request: Request, reply_id: PathId, principal: Principal = Depends(REPLY)) -> Response:
    """Approve a failed reply again and post it at once (with the account's other approved replies)."""
    form = await _form(request)
    otk = otklik_of(request)
    try:
        await retry_reply(otk.db, reply_id, user_id=principal.user_id, user_name=principal.name,
                          on_change=_auditor(principal, "review.reply_retried"))  # fmt: skip
        account_id = await q.reply_account(otk.db, reply_id)
    except OtklikError as exc:
        return await _refused(request, form, reply_id, exc)
    ok, failed, found = await post_now(request, otk, principal, [account_id])
    return _back(form, "posted" if found else "no_account", ok=ok, failed=failed)


@router.post("/care/replies/post", include_in_schema=False)
async def post(request: Request, principal: Principal = Depends(REPLY)) -> Response:
    """Post every approved reply now (of one account, or of all) instead of waiting for the sync job."""
    form = await _form(request)
    otk = otklik_of(request)
    try:
        account_id = q.parse_int(form.get("account", "")[:20], "account", low=1)
    except InvalidInput as exc:
        return await _page(request, 422, errors=[exc.user_message])
    choices = [i for i, _ in await q.wb_account_choices(otk.db)]
    ok, failed, found = await post_now(request, otk, principal, [account_id] if account_id else choices)
    return _back(form, "posted" if found else "no_account", ok=ok, failed=failed)


def _lock(request: Request, account_id: int) -> asyncio.Lock:
    locks: dict[int, asyncio.Lock] | None = getattr(request.app.state, "care_post_locks", None)
    if locks is None:
        locks = request.app.state.care_post_locks = {}
    return locks.setdefault(account_id, asyncio.Lock())


async def post_now(
    request: Request, otk: Otklik, principal: Principal, account_ids: list[int]
) -> tuple[int, int, bool]:
    """Post approved replies through the WB client (against `OTKLIK_WB_API_URL` when set); each reply that
    was sent is audited as `review.reply_posted` or `review.reply_post_failed` (with WB's error).
    Returns (posted, failed, whether any of the accounts was found)."""
    accounts = {a.id: a for a in await wb_accounts(otk.db, otk.vault)}
    ok = failed = 0
    found = False
    for account_id in account_ids:
        account = accounts.get(account_id)
        if account is None:
            continue
        found = True
        async with _lock(request, account_id):  # two clicks in this process do not post the same reply twice
            before = await q.approved_replies(otk.db, account_id)
            async with client_for(account, otk.settings, limiters=otk.ctx.wb_limiters) as client:
                report = await post_approved(otk.db, client, account_id)
            ok, failed = ok + report.posted, failed + report.failed
            states = await q.reply_states(otk.db, [i for i, _ in before])
            async with otk.db.write() as session:
                for reply_id, feedback_id in before:
                    status, error = states.get(reply_id, ("", None))
                    if status == ReplyStatus.POSTED:
                        audit(session, principal.actor, "review.reply_posted", "wb_review_reply", reply_id,
                              {"feedback_id": feedback_id, "account_id": account_id})  # fmt: skip
                    elif status == ReplyStatus.FAILED:
                        audit(session, principal.actor, "review.reply_post_failed", "wb_review_reply", reply_id,
                              {"feedback_id": feedback_id, "account_id": account_id, "error": (error or "")[:300]})  # fmt: skip
    return ok, failed, found
