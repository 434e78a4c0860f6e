"""`/admin/contacts/import`: upload a CSV of contacts with phones → a preview (the dry-run report: read, to
create, to update, skipped rows with the reason; nothing written), then "Import" applies exactly the previewed
file, named by its sha256 in the media store (the sales catalog import's approach). Owner and admin
(`Perm.SETTINGS`); CSRF by the admin guard; audited by `contact_import` (`contacts.import`)."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from otklik.conversations import contact_import
from otklik.conversations.packs import load_pack
from otklik.core.errors import OtklikError
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render

router = APIRouter()
ADMIN = need(Perm.SETTINGS)
SHA256 = re.compile(r"[0-9a-f]{64}")


def _limit(request: Request) -> int:
    return min(otklik_of(request).ctx.media.max_bytes, contact_import.MAX_BYTES)


def _default_region(request: Request) -> str:
    settings = otklik_of(request).settings
    try:
        return load_pack(settings.default_pack, settings.packs_dirs).config.region
    except OtklikError:
        return "RU"


def _options(form: Any, request: Request) -> dict[str, str]:
    return {
        "region": str(form.get("region") or _default_region(request)).strip()[:8],
        "tag": str(form.get("tag") or "").strip()[:64],
    }


def _page(request: Request, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("options", {"region": _default_region(request), "tag": ""})
    return render(
        request, "admin/contacts_import.html", status_code=status_code, limit_mb=_limit(request) / 2**20,
        max_rows=contact_import.MAX_ROWS, **context,
    )  # fmt: skip


async def _run(
    request: Request, data: bytes, options: dict[str, str], *, dry_run: bool, actor: str
) -> contact_import.ImportReport | str:
    try:
        return await contact_import.import_contacts(
            otklik_of(request).db, io.BytesIO(data), region=options["region"],
            tags=[options["tag"]] if options["tag"] else [], dry_run=dry_run, actor=actor,
        )  # fmt: skip
    except OtklikError as exc:
        return exc.user_message


@router.get("/contacts/import", response_class=HTMLResponse, include_in_schema=False)
async def import_page(request: Request, _p: Principal = Depends(ADMIN)) -> HTMLResponse:
    return _page(request)


@router.post("/contacts/import", response_class=HTMLResponse, include_in_schema=False)
async def import_preview(request: Request, principal: Principal = Depends(ADMIN)) -> HTMLResponse:
    """Upload → the dry-run report; the file is kept in the media store under its sha256."""
    form = await request.form(max_fields=10, max_files=1)
    options = _options(form, request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _page(request, status_code=422, error="choose a CSV file", options=options)
    limit = _limit(request)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        return _page(request, status_code=413, options=options,
                     error=f"the file is larger than {limit / 2**20:.0f} MB (larger files: otklik contacts import)")  # fmt: skip
    report = await _run(request, data, options, dry_run=True, actor=principal.actor)
    if isinstance(report, str):
        return _page(request, status_code=422, error=report, options=options)
    filename = "".join(ch for ch in upload.filename if ch.isprintable())[-120:]
    stored = await otklik_of(request).ctx.media.save(data, "text/csv", filename)
    return _page(request, preview=report, sha=stored.media_id, filename=filename, size=len(data), options=options)


@router.post("/contacts/import/confirm", response_class=HTMLResponse, include_in_schema=False)
async def import_confirm(request: Request, principal: Principal = Depends(ADMIN)) -> HTMLResponse:
    """Import exactly the previewed file (by its sha256) with the preview's region and tag."""
    form = await request.form(max_fields=10, max_files=0)
    options = _options(form, request)
    sha = str(form.get("sha256", ""))
    filename = str(form.get("filename", ""))[:120]
    if not SHA256.fullmatch(sha):
        return _page(request, status_code=422, error="the confirmation names no previewed file: upload it again")
    try:
        data = await otklik_of(request).ctx.media.read(sha)
    except KeyError:
        return _page(request, status_code=410, error="the previewed file is gone: upload it again")
    if hashlib.sha256(data).hexdigest() != sha:
        return _page(request, status_code=409, error="the stored file does not match the preview: upload it again")
    report = await _run(request, data, options, dry_run=False, actor=principal.actor)
    if isinstance(report, str):
        return _page(request, status_code=422, error=report, options=options)
    return _page(request, done=report, filename=filename, sha=sha, options=options)
