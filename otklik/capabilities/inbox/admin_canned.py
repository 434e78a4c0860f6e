"""Canned responses: ready answers operators insert into the reply box (managed with `Perm.SETTINGS`).

Their texts are templates (`{{ contact.first_name }}`, `{{ operator.name }}`, flow variables such as
`{{ order_number }}`), filled for the open conversation when the inbox page is rendered.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from otklik.capabilities.inbox import service as inbox_ops
from otklik.core.errors import OtklikError
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

router = APIRouter()


async def _page(request: Request, status_code: int = 200, **context: object) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        items = await inbox_ops.canned_list(session)
    return render(request, "admin/inbox_canned.html", status_code=status_code, items=items, **context)


@router.get("/inbox/canned", response_class=HTMLResponse, include_in_schema=False)
async def canned_page(request: Request, _p: Principal = Depends(need(Perm.SETTINGS))) -> HTMLResponse:
    return await _page(request)


@router.post("/inbox/canned", response_class=HTMLResponse, include_in_schema=False)
async def canned_create(
    request: Request,
    title: str = Form("", max_length=10_000),
    text: str = Form("", max_length=100_000),
    language: str = Form("", max_length=8),
    principal: Principal = Depends(need(Perm.SETTINGS)),
) -> Response:
    try:
        await inbox_ops.save_canned(otklik_of(request).ctx, principal, None, title, text, language)
    except OtklikError as exc:
        form = {"title": title[:200], "text": text[:10_000], "language": language}
        return await _page(request, exc.status_code, error=exc.user_message, form=form)
    return RedirectResponse("/admin/inbox/canned", status_code=303)


@router.post("/inbox/canned/{canned_id}", response_class=HTMLResponse, include_in_schema=False)
async def canned_update(
    request: Request,
    canned_id: PathId,
    title: str = Form("", max_length=10_000),
    text: str = Form("", max_length=100_000),
    language: str = Form("", max_length=8),
    principal: Principal = Depends(need(Perm.SETTINGS)),
) -> Response:
    try:
        await inbox_ops.save_canned(otklik_of(request).ctx, principal, canned_id, title, text, language)
    except OtklikError as exc:
        return await _page(request, exc.status_code, error=exc.user_message)
    return RedirectResponse("/admin/inbox/canned", status_code=303)


@router.post("/inbox/canned/{canned_id}/delete", response_class=HTMLResponse, include_in_schema=False)
async def canned_delete(
    request: Request, canned_id: PathId, principal: Principal = Depends(need(Perm.SETTINGS))
) -> Response:
    try:
        await inbox_ops.delete_canned(otklik_of(request).ctx, principal, canned_id)
    except OtklikError as exc:
        return await _page(request, exc.status_code, error=exc.user_message)
    return RedirectResponse("/admin/inbox/canned", status_code=303)
