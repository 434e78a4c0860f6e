"""The admin's first page: what needs attention now, and the user's own settings (language)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from otklik.adapters.db.models import Conversation
from otklik.core.errors import InvalidInput
from otklik.runtime.users import Principal, update_user
from otklik.web.admin.deps import guard, otklik_of, render

router = APIRouter()


@router.get("", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, principal: Principal = Depends(guard)) -> HTMLResponse:
    otk = otklik_of(request)
    async with otk.db.read() as session:
        waiting = int(
            await session.scalar(select(func.count(Conversation.id)).where(Conversation.status == "waiting_operator"))
            or 0
        )
        priority = int(
            await session.scalar(
                select(func.count(Conversation.id)).where(
                    Conversation.status == "waiting_operator", Conversation.priority.is_(True)
                )
            )
            or 0
        )
    return render(request, "admin/home.html", waiting=waiting, priority=priority, base_url=str(request.base_url))


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
