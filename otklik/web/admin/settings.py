"""Settings: channel accounts, languages, business hours, hand-off texts (owner and admin only).

Each change is validated (nothing is saved on bad input), audited in the same transaction, and applied
without a restart (`Otklik.reload`; other processes pick it up through the settings revision).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from string import Formatter
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from otklik.clock import utcnow
from otklik.conversations.packs import available_packs
from otklik.conversations.settings_store import (
    ADMIN_LANGUAGES,
    HANDOFF_TEXTS,
    default_text,
    pack_languages,
)
from otklik.core.errors import OtklikError
from otklik.platform import business_hours as bh
from otklik.platform import channel_admin
from otklik.platform.plugins import ChannelKind, Connected, resolve
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.i18n import catalog
from otklik.platform.webkit.params import PathId

router = APIRouter()
MAX_JSON = 512 * 1024
SETTINGS = need(Perm.SETTINGS)


def _wants_json(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("application/json") or request.headers.get(
        "accept", ""
    ).startswith("application/json")


async def _form(request: Request) -> dict[str, Any]:
    """Form fields as strings (repeated fields as lists); a JSON body as is (size-capped)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()
        if len(body) > MAX_JSON:
            raise _TooBig()
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise _BadJson() from None
        if not isinstance(data, dict):
            raise _BadJson()
        return data
    form = await request.form()
    out: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 else (values[0] if values else "")
    return out


class _TooBig(OtklikError):
    status_code = 413

    def __init__(self) -> None:
        super().__init__(f"the request is larger than {MAX_JSON // 1024} KB")


class _BadJson(OtklikError):
    status_code = 400

    def __init__(self) -> None:
        super().__init__("the body is not a JSON object")


def _errors_of(exc: OtklikError) -> list[str]:
    return [str(e) for e in exc.details] if isinstance(exc.details, list) else [exc.user_message]


def _json_error(exc: OtklikError) -> JSONResponse:
    return JSONResponse({"detail": exc.user_message, "errors": _errors_of(exc)}, status_code=exc.status_code)


NOTICES = {"saved": "settings.saved"}  # and the notices each kind's connect form declares


def _done(path: str, query: Mapping[str, str] | None = None) -> RedirectResponse:
    """Post/redirect/get: a reload of the page after a save does not send the form again."""
    return RedirectResponse(f"{path}?{urlencode(query or {'notice': 'saved'})}", status_code=303)


def _notice(request: Request) -> tuple[str, dict[str, str]] | None:
    """`?notice=<name>&<value>=…` after a redirect: a declared notice; each of its `{value}`s from the query,
    capped ('' when missing)."""
    declared = [n for kind in _connect_forms(request) if kind.form for n in kind.form.notices]
    key = {**NOTICES, **dict(declared)}.get(request.query_params.get("notice", ""))
    if key is None:
        return None
    texts = catalog().get(key, {}).values()
    names = {name for text in texts for _, name, _, _ in Formatter().parse(text) if name}
    return key, {name: request.query_params.get(name, "")[:64] for name in names}


# --- channel accounts ------------------------------------------------------------------------------


def _connect_forms(request: Request) -> list[ChannelKind]:
    """The kinds with a "connect" form (`ChannelKind.form`), in page order."""
    kinds = otklik_of(request).channel_kinds.values()
    return sorted((k for k in kinds if k.form is not None), key=lambda k: k.form.order if k.form else 0)


async def _accounts_page(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    otk = otklik_of(request)
    accounts = await channel_admin.list_accounts(otk)
    return render(
        request,
        "admin/settings.html",
        status_code=status_code,
        tab="accounts",
        accounts=accounts,
        packs=available_packs(otk.settings.packs_dirs),
        default_pack=otk.settings.default_pack,
        connect_forms=_connect_forms(request),
        **context,
    )


@router.get("/settings", response_class=HTMLResponse, include_in_schema=False)
async def accounts_page(request: Request, _p: Principal = Depends(SETTINGS)) -> HTMLResponse:
    return await _accounts_page(request, notice=_notice(request))


def _field(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


@router.post("/settings/accounts/{kind}", include_in_schema=False)
async def connect_account(request: Request, kind: str, principal: Principal = Depends(SETTINGS)) -> Response:
    """A kind's "connect" form (`ChannelKind.form`): the same use case as `otklik channels add <kind>`.
    Secrets (tokens) are never sent back, not even in the form; only the `keep` fields are."""
    otk = otklik_of(request)
    declared = otk.channel_kinds.get(kind)
    if declared is None or declared.form is None:
        raise HTTPException(status_code=404)
    spec = declared.form
    form: Mapping[str, Any] = {}
    try:
        form = await _form(request)
        connected: Connected = await resolve(spec.connect)(otk, form, principal.actor, principal.language)
    except OtklikError as exc:
        if _wants_json(request):
            return _json_error(exc)
        sent = {name: _field(form, name)[:cap] for name, cap in spec.keep}
        return await _accounts_page(request, exc.status_code, errors=_errors_of(exc), sent_kind=kind, sent_fields=sent)
    await otk.reload()
    if _wants_json(request):
        return JSONResponse(dict(connected.json), status_code=201)
    if connected.redirect is not None:
        return _done("/admin/settings", connected.redirect)
    # shown at once (a signing secret on this one response only: `render` makes every page no-store)
    return await _accounts_page(
        request, notice=connected.notice, warnings=list(connected.warnings), connected=connected
    )


@router.post("/settings/accounts/{account_id}/enabled", include_in_schema=False)
async def enable_account(request: Request, account_id: PathId, principal: Principal = Depends(SETTINGS)) -> Response:
    form = await _form(request)
    raw = str(form.get("enabled") or "")
    if raw not in ("0", "1"):
        return await _accounts_page(request, 422, errors=["enabled: expected 0 or 1"])
    otk = otklik_of(request)
    try:
        await channel_admin.set_enabled(otk, account_id, raw == "1", principal.actor)
    except OtklikError as exc:
        return await _accounts_page(request, exc.status_code, errors=[exc.user_message])
    await otk.reload()
    return _done("/admin/settings")


@router.post("/settings/accounts/{account_id}/test", include_in_schema=False)
async def test_account(request: Request, account_id: PathId, _p: Principal = Depends(SETTINGS)) -> Response:
    try:
        check = await channel_admin.check_connection(otklik_of(request), account_id)
    except OtklikError as exc:
        return await _accounts_page(request, exc.status_code, errors=[exc.user_message])
    if _wants_json(request):
        return JSONResponse({"ok": check.ok, "message": check.message})
    return await _accounts_page(request, checked={"id": account_id, "ok": check.ok, "message": check.message})


# --- languages ---------------------------------------------------------------------------------------


def _pack_rows(request: Request) -> list[dict[str, Any]]:
    otk = otklik_of(request)
    rows = []
    for pack_id, pack in sorted(otk.packs.items()):
        policy = otk.live.snapshot.languages.get(pack_id)
        provided = pack_languages(pack)
        rows.append(
            {
                "id": pack_id,
                "provided": provided,
                "default": policy.default if policy else pack.config.language,
                "enabled": policy.enabled if policy else provided,
            }
        )
    return rows


@router.get("/settings/languages", response_class=HTMLResponse, include_in_schema=False)
async def languages_page(request: Request, _p: Principal = Depends(SETTINGS)) -> HTMLResponse:
    return _languages(request, notice=_notice(request))


def _languages(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
    otk = otklik_of(request)
    return render(
        request,
        "admin/settings_languages.html",
        status_code=status_code,
        tab="languages",
        packs=_pack_rows(request),
        admin_language=otk.live.snapshot.admin_language,
        admin_languages=ADMIN_LANGUAGES,
        **context,
    )


def _as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value][:50]
    return [str(value)] if value else []


@router.post("/settings/languages", include_in_schema=False)
async def save_languages(request: Request, principal: Principal = Depends(SETTINGS)) -> Response:
    form = await _form(request)
    otk = otklik_of(request)
    pack = otk.packs.get(str(form.get("pack") or ""))
    if pack is None:
        return _languages(request, 404, errors=["no such pack in use"])
    try:
        policy = await otk.live.store.save_languages(
            pack, str(form.get("default") or ""), _as_list(form.get("enabled")), principal.actor
        )
    except OtklikError as exc:
        if _wants_json(request):
            return _json_error(exc)
        return _languages(request, exc.status_code, errors=[exc.user_message])
    await otk.reload()
    if _wants_json(request):
        return JSONResponse({"default": policy.default, "enabled": list(policy.enabled)})
    return _done("/admin/settings/languages")


@router.post("/settings/admin-language", include_in_schema=False)
async def save_admin_language(request: Request, principal: Principal = Depends(SETTINGS)) -> Response:
    form = await _form(request)
    otk = otklik_of(request)
    try:
        await otk.live.store.save_admin_language(str(form.get("language") or ""), principal.actor)
    except OtklikError as exc:
        return _languages(request, exc.status_code, errors=[exc.user_message])
    await otk.reload()
    return _done("/admin/settings/languages")


# --- business hours ----------------------------------------------------------------------------------


def _hours(
    request: Request, status_code: int = 200, form: Mapping[str, Any] | None = None, **context: Any
) -> HTMLResponse:
    otk = otklik_of(request)
    schedule = otk.live.snapshot.hours
    now = utcnow()
    values = {
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "holidays": "\n".join(d.isoformat() for d in sorted(schedule.holidays)),
        **{day: schedule.day_text(n) for n, day in enumerate(bh.WEEKDAYS)},
    }
    if form is not None:  # show what was sent back, so a typo loses nothing
        values.update({k: v for k, v in form.items() if k in values and isinstance(v, str)})
        values["enabled"] = bh.flag(form.get("enabled"))
    previews = []
    if schedule.enabled:
        for pack_id, engine in sorted(otk.ctx.engines.items()):
            language = engine.pack.language
            template = (otk.live.snapshot.texts.get(pack_id) or {}).get("after_hours", {}).get(language)
            previews.append((pack_id, bh.after_hours_text(schedule, now, language, template)))
    opening = bh.next_opening(schedule, now) if schedule.enabled else None
    return render(
        request,
        "admin/settings_hours.html",
        status_code=status_code,
        tab="hours",
        values=values,
        weekdays=bh.WEEKDAYS,
        schedule=schedule,
        is_open=bh.is_open(schedule, now),
        opening=opening,
        previews=previews,
        **context,
    )


@router.get("/settings/hours", response_class=HTMLResponse, include_in_schema=False)
async def hours_page(request: Request, _p: Principal = Depends(SETTINGS)) -> HTMLResponse:
    return _hours(request, notice=_notice(request))


@router.post("/settings/hours", include_in_schema=False)
async def save_hours(request: Request, principal: Principal = Depends(SETTINGS)) -> Response:
    otk = otklik_of(request)
    try:
        form = await _form(request)
    except OtklikError as exc:
        return _json_error(exc) if _wants_json(request) else _hours(request, exc.status_code, errors=_errors_of(exc))
    raw = dict(form)
    if not isinstance(raw.get("week"), Mapping):  # a form: one field per weekday
        raw["week"] = {day: raw.get(day, "") for day in bh.WEEKDAYS}
    try:
        schedule = await otk.live.store.save_hours(raw, principal.actor)
    except OtklikError as exc:
        errors = _errors_of(exc)
        if _wants_json(request):
            return _json_error(exc)
        return _hours(request, exc.status_code, form=form, errors=errors)
    await otk.reload()
    if _wants_json(request):
        return JSONResponse(schedule.to_dict())
    return _done("/admin/settings/hours")


# --- hand-off texts ----------------------------------------------------------------------------------


def _texts(
    request: Request, status_code: int = 200, sent: Mapping[str, Any] | None = None, **context: Any
) -> HTMLResponse:
    otk = otklik_of(request)
    packs = []
    for pack_id, pack in sorted(otk.packs.items()):
        policy = otk.live.snapshot.languages.get(pack_id)
        languages = policy.enabled if policy else pack_languages(pack)
        overrides = otk.live.snapshot.texts.get(pack_id) or {}
        fields = []
        for key in HANDOFF_TEXTS:
            for lang in languages:
                name = f"text:{key}:{lang}"
                value = overrides.get(key, {}).get(lang, "")
                if sent is not None and sent.get("pack") == pack_id:
                    value = str(sent.get(name) or "")
                fields.append(
                    {
                        "name": name,
                        "key": key,
                        "lang": lang,
                        "value": value,
                        "default": default_text(pack.config, key, lang),
                    }
                )
        packs.append({"id": pack_id, "fields": fields})
    return render(request, "admin/settings_texts.html", status_code=status_code, tab="texts", packs=packs, **context)


@router.get("/settings/texts", response_class=HTMLResponse, include_in_schema=False)
async def texts_page(request: Request, _p: Principal = Depends(SETTINGS)) -> HTMLResponse:
    return _texts(request, notice=_notice(request))


@router.post("/settings/texts", include_in_schema=False)
async def save_texts(request: Request, principal: Principal = Depends(SETTINGS)) -> Response:
    otk = otklik_of(request)
    try:
        form = await _form(request)
    except OtklikError as exc:
        return _json_error(exc) if _wants_json(request) else _texts(request, exc.status_code, errors=_errors_of(exc))
    pack = otk.packs.get(str(form.get("pack") or ""))
    if pack is None:
        return _texts(request, 404, errors=["no such pack in use"])
    texts: dict[str, dict[str, str]] = {}
    if isinstance(form.get("texts"), Mapping):  # JSON: {"texts": {"handoff": {"ru": "…"}}}
        texts = {str(k): dict(v) for k, v in form["texts"].items() if isinstance(v, Mapping)}
    for name, value in form.items():
        if name.startswith("text:") and name.count(":") == 2 and isinstance(value, str):
            _prefix, key, lang = name.split(":")
            texts.setdefault(key, {})[lang] = value
    policy = otk.live.snapshot.languages.get(pack.config.id)
    languages = policy.enabled if policy else pack_languages(pack)
    try:
        await otk.live.store.save_texts(pack, texts, languages, principal.actor)
    except OtklikError as exc:
        errors = _errors_of(exc)
        if _wants_json(request):
            return _json_error(exc)
        return _texts(request, exc.status_code, sent=form, errors=errors)
    await otk.reload()
    if _wants_json(request):
        return JSONResponse({"ok": True})
    return _done("/admin/settings/texts")
