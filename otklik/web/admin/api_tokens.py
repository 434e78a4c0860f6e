"""Settings → API tokens: create a REST API token with its scopes (shown once), list tokens with their
prefix, scopes and last use, revoke. Owner and admin (`Perm.SETTINGS`); CSRF by the admin guard; audited by
`platform/apitokens.py` (`api_token.create`, `api_token.revoke`). The same use cases as
`otklik api-tokens create|revoke`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from otklik.core.errors import OtklikError
from otklik.platform import apitokens
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.params import PathId

router = APIRouter()
SETTINGS = need(Perm.SETTINGS)
PAGE = "/admin/settings/api-tokens"


async def _page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render(
        request,
        "admin/settings_api_tokens.html",
        status_code=status_code,
        tab="api_tokens",
        tokens=await apitokens.list_tokens(otklik_of(request).db),
        known_scopes=apitokens.scopes_of_routes(request.app.routes),
        **context,
    )


@router.get("/settings/api-tokens", response_class=HTMLResponse, include_in_schema=False)
async def tokens_page(
    request: Request, done: str = Query("", max_length=16), _p: Principal = Depends(SETTINGS)
) -> HTMLResponse:
    notice = {"revoked": "api_tokens.revoked"}.get(done)
    return await _page(request, notice=(notice, {}) if notice else None)


@router.post("/settings/api-tokens", response_class=HTMLResponse, include_in_schema=False)
async def create_token(request: Request, principal: Principal = Depends(SETTINGS)) -> HTMLResponse:
    form = await request.form()
    name = str(form.get("name") or "")[:1000]
    chosen = [str(s)[:100] for s in form.getlist("scope")][:100]
    typed = str(form.get("scopes") or "")[:2000]
    scopes = [*chosen, *typed.split(",")]
    try:
        token_id, token = await apitokens.create_token(otklik_of(request).db, name, scopes, actor=principal.actor)
    except OtklikError as exc:
        sent = {"name": name[:80], "scopes": typed[:400], "chosen": chosen}
        return await _page(request, exc.status_code, errors=[exc.user_message], sent=sent)
    return await _page(request, 201, created={"id": token_id, "name": name.strip(), "token": token})


@router.post("/settings/api-tokens/{token_id}/revoke", include_in_schema=False)
async def revoke_token(request: Request, token_id: PathId, principal: Principal = Depends(SETTINGS)) -> Response:
    try:
        await apitokens.revoke_token_id(otklik_of(request).db, token_id, actor=principal.actor)
    except OtklikError as exc:
        return await _page(request, exc.status_code, errors=[exc.user_message])
    return RedirectResponse(f"{PAGE}?done=revoked", status_code=303)
