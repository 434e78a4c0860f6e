"""The operator inbox, pages: the conversation list (views, filters, search, cursor pages), one
conversation with its history and contact card, the small JSON/HTML endpoints the page polls, and media.

Actions (reply, note, tags, assign, close, return to bot) are in `inbox_actions`, canned responses in
`inbox_canned`. Queries live in `otklik.capabilities.inbox.queries`; this module parses, calls and renders.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from otklik.capabilities.inbox import queries as inbox
from otklik.capabilities.inbox.service import canned_list, canned_scope, render_canned, resume_points
from otklik.clock import utcnow
from otklik.conversations.tags import clean_tag
from otklik.core.errors import InvalidInput, NotFound, OtklikError
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render, templates, zone_of
from otklik.platform.webkit.params import PathId, QueryCursor, QueryId

router = APIRouter()

_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


def parse_filter(
    view: str = "waiting",
    account: str = "",
    tag: str = "",
    status: str = "",
    q: str = "",
    cursor: str = "",
) -> inbox.ListFilter:
    """The list's query parameters; anything malformed is `InvalidInput` with a clear message."""
    try:
        chosen = inbox.View(view or "waiting")
    except ValueError:
        raise InvalidInput("view: waiting, mine, all or closed") from None
    account_id = None
    if account.strip():
        if not account.strip().isdigit() or len(account.strip()) > 18:
            raise InvalidInput("account: a channel account id")
        account_id = int(account)
    if status and status not in inbox.STATUSES:
        raise InvalidInput("status: bot, waiting_operator, operator or closed")
    if len(q) > inbox.MAX_QUERY or len(cursor) > 400:
        raise InvalidInput(f"search: at most {inbox.MAX_QUERY} characters")
    return inbox.ListFilter(
        view=chosen,
        account_id=account_id,
        tag=clean_tag(tag) if tag.strip() else None,
        status=status or None,
        q=" ".join(q.replace("\x00", "").split()) or None,
        cursor=cursor or None,
    )


def filter_query(
    view: str = Query("waiting", max_length=16),
    account: str = Query("", max_length=20),
    tag: str = Query("", max_length=100),
    status: str = Query("", max_length=24),
    q: str = Query("", max_length=1000),
    cursor: str = Query("", max_length=1000),
) -> dict[str, str]:
    return {"view": view, "account": account, "tag": tag, "status": status, "q": q, "cursor": cursor}


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def waited(since: datetime | None, now: datetime) -> tuple[str, int] | None:
    """How long a conversation has waited, as an i18n key and a number (minutes, hours or days)."""
    if since is None:
        return None
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return "inbox.wait_min", minutes
    if minutes < 48 * 60:
        return "inbox.wait_hours", minutes // 60
    return "inbox.wait_days", minutes // (24 * 60)


async def _list_context(
    request: Request, principal: Principal, flt: inbox.ListFilter, *, rows_only: bool = False
) -> dict[str, Any]:
    """The list page's data; `rows_only` (the live refresh and "more"): just the page of rows."""
    otk = otklik_of(request)
    async with otk.db.read() as session:
        page = await inbox.list_conversations(session, otk.ctx, flt, user_id=principal.user_id)
        context: dict[str, Any] = {
            "flt": flt,
            "page": page,
            "now": utcnow(),
            "waited": waited,
            "base_query": urlencode(flt.query()),
            "more_query": urlencode(flt.query(cursor=page.next_cursor)) if page.next_cursor else "",
        }
        if rows_only:
            return context
        accounts = await inbox.account_names(session, otk.ctx)
        context.update(
            counts=await inbox.counters(session, user_id=principal.user_id),
            tags=await inbox.tags_in_use(session, inbox.tags_cache(otk.ctx)),
            accounts=sorted(accounts.items(), key=lambda kv: kv[1][0]),
            statuses=inbox.STATUSES,
            views=list(inbox.View),
            version=await inbox.pulse(session),
        )
    return context


async def _filter_or_error(request: Request, raw: dict[str, str]) -> tuple[inbox.ListFilter, str | None]:
    try:
        return parse_filter(**raw), None
    except OtklikError as exc:
        return inbox.ListFilter(), exc.user_message


@router.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
async def inbox_page(
    request: Request,
    raw: dict[str, str] = Depends(filter_query),
    principal: Principal = Depends(need(Perm.INBOX_VIEW)),
) -> HTMLResponse:
    flt, error = await _filter_or_error(request, raw)
    context = await _safe_list_context(request, principal, flt, error)
    return render(request, "admin/inbox.html", status_code=422 if context.get("error") else 200, conv=None, **context)


async def _safe_list_context(
    request: Request, principal: Principal, flt: inbox.ListFilter, error: str | None
) -> dict[str, Any]:
    try:
        context = await _list_context(request, principal, flt)
    except InvalidInput as exc:  # e.g. a forged cursor: show the first page and say why
        context = await _list_context(request, principal, inbox.ListFilter(view=flt.view))
        error = exc.user_message
    context["error"] = error
    return context


@router.get("/inbox/list", response_class=HTMLResponse, include_in_schema=False)
async def inbox_list(
    request: Request,
    raw: dict[str, str] = Depends(filter_query),
    selected: QueryCursor = 0,
    principal: Principal = Depends(need(Perm.INBOX_VIEW)),
) -> Response:
    """One page of the list as HTML rows (the page's live refresh and "more"); the next cursor in a header."""
    try:
        flt = parse_filter(**raw)
        context = await _list_context(request, principal, flt, rows_only=True)
    except OtklikError as exc:
        return JSONResponse({"detail": exc.user_message}, status_code=exc.status_code)
    response = templates.TemplateResponse(
        request,
        "admin/inbox_list.html",
        {**context, "t": _t(request, principal), "selected": selected, "user": principal, "tz": zone_of(request)},
    )
    response.headers["X-Next-Cursor"] = context["page"].next_cursor or ""
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/inbox/pulse", include_in_schema=False)
async def inbox_pulse(request: Request, principal: Principal = Depends(need(Perm.INBOX_VIEW))) -> JSONResponse:
    """What the page polls every few seconds: a change marker and the tab counters (bounded)."""
    otk = otklik_of(request)
    async with otk.db.read() as session:
        version = await inbox.pulse(session)
        counts = await inbox.counters(session, user_id=principal.user_id)
    return JSONResponse(
        {
            "version": version,
            "waiting": f"{counts.waiting}+" if counts.waiting_capped else str(counts.waiting),
            "priority": counts.priority,
            "mine_unread": f"{counts.mine_unread}+" if counts.mine_capped else str(counts.mine_unread),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/inbox/c/{conversation_id}", response_class=HTMLResponse, include_in_schema=False)
async def conversation_page(
    request: Request,
    conversation_id: PathId,
    raw: dict[str, str] = Depends(filter_query),
    principal: Principal = Depends(need(Perm.INBOX_VIEW)),
) -> HTMLResponse:
    return await render_conversation(request, principal, conversation_id, raw)


async def render_conversation(
    request: Request,
    principal: Principal,
    conversation_id: int,
    raw: dict[str, str] | None = None,
    *,
    status_code: int = 200,
    error: str | None = None,
    draft: str = "",
    guard: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The inbox page with one conversation open (also re-rendered by a failed form action; `guard`: the
    marketplace guard's refusal of the operator's text, highlighted, with a suggested rewording)."""
    otk = otklik_of(request)
    t = _t(request, principal)
    flt, filter_error = await _filter_or_error(request, raw or {})
    try:
        conv, points, canned = await _conversation(request, principal, conversation_id)
    except NotFound as exc:
        context = await _safe_list_context(request, principal, flt, exc.user_message)
        return render(request, "admin/inbox.html", status_code=404, conv=None, **context)
    context = await _safe_list_context(request, principal, flt, error or filter_error)
    return render(
        request,
        "admin/inbox.html",
        status_code=status_code if status_code != 200 else (422 if context["error"] else 200),
        conv=conv,
        resume_points=points,
        canned=canned,
        operators=await _operators(otk),
        draft=draft,
        guard=guard,
        max_text=otk.settings.max_text_chars,
        selected=conv.id,
        status_labels={s: t(f"inbox.status.{s}") for s in inbox.STATUSES},
        **context,
    )


async def _conversation(
    request: Request, principal: Principal, conversation_id: int
) -> tuple[inbox.ConversationView, list[Any], list[dict[str, Any]]]:
    otk = otklik_of(request)
    if principal.can(Perm.INBOX_REPLY):
        async with otk.db.read() as session:
            current = await inbox.head(session, conversation_id)
        if current is not None and current.unread:
            async with otk.db.write() as session:
                await inbox.mark_read(session, conversation_id)
    async with otk.db.read() as session:
        conv = await inbox.conversation_view(session, otk.ctx, conversation_id)
        points: list[Any] = []
        canned: list[dict[str, Any]] = []
        if principal.can(Perm.INBOX_REPLY):
            points = await resume_points(otk.ctx, session, conv.channel_account_id)
            scope = canned_scope(conv.contact.name, conv.contact.fields, conv.state_vars, principal.name)
            canned = [
                {"id": c.id, "title": c.title, "text": render_canned(c.text, scope), "language": c.language}
                for c in await canned_list(session)
            ]
    return conv, points, canned


async def _operators(otk: Any) -> list[tuple[int, str]]:
    async with otk.db.read() as session:
        return await inbox.operators(session)


@router.get("/inbox/c/{conversation_id}/messages", include_in_schema=False)
async def conversation_messages(
    request: Request,
    conversation_id: PathId,
    after: QueryCursor = 0,
    principal: Principal = Depends(need(Perm.INBOX_VIEW)),
) -> JSONResponse:
    """New messages after `after` as HTML (the open conversation's live update) and fresh delivery marks."""
    otk = otklik_of(request)
    async with otk.db.read() as session:
        head = await inbox.head(session, conversation_id)
        if head is None:
            return JSONResponse({"detail": "no such conversation"}, status_code=404)
        items = await inbox.messages_after(session, conversation_id, after)
        marks = await inbox.recent_marks(session, conversation_id)
    if head.unread and principal.can(Perm.INBOX_REPLY):
        async with otk.db.write() as session:
            await inbox.mark_read(session, conversation_id)
    html = _fragment(request, principal, "admin/inbox_messages.html", messages=items, conv_id=conversation_id)
    return JSONResponse(
        {
            "html": html,
            "last": items[-1].id if items else after,
            "count": len(items),
            "marks": {str(k): v for k, v in marks.items()},
            "status": head.status,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/inbox/c/{conversation_id}/history", include_in_schema=False)
async def conversation_history(
    request: Request,
    conversation_id: PathId,
    before: QueryId,
    principal: Principal = Depends(need(Perm.INBOX_VIEW)),
) -> JSONResponse:
    """Older messages before the id `before` (the "earlier messages" button), as HTML."""
    otk = otklik_of(request)
    async with otk.db.read() as session:
        if await inbox.head(session, conversation_id) is None:
            return JSONResponse({"detail": "no such conversation"}, status_code=404)
        items, has_older = await inbox.history(session, conversation_id, before=before)
    html = _fragment(request, principal, "admin/inbox_messages.html", messages=items, conv_id=conversation_id)
    return JSONResponse({"html": html, "first": items[0].id if items else before, "has_older": has_older})


@router.get("/inbox/c/{conversation_id}/media/{media_id}", include_in_schema=False)
async def conversation_media(
    request: Request, conversation_id: PathId, media_id: str, principal: Principal = Depends(need(Perm.INBOX_VIEW))
) -> Response:
    """A file of this conversation (photos are shown inline); only files its messages refer to."""
    otk = otklik_of(request)
    if len(media_id) != 64 or any(c not in "0123456789abcdef" for c in media_id):
        return JSONResponse({"detail": "no such file"}, status_code=404)
    async with otk.db.read() as session:
        allowed = await inbox.media_belongs(session, conversation_id, media_id)
    if not allowed:
        return JSONResponse({"detail": "no such file"}, status_code=404)
    try:
        data = await otk.ctx.media.read(media_id)
    except KeyError:
        return JSONResponse({"detail": "no such file"}, status_code=404)
    media_type = next((t for magic, t in _IMAGE_TYPES if data.startswith(magic)), None)
    if media_type is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        media_type = "image/webp"
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    if media_type is None:  # never rendered by the browser: downloaded as a file
        media_type = "application/octet-stream"
        headers["Content-Disposition"] = "attachment"
    headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return Response(data, media_type=media_type, headers=headers)


def _t(request: Request, principal: Principal) -> Any:
    from otklik.platform.webkit.i18n import translator

    return translator(principal.language)


def _fragment(request: Request, principal: Principal, template: str, **context: Any) -> str:
    tpl = templates.env.get_template(template)
    return tpl.render(t=_t(request, principal), user=principal, Perm=Perm, tz=zone_of(request), **context)
