"""A fake Bitrix24 portal answering its REST API through an inbound webhook, on loopback (tests, demos).

    async with FakeBitrix24Server() as fake:   # fake.webhook_url = http://127.0.0.1:<port>/rest/1/<code>/
        fake.add_field("UF_CRM_SERVICE")        # a custom lead field (crm.lead.fields lists it)
        fake.fail("QUERY_LIMIT_EXCEEDED", times=2)   # 503 {"error", "error_description"}, as Bitrix24 does
        fake.down(times=5)                      # 500 with an HTML page (the portal is down)
        fake.revoke()                           # the webhook was deleted: 401 INVALID_CREDENTIALS

Methods (`POST /rest/<user>/<code>/<method>[.json]`, a JSON body or a form / query string in PHP's
`a[b][0]=c` style), answering `{"result": …, "time": {…}}` like the portal:
crm.duplicate.findbycomm (`{"CONTACT": [ids]}`, or `[]` when none — PHP's empty array), crm.contact.add,
crm.lead.add (unknown UF_* fields silently dropped, like the portal), crm.lead.update, crm.lead.get,
crm.lead.list (filter on ORIGINATOR_ID / ORIGIN_ID), crm.lead.fields, crm.activity.todo.add /
updateDeadline / updateDescription, and `batch` (`{"halt", "cmd": {name: "method?query"}}` with
`$result[name]` references → `{"result": {"result", "result_error", "result_total", "result_next",
"result_time"}}`). The leaky bucket (2 req/s, burst 50) can be switched on with `limit()`.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from otklik.testing.loopback import serve_on_loopback

DEFAULT_USER = "1"
DEFAULT_CODE = "fake0test0webhook0code"  # obviously fake
STANDARD_FIELDS = (
    "ID", "TITLE", "NAME", "LAST_NAME", "PHONE", "EMAIL", "SOURCE_ID", "SOURCE_DESCRIPTION", "COMMENTS", "STATUS_ID",
    "CONTACT_ID", "ASSIGNED_BY_ID", "ORIGINATOR_ID", "ORIGIN_ID", "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN",
    "UTM_CONTENT", "UTM_TERM", "OPPORTUNITY", "CURRENCY_ID",
)  # fmt: skip
_ERRORS = {
    "QUERY_LIMIT_EXCEEDED": (503, "Too many requests"),
    "INVALID_CREDENTIALS": (401, "Invalid request credentials"),
    "ERROR_CORE": (400, "Core error"),
    "INTERNAL_SERVER_ERROR": (500, "Internal server error"),
    "NOT_FOUND": (400, "Not found"),
}


class Fault(Exception):
    def __init__(self, error: str, description: str | None = None, status: int | None = None) -> None:
        super().__init__(error)
        default_status, default_text = _ERRORS.get(error, (400, error))
        self.error, self.description, self.status = error, description or default_text, status or default_status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(slots=True)
class Injected:
    error: str
    times: int
    method: str | None = None
    html: bool = False
    status: int | None = None


@dataclass(slots=True)
class PortalState:
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    todos: dict[int, dict[str, Any]] = field(default_factory=dict)
    uf_fields: set[str] = field(default_factory=set)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (method, params), batch parts too
    http: list[str] = field(default_factory=list)  # one per HTTP request: its method
    faults: list[Injected] = field(default_factory=list)


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """PHP's parse_str: `fields[PHONE][0][VALUE]=x` → {"fields": {"PHONE": {"0": {"VALUE": "x"}}}}; numeric
    keys are turned into lists afterwards."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        keys = re.findall(r"^[^\[]+|\[([^\]]*)\]", name)
        head = name.split("[", 1)[0]
        path = [head] + [k for k in keys[1:]]
        node = root
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    nested: dict[str, Any] = _lists(root)
    return nested


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        if value and all(k.isdigit() for k in value):
            return [_lists(value[k]) for k in sorted(value, key=int)]
        return {k: _lists(v) for k, v in value.items()}
    return value


class FakeBitrix24Server:
    def __init__(self, *, user: str = DEFAULT_USER, code: str = DEFAULT_CODE, port: int = 0) -> None:
        self.user, self.code, self.port = user, code, port
        self.state = PortalState()
        self._ids = itertools.count(1)
        self._served: Any = None
        self._revoked = False
        self._rate: tuple[float, int] | None = None
        self._level, self._at = 0.0, time.monotonic()
        self.webhook_url = ""

    async def __aenter__(self) -> FakeBitrix24Server:
        self._served = await serve_on_loopback(self.app(), self.port)
        self.port = self._served.port
        self.webhook_url = f"http://127.0.0.1:{self.port}/rest/{self.user}/{self.code}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._served is not None:
            self._served.server.should_exit = True
            with contextlib.suppress(Exception):
                await self._served.task

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/rest/{user}/{code}/{method}", self._rest, methods=["GET", "POST"])])

    # --- knobs -------------------------------------------------------------------------------------

    def add_field(self, code: str) -> None:
        self.state.uf_fields.add(code)

    def drop_field(self, code: str) -> None:
        self.state.uf_fields.discard(code)

    def fail(self, error: str, *, times: int = 1, method: str | None = None, status: int | None = None) -> None:
        self.state.faults.append(Injected(error, times, method, status=status))

    def down(self, *, times: int = 1, status: int = 500) -> None:
        """The portal is down: an HTML error page (no JSON), `times` requests."""
        self.state.faults.append(Injected("DOWN", times, html=True, status=status))

    def up(self) -> None:
        self.state.faults.clear()

    def revoke(self) -> None:
        self._revoked = True

    def limit(self, per_second: float = 2.0, burst: int = 50) -> None:
        """Bitrix24's leaky bucket: past `burst` requests not yet leaked, 503 QUERY_LIMIT_EXCEEDED."""
        self._rate = (per_second, burst)
        self._level, self._at = 0.0, time.monotonic()

    def methods(self) -> list[str]:
        return [m for m, _ in self.state.calls]

    # --- the API -----------------------------------------------------------------------------------

    def _injected(self, method: str) -> Injected | None:
        for fault in self.state.faults:
            if fault.times > 0 and (fault.method is None or fault.method == method):
                fault.times -= 1
                return fault
        return None

    def _limited(self) -> bool:
        if self._rate is None:
            return False
        rate, burst = self._rate
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._at) * rate)
        self._at = now
        if self._level + 1 > burst:
            return True
        self._level += 1
        return False

    async def _rest(self, request: Request) -> Response:
        method = request.path_params["method"].removesuffix(".json")
        self.state.http.append(method)
        if self._revoked or request.path_params["user"] != self.user or request.path_params["code"] != self.code:
            return JSONResponse(Fault("INVALID_CREDENTIALS").body(), status_code=401)
        if self._limited():
            return JSONResponse(Fault("QUERY_LIMIT_EXCEEDED").body(), status_code=503)
        injected = self._injected(method)
        if injected is not None:
            if injected.html:
                return HTMLResponse("<html><body>502 Bad Gateway</body></html>", status_code=injected.status or 500)
            fault = Fault(injected.error, status=injected.status)
            return JSONResponse(fault.body(), status_code=fault.status)
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            import json

            try:
                params = json.loads(raw or b"{}")
            except ValueError:
                return JSONResponse(Fault("ERROR_CORE", "malformed JSON").body(), status_code=400)
        else:
            params = nest(parse_qsl(raw.decode() or request.url.query, keep_blank_values=True))
        if not isinstance(params, dict):
            return JSONResponse(Fault("ERROR_CORE", "params must be an object").body(), status_code=400)
        try:
            result = self._batch(params) if method == "batch" else self.call(method, params)
        except Fault as fault:
            return JSONResponse(fault.body(), status_code=fault.status)
        return JSONResponse({"result": result, "time": {"start": time.time(), "duration": 0.01}})

    def _batch(self, params: Mapping[str, Any]) -> dict[str, Any]:
        commands = params.get("cmd") or {}
        if not isinstance(commands, dict) or len(commands) > 50:
            raise Fault("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
        halt = str(params.get("halt", "0")) not in ("0", "", "false")
        done: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, cmd in commands.items():
            for ref, value in done.items():  # $result[name] and $result[name][id]
                shown = str(value["id"]) if isinstance(value, dict) and "id" in value else str(value)
                cmd = cmd.replace(f"$result[{ref}]", shown).replace(f"%24result%5B{ref}%5D", shown)
            method, _, query = str(cmd).partition("?")
            try:
                done[name] = self.call(method, nest(parse_qsl(query, keep_blank_values=True)))
            except Fault as fault:
                errors[name] = fault.body()
                if halt:
                    break
        return {
            "result": done or [],
            "result_error": errors or [],
            "result_total": [],
            "result_next": [],
            "result_time": {},
        }

    def call(self, method: str, params: Mapping[str, Any]) -> Any:
        self.state.calls.append((method, dict(params)))
        raw_fields = params.get("fields")
        fields: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
        if method == "crm.duplicate.findbycomm":
            values = [str(v) for v in params.get("values") or []]
            if params.get("type") not in ("PHONE", "EMAIL") or not values:
                raise Fault("ERROR_CORE", "type and values are required")
            ids = [
                i for i, c in self.state.contacts.items() if any(p.get("VALUE") in values for p in c.get("PHONE", []))
            ]
            return {str(params.get("entity_type", "CONTACT")): ids} if ids else []
        if method == "crm.contact.add":
            contact_id = next(self._ids)
            self.state.contacts[contact_id] = {"ID": str(contact_id), **fields}
            return contact_id
        if method == "crm.lead.add":
            lead_id = next(self._ids)
            known = set(STANDARD_FIELDS) | self.state.uf_fields
            self.state.leads[lead_id] = {"ID": str(lead_id), "STATUS_ID": "NEW"} | {
                k: v for k, v in fields.items() if k in known
            }
            return lead_id
        if method == "crm.lead.update":
            lead = self.state.leads.get(int(params.get("id") or 0))
            if lead is None:
                raise Fault("ERROR_CORE", "Not found", 400)
            known = set(STANDARD_FIELDS) | self.state.uf_fields
            lead.update({k: v for k, v in fields.items() if k in known})
            return True
        if method == "crm.lead.get":
            lead = self.state.leads.get(int(params.get("id") or params.get("ID") or 0))
            if lead is None:
                raise Fault("NOT_FOUND", "Not found")
            return lead
        if method == "crm.lead.list":
            raw_where = params.get("filter")
            where: dict[str, Any] = raw_where if isinstance(raw_where, dict) else {}
            rows = [
                {"ID": lead["ID"], "CONTACT_ID": lead.get("CONTACT_ID")}
                for lead in self.state.leads.values()
                if all(str(lead.get(k)) == str(v) for k, v in where.items())
            ]
            return rows
        if method == "crm.lead.fields":
            return {
                code: {"type": "string", "title": code} for code in (*STANDARD_FIELDS, *sorted(self.state.uf_fields))
            }
        if method == "crm.activity.todo.add":
            owner = int(params.get("ownerId") or 0)
            if str(params.get("ownerTypeId")) != "1" or owner not in self.state.leads or not params.get("deadline"):
                raise Fault("ERROR_CORE", "ownerTypeId, ownerId and deadline are required")
            todo_id = next(self._ids)
            self.state.todos[todo_id] = {
                "id": todo_id, "ownerId": owner, "deadline": params["deadline"],
                "description": params.get("description", ""),
            }  # fmt: skip
            return {"id": todo_id}
        if method in ("crm.activity.todo.updateDeadline", "crm.activity.todo.updateDescription"):
            todo = self.state.todos.get(int(params.get("id") or 0))
            if todo is None or str(todo["ownerId"]) != str(params.get("ownerId")):
                raise Fault("NOT_FOUND", "Activity not found")
            todo["deadline" if method.endswith("Deadline") else "description"] = params.get("value")
            return {"id": todo["id"]}
        raise Fault("ERROR_METHOD_NOT_FOUND", f"Method not found: {method}", 404)


async def _serve_forever(port: int) -> None:  # pragma: no cover - the offline demo
    import asyncio

    async with FakeBitrix24Server(port=port) as fake:
        for code in ("UF_CRM_SERVICE", "UF_CRM_STAFF", "UF_CRM_START"):
            fake.add_field(code)
        print(f"fake Bitrix24: otklik crm add bitrix24 --webhook-url {fake.webhook_url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    import asyncio
    import sys

    asyncio.run(_serve_forever(int(sys.argv[1]) if len(sys.argv) > 1 else 8024))
