"""`/admin/financing` (permission `financing.rates`): the rates tables — list, create or import (a text or a
file, YAML or JSON), edit (a new version), history and rollback, the default table and the table of each
pack (`/admin/financing/packs`), export as a file, and a preview of the suggested plans for an amount. A
refused text is shown with every error and saves nothing."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from otklik.capabilities.financing import RATES, service
from otklik.capabilities.financing.rules import MAX_TABLE_BYTES, Plan, RatesInvalid, Refused, suggested_plans
from otklik.conversations.packs import available_packs
from otklik.core.errors import NotFound, OtklikError
from otklik.platform.users import Principal
from otklik.platform.webkit.deps import need, otklik_of, render

router = APIRouter()
EXAMPLE = """currency: ARS
iva_on_interest: 21
max_installments: 18
min_installment: 1000
suggested: [3, 6, 9, 12]
plans:
  - {from: 1, to: 3, tna: 0}
  - {from: 4, to: 6, tna: 48}
  - {from: 7, to: 12, tna: 62.5}
  - {from: 18, to: 18, coefficient: 1.95}
"""


class _TooLarge(OtklikError):
    status_code = 413


async def _submitted(request: Request) -> tuple[dict[str, str], str | bytes]:
    """The form's text fields and the table's text: an uploaded file wins over the text area."""
    form = await request.form(max_fields=10, max_files=1)
    fields = {k: v[: MAX_TABLE_BYTES + 1] for k, v in form.items() if isinstance(v, str)}
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_TABLE_BYTES + 1)
        if len(data) > MAX_TABLE_BYTES:
            raise _TooLarge(f"the file is larger than {MAX_TABLE_BYTES} bytes")
        return fields, data
    source = fields.get("source", "")
    if len(source.encode("utf-8", "replace")) > MAX_TABLE_BYTES:
        raise _TooLarge(f"the text is larger than {MAX_TABLE_BYTES} bytes")
    return fields, source


def _errors(exc: OtklikError) -> list[str]:
    return list(exc.errors) if isinstance(exc, RatesInvalid) else [exc.user_message]


def _packs(request: Request) -> list[str]:
    return available_packs(otklik_of(request).settings.packs_dirs)


async def _list_page(request: Request, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    async with otklik_of(request).db.read() as session:
        tables = await service.list_tables(session)
        chosen = await service.pack_default_names(session)
    extra.setdefault("form", {"name": "", "source": EXAMPLE})
    default = next((t["name"] for t in tables if t["is_default"]), "")
    packs = [{"id": p, "table": chosen.get(p, "")} for p in _packs(request)]
    return render(
        request, "admin/financing_tables.html", status_code=status_code, tables=tables, packs=packs,
        install_default=default, **extra,
    )  # fmt: skip


async def _table_page(
    request: Request, name: str, *, status_code: int = 200, errors: list[str] | None = None,
    source: str | None = None, amount: str = "", **extra: Any,
) -> HTMLResponse:  # fmt: skip
    async with otklik_of(request).db.read() as session:
        stored = await service.load(service.session_fetch(session), service.clean_name(name))
        if stored is None:
            raise NotFound(f"no rates table named {name!r}")
        versions = await service.history(session, name)
    preview: list[dict[str, Any]] = []
    preview_error = ""
    if amount:
        try:
            for n, result in zip(stored.table.suggested, suggested_plans(stored.table, amount), strict=True):
                preview.append({"n": n, "plan": result.to_json() if isinstance(result, Plan) else None,
                                "refused": result.user_message if isinstance(result, Refused) else ""})  # fmt: skip
        except Refused as exc:
            preview_error = exc.user_message
    return render(
        request, "admin/financing_table.html", status_code=status_code, stored=stored, versions=versions,
        errors=errors or [], source=stored.source if source is None else source, amount=amount,
        preview=preview, preview_error=preview_error, **extra,
    )  # fmt: skip


def _not_found(request: Request, exc: NotFound) -> HTMLResponse:
    return render(request, "admin/error.html", status_code=404, message_key="financing.not_found", detail=str(exc))


@router.get("/financing", response_class=HTMLResponse, include_in_schema=False)
async def tables_page(request: Request, _p: Principal = Depends(need(RATES))) -> HTMLResponse:
    return await _list_page(request, packs_saved=request.query_params.get("packs_saved") == "1")


@router.post("/financing", response_class=HTMLResponse, include_in_schema=False)
async def create_table(request: Request, principal: Principal = Depends(need(RATES))) -> Response:
    fields: dict[str, str] = {}
    try:
        fields, source = await _submitted(request)
        name = service.clean_name(fields.get("name", ""))
        async with otklik_of(request).db.write() as session:
            if await service.load(service.session_fetch(session), name) is not None:
                raise service.Conflict(f"a table named {name!r} exists: open it to save a new version")
            await service.save(session, name, source, actor=principal.actor, note="import")
    except OtklikError as exc:
        shown = {"name": fields.get("name", ""), "source": fields.get("source", "")}
        return await _list_page(request, status_code=exc.status_code, errors=_errors(exc), form=shown)
    return RedirectResponse(f"/admin/financing/{name}?saved=1", status_code=303)


@router.post("/financing/packs", response_class=HTMLResponse, include_in_schema=False)
async def pack_default(request: Request, principal: Principal = Depends(need(RATES))) -> Response:
    """The table a pack's conversations use; an empty `table` gives the pack back to the install default."""
    form = await request.form(max_fields=10, max_files=0)
    pack, table = str(form.get("pack") or "")[:200], str(form.get("table") or "")[:200]
    try:
        async with otklik_of(request).db.write() as session:
            await service.set_pack_default(session, pack, table or None, actor=principal.actor, packs=_packs(request))
    except OtklikError as exc:
        return await _list_page(request, status_code=exc.status_code, pack_errors=[exc.user_message])
    return RedirectResponse("/admin/financing?packs_saved=1", status_code=303)


@router.get("/financing/{name}", response_class=HTMLResponse, include_in_schema=False)
async def table_page(request: Request, name: str, amount: str = "", _p: Principal = Depends(need(RATES))) -> Response:
    try:
        return await _table_page(request, name, amount=amount[:20], saved=request.query_params.get("saved") == "1")
    except (NotFound, service.InvalidInput) as exc:
        return _not_found(request, NotFound(exc.user_message))


@router.post("/financing/{name}", response_class=HTMLResponse, include_in_schema=False)
async def save_table(request: Request, name: str, principal: Principal = Depends(need(RATES))) -> Response:
    source: str | bytes = ""
    try:
        async with otklik_of(request).db.read() as session:
            if await service.load(service.session_fetch(session), service.clean_name(name)) is None:
                raise NotFound(f"no rates table named {name!r}")
        _fields, source = await _submitted(request)
        async with otklik_of(request).db.write() as session:
            await service.save(session, name, source, actor=principal.actor, note="edit")
    except NotFound as exc:
        return _not_found(request, exc)
    except OtklikError as exc:
        shown = source if isinstance(source, str) else source.decode("utf-8", "replace")
        return await _table_page(request, name, status_code=exc.status_code, errors=_errors(exc), source=shown)
    return RedirectResponse(f"/admin/financing/{name}?saved=1", status_code=303)


@router.post("/financing/{name}/rollback", response_class=HTMLResponse, include_in_schema=False)
async def rollback_table(request: Request, name: str, principal: Principal = Depends(need(RATES))) -> Response:
    form = await request.form(max_fields=10, max_files=0)
    raw = str(form.get("version", ""))
    try:
        if not raw.isdigit() or len(raw) > 9:
            raise NotFound("choose a version from the history")
        async with otklik_of(request).db.write() as session:
            await service.rollback(session, name, int(raw), actor=principal.actor)
    except NotFound as exc:
        return _not_found(request, exc)
    except OtklikError as exc:
        return await _table_page(request, name, status_code=exc.status_code, errors=_errors(exc))
    return RedirectResponse(f"/admin/financing/{name}?saved=1", status_code=303)


@router.post("/financing/{name}/default", response_class=HTMLResponse, include_in_schema=False)
async def make_default(request: Request, name: str, principal: Principal = Depends(need(RATES))) -> Response:
    try:
        async with otklik_of(request).db.write() as session:
            await service.set_default(session, name, actor=principal.actor)
    except (NotFound, service.InvalidInput) as exc:
        return _not_found(request, NotFound(exc.user_message))
    return RedirectResponse(f"/admin/financing/{name}?saved=1", status_code=303)


@router.get("/financing/{name}/export.{fmt}", include_in_schema=False)
async def export_table(request: Request, name: str, fmt: str, _p: Principal = Depends(need(RATES))) -> Response:
    if fmt not in ("yaml", "json"):
        return Response("use export.yaml or export.json", status_code=404)
    kind: Literal["yaml", "json"] = "yaml" if fmt == "yaml" else "json"
    try:
        async with otklik_of(request).db.read() as session:
            text = await service.export(session, name, kind)
    except (NotFound, service.InvalidInput):
        return Response("no such table", status_code=404)
    media = "application/yaml" if kind == "yaml" else "application/json"
    disposition = f'attachment; filename="rates-{service.clean_name(name)}.{fmt}"'
    return Response(text, media_type=f"{media}; charset=utf-8", headers={"Content-Disposition": disposition})
