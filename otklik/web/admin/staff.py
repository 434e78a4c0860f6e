"""Staff (executives) who are told about orders, bookings, leads: list, add, change, remove, and the recent
notifications with "resend" (owner and admin: `Perm.STAFF`). See docs/staff.md."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from otklik.core.errors import OtklikError
from otklik.platform.staff.members import add_member, list_members, remove_member, update_member
from otklik.platform.staff.outbox import recent, resend
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

router = APIRouter()
STAFF = need(Perm.STAFF)


async def _page(request: Request, status_code: int = 200, **context: object) -> HTMLResponse:
    otk = otklik_of(request)
    return render(
        request,
        "admin/staff.html",
        status_code=status_code,
        members=await list_members(otk.db),
        notifications=await recent(otk.db),
        packs=otk.available_packs(),
        **context,
    )


@router.get("/staff", response_class=HTMLResponse, include_in_schema=False)
async def staff_page(request: Request, _p: Principal = Depends(STAFF)) -> HTMLResponse:
    return await _page(request)


@router.post("/staff", response_class=HTMLResponse, include_in_schema=False)
async def add_staff(
    request: Request,
    name: str = Form(..., max_length=200),
    email: str = Form("", max_length=300),
    telegram_chat_id: str = Form("", max_length=60),
    packs: str = Form("", max_length=500),
    rules: str = Form("", max_length=500),
    principal: Principal = Depends(STAFF),
) -> HTMLResponse:
    otk = otklik_of(request)
    form = {"name": name, "email": email, "telegram_chat_id": telegram_chat_id, "packs": packs, "rules": rules}
    try:
        member = await add_member(
            otk.db, name, email=email, telegram_chat_id=telegram_chat_id, packs=packs, rules=rules,
            known_packs=otk.available_packs(), actor=principal.actor,
        )  # fmt: skip
    except OtklikError as exc:
        return await _page(request, exc.status_code, error=exc.user_message, form=form)
    return await _page(request, 201, notice=member.name)


@router.post("/staff/{member_id}", response_class=HTMLResponse, include_in_schema=False)
async def change_staff(
    request: Request,
    member_id: PathId,
    active: str = Form("", max_length=8),
    principal: Principal = Depends(STAFF),
) -> HTMLResponse:
    try:
        await update_member(
            otklik_of(request).db, member_id, active=None if not active else active == "1", actor=principal.actor
        )
    except OtklikError as exc:
        return await _page(request, exc.status_code, error=exc.user_message)
    return await _page(request)


@router.post("/staff/{member_id}/delete", response_class=HTMLResponse, include_in_schema=False)
async def delete_staff(request: Request, member_id: PathId, principal: Principal = Depends(STAFF)) -> HTMLResponse:
    try:
        await remove_member(otklik_of(request).db, member_id, actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, error=exc.user_message)
    return await _page(request)


@router.post("/staff/notifications/{notification_id}/resend", response_class=HTMLResponse, include_in_schema=False)
async def resend_notification(
    request: Request, notification_id: PathId, principal: Principal = Depends(STAFF)
) -> HTMLResponse:
    otk = otklik_of(request)
    try:
        await resend(otk.db, notification_id, actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, error=exc.user_message)
    if otk.staff is not None:
        otk.staff.wake()
    return await _page(request)
