"""A fake amoCRM / Kommo account answering API v4 on loopback (tests, demos).

    async with FakeAmoCrmServer() as fake:       # fake.base_url = http://127.0.0.1:<port>
        fake.add_field(501, "Услуга")              # a custom lead field
        fake.expire_token()                        # the access token is refused: 401, until refreshed
        fake.fail(429, times=2); fake.fail(503, times=5)

Answers with the documented shapes: `POST /api/v4/leads/complex` (a list of leads, each with `_embedded`
contacts and tags → `[{"id", "contact_id", "company_id", "request_id", "merged"}]`; unknown custom field ids →
400 with `validation-errors`), `GET /api/v4/leads?query=` (`{"_embedded": {"leads": [...]}}`, 204 when
none), `PATCH /api/v4/leads/{id}`, `POST /api/v4/leads/{id}/notes`, `POST /api/v4/tasks`,
`PATCH /api/v4/tasks/{id}`, `GET /api/v4/leads/custom_fields`, `GET /api/v4/account`, and
`POST /oauth2/access_token` (grant_type=refresh_token; the refresh token rotates: the old one is refused once
used). Errors are problem+json: `{"title", "type", "status", "detail"}`. `throttle(7)` answers 429 past
7 requests a second.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from otklik.testing.loopback import serve_on_loopback

DEFAULT_TOKEN = "FAKEamocrmTokenNotReal0000"  # noqa: S105 - the fake's own, not a real token
CLIENT_ID = "fake-client-id-0000"
CLIENT_SECRET = "FAKEamocrmClientNotReal0000"  # noqa: S105 - the fake's own, not a real secret
REFRESH = "fake-refresh-token-0000"


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    titles = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
    body = {"title": titles.get(status, "Error"), "type": f"https://httpstatus.es/{status}", "status": status,
            "detail": detail, **extra}  # fmt: skip
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


@dataclass(slots=True)
class AccountState:
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    fields: dict[int, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    faults: list[list[int]] = field(default_factory=list)  # [status, times]
    refreshes: int = 0


class FakeAmoCrmServer:
    def __init__(self, *, token: str = DEFAULT_TOKEN, refresh_token: str = REFRESH, port: int = 0) -> None:
        self.token, self.refresh_token, self.port = token, refresh_token, port
        self.state = AccountState()
        self._ids = itertools.count(1000)
        self._served: Any = None
        self._per_second: float | None = None
        self._recent: list[float] = []
        self.base_url = ""

    async def __aenter__(self) -> FakeAmoCrmServer:
        self._served = await serve_on_loopback(self.app(), self.port)
        self.port = self._served.port
        self.base_url = f"http://127.0.0.1:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._served is not None:
            self._served.server.should_exit = True
            with contextlib.suppress(Exception):
                await self._served.task

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth2/access_token", self._token, methods=["POST"]),
                Route("/api/v4/account", self._account, methods=["GET"]),
                Route("/api/v4/leads/custom_fields", self._fields, methods=["GET"]),
                Route("/api/v4/leads/complex", self._complex, methods=["POST"]),
                Route("/api/v4/leads/{id:int}/notes", self._notes, methods=["POST"]),
                Route("/api/v4/leads/{id:int}", self._lead, methods=["PATCH", "GET"]),
                Route("/api/v4/leads", self._leads, methods=["GET"]),
                Route("/api/v4/tasks", self._tasks, methods=["POST"]),
                Route("/api/v4/tasks/{id:int}", self._task, methods=["PATCH"]),
            ]
        )

    # --- knobs -------------------------------------------------------------------------------------

    def add_field(self, field_id: int, name: str) -> None:
        self.state.fields[field_id] = name

    def drop_field(self, field_id: int) -> None:
        self.state.fields.pop(field_id, None)

    def expire_token(self) -> None:
        self.token = "expired-" + secrets.token_hex(4)

    def fail(self, status: int, *, times: int = 1) -> None:
        self.state.faults.append([status, times])

    def up(self) -> None:
        self.state.faults.clear()

    def throttle(self, per_second: float = 7.0) -> None:
        self._per_second = per_second

    # --- the API -----------------------------------------------------------------------------------

    def _gate(self, request: Request) -> Response | None:
        self.state.requests.append((request.method, request.url.path))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return problem(401, "Unauthorized")
        if self._per_second is not None:
            now = time.monotonic()
            self._recent = [t for t in self._recent if now - t < 1.0]
            if len(self._recent) >= self._per_second:
                return problem(429, "Too many requests")
            self._recent.append(now)
        for fault in self.state.faults:
            if fault[1] > 0:
                fault[1] -= 1
                return problem(fault[0], "Injected failure")
        return None

    async def _json(self, request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    async def _token(self, request: Request) -> Response:
        self.state.requests.append((request.method, request.url.path))
        body = await self._json(request)
        if not isinstance(body, dict) or body.get("grant_type") != "refresh_token":
            return problem(400, "grant_type must be refresh_token", hint="Check grant_type")
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return problem(401, "Client authentication failed", hint="Check client_id / client_secret")
        if body.get("refresh_token") != self.refresh_token:
            return problem(400, "Token has been revoked", hint="Token has been revoked")
        self.token = "fake-access-" + secrets.token_hex(8)
        self.refresh_token = "fake-refresh-" + secrets.token_hex(8)  # rotated: the old one is dead now
        self.state.refreshes += 1
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": 86400,
                "access_token": self.token,
                "refresh_token": self.refresh_token,
            }
        )

    async def _account(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        return JSONResponse({"id": 30000001, "name": "Fake salon", "subdomain": "fake", "currency": "RUB"})

    async def _fields(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        found = [
            {"id": i, "name": n, "type": "text", "entity_type": "leads"} for i, n in sorted(self.state.fields.items())
        ]
        return JSONResponse({"_total_items": len(found), "_embedded": {"custom_fields": found}})

    def _bad_fields(self, values: Any, path: str) -> list[dict[str, str]]:
        errors = []
        for n, item in enumerate(values or []):
            if isinstance(item, dict) and "field_id" in item and item["field_id"] not in self.state.fields:
                errors.append(
                    {
                        "code": "NotSupportedChoice",
                        "path": f"{path}.{n}.field_id",
                        "detail": "The value you selected is not a valid choice.",
                    }
                )
        return errors

    async def _complex(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = await self._json(request)
        if not isinstance(body, list) or not body or len(body) > 50:
            return problem(400, "Request validation failed")
        answer = []
        for n, item in enumerate(body):
            if not isinstance(item, dict):
                return problem(400, "Request validation failed")
            if errors := self._bad_fields(item.get("custom_fields_values"), "custom_fields_values"):
                return problem(
                    400,
                    "Request validation failed",
                    **{"validation-errors": [{"request_id": str(n), "errors": errors}]},
                )
            embedded = item.get("_embedded") or {}
            contact_id = None
            for contact in embedded.get("contacts") or []:
                contact_id = next(self._ids)
                self.state.contacts[contact_id] = {"id": contact_id, **contact}
            lead_id = next(self._ids)
            self.state.leads[lead_id] = {
                "id": lead_id, "name": item.get("name", ""), "price": item.get("price", 0),
                "pipeline_id": item.get("pipeline_id"), "status_id": item.get("status_id"),
                "custom_fields_values": item.get("custom_fields_values"),
                "tags": [t.get("name") for t in embedded.get("tags") or []], "contact_id": contact_id,
            }  # fmt: skip
            answer.append(
                {"id": lead_id, "contact_id": contact_id, "company_id": None, "request_id": [str(n)], "merged": False}
            )
        return JSONResponse(answer)

    async def _leads(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        query = request.query_params.get("query", "")
        found = [lead for lead in self.state.leads.values() if query and query in str(lead["name"])]
        if not found:
            return Response(status_code=204)
        return JSONResponse({"_page": 1, "_embedded": {"leads": found}})

    async def _lead(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        lead = self.state.leads.get(int(request.path_params["id"]))
        if lead is None:
            return problem(404, "Lead not found")
        if request.method == "GET":
            return JSONResponse(lead)
        body = await self._json(request)
        if not isinstance(body, dict):
            return problem(400, "Request validation failed")
        if errors := self._bad_fields(body.get("custom_fields_values"), "custom_fields_values"):
            return problem(
                400, "Request validation failed", **{"validation-errors": [{"request_id": "0", "errors": errors}]}
            )
        lead.update(
            {
                k: v
                for k, v in body.items()
                if k in ("name", "status_id", "pipeline_id", "price", "custom_fields_values")
            }
        )
        return JSONResponse({"id": lead["id"], "updated_at": int(time.time())})

    async def _notes(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        lead_id = int(request.path_params["id"])
        body = await self._json(request)
        if lead_id not in self.state.leads or not isinstance(body, list):
            return problem(400, "Request validation failed")
        out = []
        for n, note in enumerate(body):
            note_id = next(self._ids)
            self.state.notes.append({"id": note_id, "entity_id": lead_id, **note})
            out.append({"id": note_id, "entity_id": lead_id, "request_id": str(n)})
        return JSONResponse({"_embedded": {"notes": out}})

    async def _tasks(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        body = await self._json(request)
        if not isinstance(body, list):
            return problem(400, "Request validation failed")
        out = []
        for n, task in enumerate(body):
            if not isinstance(task, dict) or not isinstance(task.get("complete_till"), int) or not task.get("text"):
                return problem(400, "Request validation failed")
            task_id = next(self._ids)
            self.state.tasks[task_id] = {"id": task_id, "is_completed": False, **task}
            out.append({"id": task_id, "request_id": str(n)})
        return JSONResponse({"_embedded": {"tasks": out}})

    async def _task(self, request: Request) -> Response:
        if (refused := self._gate(request)) is not None:
            return refused
        task = self.state.tasks.get(int(request.path_params["id"]))
        body = await self._json(request)
        if task is None or not isinstance(body, dict):
            return problem(404, "Task not found")
        task.update({k: v for k, v in body.items() if k in ("text", "complete_till", "is_completed", "result")})
        return JSONResponse({"id": task["id"], "updated_at": int(time.time())})


async def _serve_forever(port: int) -> None:  # pragma: no cover - the offline demo
    import asyncio

    async with FakeAmoCrmServer(port=port) as fake:
        print(
            f"fake amoCRM: otklik crm add amocrm --subdomain demo --base-url {fake.base_url} --token {fake.token}",
            flush=True,
        )
        await asyncio.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    import asyncio
    import sys

    asyncio.run(_serve_forever(int(sys.argv[1]) if len(sys.argv) > 1 else 8025))
