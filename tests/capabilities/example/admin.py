"""`/admin/example/notes`: the notes, newest first (mounted behind the login guard by the platform)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render

router = APIRouter()


@router.get("/example/notes", response_class=HTMLResponse, include_in_schema=False)
async def notes_page(request: Request, _p: Principal = Depends(need(Perm.SETTINGS))) -> HTMLResponse:
    from tests.capabilities.example.models import notes

    async with otklik_of(request).db.read() as session:
        rows = (await session.execute(select(notes).order_by(notes.c.id.desc()).limit(100))).all()
    return render(request, "admin/example_notes.html", notes=rows)
