"""The admin's first page: what needs attention now, and the user's own settings (language)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from otklik.adapters.db.models import Conversation
from otklik.core.conversation import Status
from otklik.core.errors import InvalidInput, NotFound
from otklik.demo_data import has_demo_data, remove_demo_data
from otklik.platform.users import Principal, Role, update_user
from otklik.platform.webkit.deps import guard, otklik_of, render

router = APIRouter()


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, principal: Principal = Depends(guard)) -> HTMLResponse:
    otk = otklik_of(request)
    async with otk.db.read() as session:
        waiting = int(
            await session.scalar(
                select(func.count(Conversation.id)).where(Conversation.status == Status.WAITING_OPERATOR)
            )
            or 0
        )
        priority = int(
            await session.scalar(
                select(func.count(Conversation.id)).where(
                    Conversation.status == Status.WAITING_OPERATOR, Conversation.priority.is_(True)
                )
            )
            or 0
        )
    demo = principal.role == Role.OWNER and await has_demo_data(otk.db)
    return render(
        request,
        "admin/home.html",
        waiting=waiting,
        priority=priority,
        base_url=str(request.base_url),
        demo=demo,
        demo_removed=request.query_params.get("demo") == "removed",
    )


@router.post("/demo/remove", include_in_schema=False)
async def remove_demo(request: Request, principal: Principal = Depends(guard)) -> Response:
    """ "Remove demo data" (owner only, confirmed): deletes exactly the recorded demo rows; audited."""
    if principal.role != Role.OWNER:
        return render(request, "admin/error.html", status_code=403, message_key="home.demo_owner_only")
    form = await request.form(max_fields=10, max_files=0)
    if form.get("confirm") != "yes":
        return render(request, "admin/error.html", status_code=422, message_key="home.demo_confirm_needed")
    otk = otklik_of(request)
    try:
        await remove_demo_data(otk.db, principal.actor, otk.capabilities)
    except NotFound:
        return RedirectResponse("/admin", status_code=303)  # removed already (a second click, another tab)
    await otk.reload()
    return RedirectResponse("/admin?demo=removed", status_code=303)


@router.post("/profile/language", include_in_schema=False)
async def set_language(
    request: Request, language: str = Form(..., max_length=8), principal: Principal = Depends(guard)
) -> Response:
    try:
        await update_user(otklik_of(request).db, principal.user_id, actor=principal, language=language)
    except InvalidInput:
        return render(request, "admin/error.html", status_code=422, message_key="error.bad_language")
    back = request.headers.get("referer", "")
    path = "/" + back.split("://", 1)[-1].split("/", 1)[-1] if "://" in back else "/admin"
    return RedirectResponse(path if path.startswith("/admin") else "/admin", status_code=303)
