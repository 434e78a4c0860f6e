"""Users and roles (owner and admin). A generated password is shown once, on the page that created it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from otklik.adapters.db.models import User
from otklik.core.errors import OtklikError
from otklik.platform.users import LANGUAGES, Perm, Principal, Role, create_user, set_password, update_user
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

router = APIRouter()


async def _page(request: Request, status_code: int = 200, **context: object) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        users = (await session.execute(select(User).order_by(User.login).limit(500))).scalars().all()
    return render(
        request,
        "admin/users.html",
        status_code=status_code,
        users=users,
        roles=list(Role),
        languages=LANGUAGES,
        **context,
    )


@router.get("/users", response_class=HTMLResponse, include_in_schema=False)
async def users_page(request: Request, _p: Principal = Depends(need(Perm.USERS))) -> HTMLResponse:
    return await _page(request)


@router.post("/users", response_class=HTMLResponse, include_in_schema=False)
async def add_user(
    request: Request,
    login: str = Form(..., max_length=200),
    role: str = Form(..., max_length=16),
    name: str = Form("", max_length=200),
    language: str = Form("ru", max_length=8),
    password: str = Form("", max_length=1024),
    principal: Principal = Depends(need(Perm.USERS)),
) -> HTMLResponse:
    if role.strip().lower() == Role.OWNER and principal.role != Role.OWNER:
        return await _page(request, 403, error="only an owner can create an owner")
    try:
        _uid, secret = await create_user(
            otklik_of(request).db,
            login,
            role,
            password=password or None,
            name=name,
            language=language,
            actor=principal.actor,
        )
    except OtklikError as exc:
        return await _page(request, exc.status_code, error=exc.user_message, form={"login": login, "name": name})
    return await _page(request, 201, created={"login": login.strip().lower(), "password": None if password else secret})


@router.post("/users/{user_id}", response_class=HTMLResponse, include_in_schema=False)
async def change_user(
    request: Request,
    user_id: PathId,
    role: str = Form("", max_length=16),
    active: str = Form("", max_length=8),
    principal: Principal = Depends(need(Perm.USERS)),
) -> HTMLResponse:
    try:
        await update_user(
            otklik_of(request).db,
            user_id,
            actor=principal,
            role=role or None,
            active=None if not active else active == "1",
        )
    except OtklikError as exc:
        return await _page(request, exc.status_code, error=exc.user_message)
    return await _page(request)


@router.post("/users/{user_id}/password", response_class=HTMLResponse, include_in_schema=False)
async def reset_user_password(
    request: Request, user_id: PathId, principal: Principal = Depends(need(Perm.USERS))
) -> HTMLResponse:
    db = otklik_of(request).db
    async with db.read() as session:
        user = await session.get(User, user_id)
    if user is None:
        return await _page(request, 404, error="no such user")
    if user.role == Role.OWNER and principal.role != Role.OWNER:
        return await _page(request, 403, error="only an owner can reset an owner's password")
    secret = await set_password(db, user.login, actor=principal.actor)
    return await _page(request, created={"login": user.login, "password": secret})
