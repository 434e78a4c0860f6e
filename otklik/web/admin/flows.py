"""The flow editor: list, YAML editor with inline errors, Mermaid diagram, history with diff and rollback,
drafts with a test console, publishing without a restart.

Viewing needs `Perm.FLOWS_VIEW` (analysts too); saving, publishing and rolling back need `Perm.FLOWS_EDIT`.
Every change goes through `FlowStore`, which validates before saving and audits in the same transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, TypeVar

import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from otklik.conversations.flowstore import FlowVersionSource, parse_source
from otklik.core import safe_yaml
from otklik.core.errors import FlowInvalid, FlowIssue, InvalidInput, NotFound, TooLarge
from otklik.core.flows import canvas as builder
from otklik.core.flows import gallery
from otklik.core.flows.diagram import mermaid
from otklik.core.flows.model import Flow
from otklik.core.flows.textpatch import PatchFailed, patch
from otklik.platform.users import Perm, Principal
from otklik.platform.webkit.deps import need, otklik_of, render
from otklik.platform.webkit.i18n import translator
from otklik.platform.webkit.params import BodyVersion, QueryVersion
from otklik.platform.webkit.paths import TEMPLATES
from otklik.web.admin import flows_console as console

router = APIRouter()

MAX_BODY = 4 * 1024 * 1024  # larger sources still get a listed error from the flow's own size limit
MAX_CONSOLE_BODY = 96 * 1024
HISTORY = 200
_M = TypeVar("_M", bound=BaseModel)
_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_JS_TEXTS = (
    "flows.valid",
    "flows.request_failed",
    "flows.unsaved",
    "flows.confirm_publish",
    "flows.confirm_rollback",
    "flows.diagram_unavailable",
    "flows.console_fire_timer",
    "flows.console_action_ok",
    "flows.console_action_error",
    "flows.console_waiting_operator",
    "flows.line",
    "flows.node",
    "flows.field",
    "flows.saving",
    "flows.builder_refused",
    "flows.builder_yaml_invalid",
    "flows.builder_add",
    "flows.builder_delete",
    "flows.builder_undo",
    "flows.builder_redo",
    "flows.builder_fit",
    "flows.builder_no_selection",
    "flows.builder_text",
    "flows.builder_buttons",
    "flows.builder_button_title",
    "flows.builder_button_payload",
    "flows.builder_add_button",
    "flows.builder_remove",
    "flows.builder_expected",
    "flows.builder_save_as",
    "flows.builder_repair",
    "flows.builder_interruptible",
    "flows.builder_on_skip",
    "flows.builder_on_cancel",
    "flows.builder_next",
    "flows.builder_vars",
    "flows.builder_preview",
    "flows.builder_preview_web",
    "flows.builder_preview_telegram",
    "flows.builder_preview_whatsapp",
    "flows.builder_preview_wb",
    "flows.builder_wa_buttons",
    "flows.builder_wa_list",
    "flows.builder_wa_text",
    "flows.builder_node_id",
    "flows.builder_connect_hint",
    "flows.builder_language",
    "flows.builder_error_count",
    "flows.builder_per_language",
)
_NODE_TYPES = ("message", "question", "condition", "intent_router", "set", "action", "handoff", "goto", "wait", "end")


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    publish: bool = False
    pack: str | None = Field(None, max_length=64)


class CanvasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    document: dict[str, Any] | None = None  # the canvas's edited document: written into `source` minimally


class LayoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    positions: dict[str, Any]


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: BodyVersion


# --- pages ---------------------------------------------------------------------------------------


@router.get("/flows", response_class=HTMLResponse, include_in_schema=False)
async def flows_page(request: Request, _p: Principal = Depends(need(Perm.FLOWS_VIEW))) -> HTMLResponse:
    summaries = await otklik_of(request).flows.overview()
    return _secure(render(request, "admin/flows.html", flows=summaries))


@router.get("/flows/_new", response_class=HTMLResponse, include_in_schema=False)
async def new_flow_page(request: Request, _p: Principal = Depends(need(Perm.FLOWS_EDIT))) -> HTMLResponse:
    otk = otklik_of(request)
    packs = sorted(otk.ctx.engines) or sorted(otk.packs)
    source = "id: my.flow\nname: My flow\nstart: hello\nnodes:\n  hello:\n    type: message\n    text: Hello!\n"
    return await _editor(
        request, key=None, current=None, source=source, versions=[], packs=packs, templates=await _gallery(request)
    )


async def _gallery(request: Request) -> list[dict[str, str]]:
    """ "New flow from a template": the ready scenarios and a copy of every live flow, each under a free id."""
    flows = otklik_of(request).flows
    taken = set(await flows.keys())
    out = []
    for template in gallery.ready():
        new_id = gallery.free_id("my." + template.key.split(":", 1)[1], taken)
        out.append(
            {
                "key": template.key,
                "group": "ready",
                "name": template.name,
                "description": template.description,
                "source": gallery.copy_of(template.source, new_id, ""),
            }
        )
    for summary in await flows.overview():
        if summary.active_version is None:
            continue
        try:
            source = gallery.copy_of(
                await flows.source(summary.flow_key), gallery.free_id(summary.flow_key + "_copy", taken)
            )
        except (ValueError, PatchFailed):
            continue  # a flow whose text cannot be copied is simply not offered
        out.append(
            {
                "key": f"pack:{summary.flow_key}",
                "group": "pack",
                "name": summary.name or summary.flow_key,
                "description": f"{summary.pack} · {summary.flow_key}",
                "source": source,
            }
        )
    return out


@router.get("/flows/{key}", response_class=HTMLResponse, include_in_schema=False)
async def flow_page(
    request: Request, key: str, version: QueryVersion = None, _p: Principal = Depends(need(Perm.FLOWS_VIEW))
) -> HTMLResponse:
    flows = otklik_of(request).flows
    current = await flows.get(_checked(key), version)
    versions = await flows.versions(key, limit=HISTORY)
    return await _editor(request, key=key, current=current, source=current.source, versions=versions[::-1], packs=[])


@router.get("/flows/{key}/diff", response_class=HTMLResponse, include_in_schema=False)
async def diff_page(
    request: Request,
    key: str,
    a: QueryVersion = None,
    b: QueryVersion = None,
    _p: Principal = Depends(need(Perm.FLOWS_VIEW)),
) -> HTMLResponse:
    flows = otklik_of(request).flows
    versions = await flows.versions(_checked(key))
    if not versions:
        raise NotFound(f"no flow {key!r}")
    live = next((v.version for v in versions if v.active), versions[-1].version)
    old, new = await flows.get(key, a or live), await flows.get(key, b or versions[-1].version)
    lines = await flows.diff(key, old.info.version, new.info.version)
    return _secure(
        render(
            request,
            "admin/flows_diff.html",
            key=key,
            old=old.info,
            new=new.info,
            lines=lines,
            versions=versions[::-1][:HISTORY],
        )
    )


async def _editor(
    request: Request,
    *,
    key: str | None,
    current: FlowVersionSource | None,
    source: str,
    versions: list[Any],
    packs: list[str],
    templates: list[dict[str, str]] | None = None,
) -> HTMLResponse:
    principal: Principal = request.state.principal
    t = translator(principal.language)
    diagram, errors = None, []
    try:
        diagram = diagram_text(parse_source(source, await _known(request)))
    except FlowInvalid as exc:
        errors = issues_json(source, exc.errors)
    layout = await otklik_of(request).flows.layout(key) if key else {}
    page = {
        "key": key,
        "layout": layout,
        "node_types": list(_NODE_TYPES),
        "languages": ["ru", "en", "es"],
        "gallery": templates or [],
        "diagram": diagram,
        "errors": errors,
        "can_edit": principal.can(Perm.FLOWS_EDIT),
        "texts": {name: t(name) for name in _JS_TEXTS},
    }
    return _secure(
        render(
            request,
            "admin/flows_edit.html",
            key=key,
            current=current.info if current else None,
            source=source,
            versions=versions,
            packs=packs,
            page=page,
            live=next((v for v in versions if v.active), None),
        )
    )


# --- JSON API used by the editor ------------------------------------------------------------------


@router.post("/flows/_check", include_in_schema=False)
async def check(request: Request, _p: Principal = Depends(need(Perm.FLOWS_VIEW))) -> Response:
    """Validate without saving: the errors (with line numbers) and the diagram of a valid source."""
    body = _model(SourceIn, await _json(request, MAX_BODY))
    try:
        flow = parse_source(body.source, await _known(request))
    except FlowInvalid as exc:
        return JSONResponse({"ok": False, "errors": issues_json(body.source, exc.errors)}, status_code=422)
    return JSONResponse({"ok": True, "errors": [], "diagram": diagram_text(flow), "id": flow.id})


@router.post("/flows/_canvas", include_in_schema=False)
async def canvas_view(request: Request, _p: Principal = Depends(need(Perm.FLOWS_VIEW))) -> Response:
    """The builder's model of a source (nodes, arrows, per-node checks); with `document`, the canvas's edit
    is first written into the source, changing only what changed (comments and key order stay)."""
    body = _model(CanvasIn, await _json(request, MAX_BODY))
    source = body.source
    if body.document is not None:
        try:
            source = patch(body.source, body.document)
        except PatchFailed as exc:
            return JSONResponse({"ok": False, "failed": str(exc)}, status_code=422)
    return JSONResponse(await _canvas_of(request, source))


async def _canvas_of(request: Request, source: str) -> dict[str, Any]:
    try:
        doc = safe_yaml.load(source)
    except (safe_yaml.UnsafeYaml, yaml.YAMLError) as exc:
        message = str(exc) if isinstance(exc, safe_yaml.UnsafeYaml) else safe_yaml.syntax_message(exc)
        return {"ok": False, "source": source, "failed": message}
    if not isinstance(doc, dict):
        return {"ok": False, "source": source, "failed": "the flow must be a mapping (id, name, start, nodes)"}
    errors: list[dict[str, Any]] = []
    try:
        parse_source(source, await _known(request))
    except FlowInvalid as exc:
        errors = issues_json(source, exc.errors)
    model = builder.canvas(doc)
    return {
        "ok": True,
        "source": source,
        "model": model,
        "auto": builder.layout(model),
        "checks": builder.lint(doc),
        "errors": errors,
    }


def _refusals(source: str) -> list[dict[str, Any]]:
    """The builder's checks that refuse saving and publishing (errors, not warnings), as listed errors."""
    try:
        doc = safe_yaml.load(source)
    except (safe_yaml.UnsafeYaml, yaml.YAMLError):
        return []  # the flow's own validation reports unreadable text
    if not isinstance(doc, dict):
        return []
    flow = str(doc.get("id", "?"))[:80]
    return [
        {"flow": flow, "node": c["node"], "field": c["field"], "message": c["message"], "line": None}
        for c in builder.lint(doc)
        if c["level"] == "error"
    ]


@router.get("/flows/{key}/layout", include_in_schema=False)
async def get_layout(request: Request, key: str, _p: Principal = Depends(need(Perm.FLOWS_VIEW))) -> Response:
    return JSONResponse({"positions": await otklik_of(request).flows.layout(_checked(key))})


@router.post("/flows/{key}/layout", include_in_schema=False)
async def save_layout(request: Request, key: str, principal: Principal = Depends(need(Perm.FLOWS_EDIT))) -> Response:
    """Node positions beside the flow: no version, no YAML change."""
    body = _model(LayoutIn, await _json(request, 256 * 1024))
    kept = await otklik_of(request).flows.save_layout(_checked(key), body.positions, author=principal.actor)
    return JSONResponse({"ok": True, "kept": kept})


@router.post("/flows", include_in_schema=False)
async def create(request: Request, principal: Principal = Depends(need(Perm.FLOWS_EDIT))) -> Response:
    """A new flow in one of the loaded packs."""
    body = _model(SourceIn, await _json(request, MAX_BODY))
    otk = otklik_of(request)
    if body.pack not in otk.packs:
        raise InvalidInput("choose one of the loaded packs")
    return await _save(request, body, principal, key=None, pack=body.pack)


@router.post("/flows/{key}/save", include_in_schema=False)
async def save(request: Request, key: str, principal: Principal = Depends(need(Perm.FLOWS_EDIT))) -> Response:
    """Save a new version of `key`: a draft, or published at once with `publish: true`."""
    body = _model(SourceIn, await _json(request, MAX_BODY))
    current = await otklik_of(request).flows.get(_checked(key))
    return await _save(request, body, principal, key=key, pack=current.info.pack)


@router.post("/flows/{key}/publish", include_in_schema=False)
async def publish(request: Request, key: str, principal: Principal = Depends(need(Perm.FLOWS_EDIT))) -> Response:
    body = _model(VersionIn, await _json(request, 1024))
    otk = otklik_of(request)
    refused = _refusals((await otk.flows.get(_checked(key), body.version)).source)
    if refused:
        return JSONResponse({"ok": False, "errors": refused}, status_code=422)
    info = await otk.flows.publish(_checked(key), body.version, author=principal.actor)
    await _reload(request)
    return JSONResponse({"ok": True, "version": info.version, "url": _url(key, info.version)})


@router.post("/flows/{key}/rollback", include_in_schema=False)
async def rollback(request: Request, key: str, principal: Principal = Depends(need(Perm.FLOWS_EDIT))) -> Response:
    """Publish the source of an older version again, as a new version."""
    body = _model(VersionIn, await _json(request, 1024))
    otk = otklik_of(request)
    try:
        info = await otk.flows.rollback(_checked(key), body.version, author=principal.actor)
    except FlowInvalid as exc:
        source = (await otk.flows.get(key, body.version)).source
        return JSONResponse({"ok": False, "errors": issues_json(source, exc.errors)}, status_code=422)
    await _reload(request)
    return JSONResponse({"ok": True, "version": info.version, "url": _url(key, info.version)})


@router.post("/flows/{key}/console", include_in_schema=False)
async def console_step(request: Request, key: str, principal: Principal = Depends(need(Perm.FLOWS_VIEW))) -> Response:
    """One step of the test console with a saved version (usually the draft); nothing is stored or sent."""
    body = _model(console.ConsoleIn, await _json(request, MAX_CONSOLE_BODY))
    otk = otklik_of(request)
    version = await otk.flows.get(_checked(key), body.version)
    live = console.live_engine(otk.ctx.engines, version.info.pack)
    try:
        drafts = request.app.state.flow_drafts
        flow = console.draft_flow(drafts, version, set(live.flows), await otk.flows.revision())
    except FlowInvalid as exc:
        return JSONResponse({"ok": False, "errors": issues_json(version.source, exc.errors)}, status_code=422)
    result = await console.step(console.draft_engine(live, flow), flow, body, translator(principal.language))
    return JSONResponse({"ok": True, **result})


async def _save(request: Request, body: SourceIn, principal: Principal, *, key: str | None, pack: str) -> Response:
    otk = otklik_of(request)
    refused = _refusals(body.source) if body.publish else []
    if refused:
        try:  # the flow's own errors (with their lines) come first; the builder's refusals only for a valid flow
            parse_source(body.source, await _known(request))
        except FlowInvalid as exc:
            return JSONResponse({"ok": False, "errors": issues_json(body.source, exc.errors)}, status_code=422)
        return JSONResponse({"ok": False, "errors": refused}, status_code=422)
    try:
        info = await otk.flows.save(
            body.source, pack=pack, author=principal.actor, activate=body.publish, expect_key=key, new=key is None
        )
    except FlowInvalid as exc:
        return JSONResponse({"ok": False, "errors": issues_json(body.source, exc.errors)}, status_code=422)
    if info.active:
        await _reload(request)
    return JSONResponse(
        {"ok": True, "key": info.flow_key, "version": info.version, "active": info.active},
        status_code=201 if key is None else 200,
        headers={"Location": _url(info.flow_key, info.version)},
    )


# --- helpers -------------------------------------------------------------------------------------


async def _reload(request: Request) -> None:
    """Rebuild this process's engines now; other processes follow within the watcher's 2 s."""
    await otklik_of(request)._rebuild_engines()


async def _known(request: Request) -> set[str]:
    """Flow ids a `goto` may name: the same set `FlowStore.save` validates against."""
    return await otklik_of(request).flows.keys()


def _checked(key: str) -> str:
    if not _KEY.match(key) or len(key) > 80:
        raise NotFound(f"no flow {key[:80]!r}")
    return key


def _url(key: str, version: int) -> str:
    return f"/admin/flows/{key}?version={version}"


async def _json(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object, read with a size limit (the editor sends JSON, never a form)."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise InvalidInput("send the request as JSON (Content-Type: application/json)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the request is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the request is larger than {limit} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidInput("the request is not valid JSON text") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request must be a JSON object")
    return data


def _model(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise InvalidInput(f"bad request: {where}: {first.get('msg', 'invalid')}") from None


def issues_json(source: str, issues: list[FlowIssue]) -> list[dict[str, Any]]:
    """Errors for the page: flow, node, field, message and, when it can be found, the line in the YAML."""
    root = None
    try:
        root = safe_yaml.compose(source)  # checked first, so composing the tree is cheap and safe
    except (safe_yaml.UnsafeYaml, yaml.YAMLError):
        root = None
    out = []
    for issue in issues:
        item: dict[str, Any] = issue.to_dict()
        item["line"] = _line_of(root, issue) if root is not None else _syntax_line(issue.message)
        out.append(item)
    return out


def _line_of(root: yaml.Node, issue: FlowIssue) -> int | None:
    path = (["nodes", issue.node] if issue.node else []) + (issue.field.split(".") if issue.field else [])
    node, line = root, None
    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value in (part, part.rstrip("_")):
                    child, line = v, k.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            child = node.value[int(part)]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _syntax_line(message: str) -> int | None:
    match = re.search(r"\bline (\d+)", message)
    return int(match.group(1)) if match else None


# --- the diagram ---------------------------------------------------------------------------------

_NODE_LINE = re.compile(r'^(    n_\w+)(\[/|\[\[|\[\(|\(\(|\(\[|\[|\{|>)"(.*)"(/\]|\]\]|\)\]|\)\)|\]\)|\]|\})$')
_EDGE_LINE = re.compile(r'^(    n_\w+) (?:-->|-\.->)\|"(.*)"\| (n_\w+|digression\(\(\(other intent\)\)\))$')
_SAFE_LABEL = re.compile(r"^[\w \-.:/→#;]*$")
_FIXED = re.compile(
    r'^(flowchart TD|    start\(\(\(start\)\)\) --> n_\w+|    digression -\.->\|"resume"\| n_\w+'
    r'|    cancel\(\(\(cancel\)\)\) -\.->\|"on_cancel"\| n_\w+)$'
)


def diagram_text(flow: Flow) -> str | None:
    """The core's Mermaid text (labels already reduced to letters, digits, safe marks and Mermaid
    entities), checked again line by line: a line of an unknown shape or with an unsafe label makes the
    diagram unavailable rather than passed through to the browser."""
    lines = mermaid(flow).splitlines()
    for line in lines:
        if _FIXED.match(line):
            continue
        match = _NODE_LINE.match(line) or _EDGE_LINE.match(line)
        label = match.group(3) if match and match.re is _NODE_LINE else (match.group(2) if match else None)
        if label is None or not _SAFE_LABEL.match(label):
            return None
    return "\n".join(lines) + "\n"


# --- a strict Content-Security-Policy on the editor's pages -------------------------------------------


def _handler_hashes() -> str:
    """The base template's inline handlers (e.g. the language switch) are allowed by their hash."""
    base = (TEMPLATES / "admin" / "base.html").read_text(encoding="utf-8")
    handlers = sorted(set(re.findall(r'\son[a-z]+="([^"]*)"', base)))
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(h.encode()).digest()).decode()}'" for h in handlers)


_CSP = (
    "default-src 'self'; "
    f"script-src 'self' 'unsafe-hashes' {_handler_hashes()}; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _secure(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = _CSP
    return response
