"""amoCRM / Kommo through API v4 (`https://<subdomain>.amocrm.ru/api/v4/…`, a Bearer token).

- A lead: `POST /api/v4/leads/complex` — the lead (name, pipeline and status from the mapping, mapped custom
  fields, tags) with its contact embedded (PHONE / EMAIL by field code) — then a common note with the
  summary and the admin link (`POST /api/v4/leads/{id}/notes`). Its name ends in a marker (`#L5`, `#B7`) so a
  retried attempt finds a lead a lost answer created (`GET /api/v4/leads?query=`; 204 when none).
- A booking: its lead (the lead's, else one created for it) and a task due at the visit (`POST /api/v4/tasks`);
  moved → the task's `complete_till`; cancelled / no-show / completed → the lead's mapped status (lost, 143, by
  default for a cancel) and the task closed with the reason.
- Tokens: a long-lived token, or OAuth: on a 401 the refresh token is exchanged
  (`POST /oauth2/access_token`, grant_type=refresh_token) and the new pair — amoCRM rotates the refresh token
  — handed to `on_tokens`, which stores it encrypted; without a refresh token a 401 is a clear failure.
- Limits: 7 requests a second (a leaky bucket); a 429 fills it and the call waits and tries again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from otklik.capabilities.crm.base import (
    CrmError,
    LeakyBucket,
    Link,
    Save,
    answer_json,
    check_base_url,
    http_client,
    text,
)
from otklik.core.errors import InvalidInput

KIND = "amocrm"
RATE, BURST = 7.0, 7
LIMIT_RETRIES = 3
LOST, WON = 143, 142
MAPPABLE = ("service", "staff", "start", "end", "price", "source", "source_detail", "preferred_time")
Tokens = dict[str, str]


def base_url_of(subdomain: str, base_url: str | None = None) -> str:
    if base_url:
        return check_base_url(base_url, "base URL").rstrip("/")
    sub = (subdomain or "").strip().lower()
    if not sub or len(sub) > 63 or not all(c.isalnum() or c == "-" for c in sub) or sub.startswith("-"):
        raise InvalidInput("subdomain: the part before .amocrm.ru, letters, digits and -")
    return f"https://{sub}.amocrm.ru"


def _unix(value: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(str(value)).timestamp())
    except (TypeError, ValueError):
        return None


class AmoCrm:
    kind = KIND

    def __init__(
        self,
        base_url: str,
        tokens: Tokens,
        mapping: Mapping[str, Any] | None = None,
        *,
        admin_base: str = "",
        on_tokens: Callable[[Tokens], Awaitable[None]] | None = None,
        bucket: LeakyBucket | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.tokens = dict(tokens)
        if not self.tokens.get("access_token"):
            raise InvalidInput("token: the long-lived token or the OAuth access token is required")
        self.mapping = dict(mapping or {})
        self.admin_base = admin_base.rstrip("/")
        self.on_tokens = on_tokens
        self.bucket = bucket or LeakyBucket(RATE, BURST)
        self.client = http_client(transport)
        self._fields: set[int] | None = None
        self.refreshed = 0

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- transport ---------------------------------------------------------------------------------

    async def refresh(self) -> None:
        needed = ("refresh_token", "client_id", "client_secret")
        if not all(self.tokens.get(k) for k in needed):
            raise CrmError(
                "amoCRM refused the token (401): it expired or was revoked; add a new long-lived token"
                " (otklik crm add amocrm --token …)",
                retry=False,
            )
        body = {
            "client_id": self.tokens["client_id"],
            "client_secret": self.tokens["client_secret"],
            "grant_type": "refresh_token",
            "refresh_token": self.tokens["refresh_token"],
            "redirect_uri": self.tokens.get("redirect_uri", ""),
        }
        await self.bucket.acquire()
        try:
            response = await self.client.post(f"{self.base}/oauth2/access_token", json=body)
        except httpx.HTTPError as exc:
            raise CrmError(f"amoCRM token refresh unreachable ({type(exc).__name__})", retry=True) from None
        answer = answer_json(response)
        if response.status_code >= 500:
            raise CrmError(f"amoCRM token refresh answered {response.status_code}", retry=True)
        if response.status_code != 200 or not isinstance(answer, dict) or not answer.get("access_token"):
            hint = answer.get("hint") or answer.get("detail") if isinstance(answer, dict) else ""
            raise CrmError(
                f"amoCRM refused the refresh token ({response.status_code} {hint}): connect the integration again",
                retry=False,
            )
        self.tokens |= {"access_token": str(answer["access_token"]), "refresh_token": str(answer["refresh_token"])}
        self.refreshed += 1
        if self.on_tokens is not None:
            await self.on_tokens(dict(self.tokens))

    async def call(self, method: str, path: str, body: Any = None, *, params: Mapping[str, Any] | None = None) -> Any:
        refreshed = False
        limited = 0
        while True:
            await self.bucket.acquire()
            headers = {"Authorization": f"Bearer {self.tokens['access_token']}"}
            try:
                response = await self.client.request(
                    method, f"{self.base}{path}", json=body, params=dict(params or {}), headers=headers
                )
            except httpx.TimeoutException:
                raise CrmError(f"amoCRM did not answer {method} {path} in time", retry=True) from None
            except httpx.HTTPError as exc:
                raise CrmError(f"amoCRM unreachable ({type(exc).__name__}: {exc})", retry=True) from None
            code = response.status_code
            if code == 401 and not refreshed:
                await self.refresh()
                refreshed = True
                continue
            if code == 429 and limited < LIMIT_RETRIES:
                limited += 1
                self.bucket.fill()
                continue
            if code == 204:
                return None
            answer = answer_json(response)
            if 200 <= code < 300:
                return answer
            if code == 401:
                raise CrmError("amoCRM refused the token even after a refresh (401)", retry=False)
            if code in (402, 403):
                raise CrmError(
                    f"amoCRM refused {method} {path} ({code}): the account or the integration is blocked", retry=False
                )
            if code in (429,) or code >= 500:
                raise CrmError(f"amoCRM answered {code} to {method} {path}", retry=True)
            raise CrmError(f"amoCRM refused {method} {path} ({code}: {_problems(answer)})", retry=False)

    # --- use cases ---------------------------------------------------------------------------------

    async def check(self) -> str:
        account = await self.call("GET", "/api/v4/account")
        self._fields = None
        await self.check_mapping()
        name = account.get("name") if isinstance(account, dict) else None
        return f"amoCRM {self.base.split('//', 1)[-1]}: account {name!r}, mapping OK"

    def mapped(self) -> dict[str, int]:
        fields = self.mapping.get("fields") or {}
        out: dict[str, int] = {}
        if isinstance(fields, dict):
            for what, field_id in fields.items():
                if field_id not in (None, ""):
                    out[str(what)] = int(field_id)
        return out

    async def check_mapping(self) -> None:
        if not self.mapped():
            return
        if self._fields is None:
            answer = await self.call("GET", "/api/v4/leads/custom_fields", params={"limit": 250})
            found = (answer or {}).get("_embedded", {}).get("custom_fields", []) if isinstance(answer, dict) else []
            self._fields = {int(f["id"]) for f in found if isinstance(f, dict) and "id" in f}
        missing = [
            f"{field_id} (mapped to {what})" for what, field_id in self.mapped().items() if field_id not in self._fields
        ]
        if missing:
            self._fields = None
            raise CrmError(
                "amoCRM has no lead field "
                + ", ".join(missing)
                + ": it was deleted; fix the mapping in Settings → CRM,"
                " then retry",
                retry=False,
            )

    def _custom(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        values = {"start": data.get("preferred_time"), **data}  # a lead's wished time until it is booked
        for what, field_id in self.mapped().items():
            value = values.get(what)
            if value is not None and value != "":
                if what in ("start", "end", "preferred_time"):
                    value = _unix(value) or str(value)
                out.append({"field_id": field_id, "values": [{"value": value}]})
        return out

    def _note(self, data: Mapping[str, Any]) -> str:
        parts = [text(data, "summary", 4000), text(data, "comment", 2000), text(data, "notes", 2000)]
        raw_utm = data.get("utm")
        utm: dict[str, Any] = raw_utm if isinstance(raw_utm, dict) else {}
        source = " · ".join(p for p in (text(data, "source", 40), text(data, "source_detail", 200)) if p)
        if source:
            parts.append(f"Источник: {source}")
        if utm:
            parts.append("UTM: " + ", ".join(f"{k}={v}" for k, v in sorted(utm.items()) if v))
        if data.get("preferred_time"):
            parts.append(f"Желаемое время: {data['preferred_time']}")
        if data.get("admin_url"):
            parts.append(f"Заявка в otklik: {self.admin_base}{text(data, 'admin_url', 300)}")
        return "\n\n".join(p for p in parts if p) or "Заявка из otklik"

    async def _find(self, marker: str) -> str | None:
        answer = await self.call("GET", "/api/v4/leads", params={"query": marker})
        leads = (answer or {}).get("_embedded", {}).get("leads", []) if isinstance(answer, dict) else []
        for lead in leads:
            if isinstance(lead, dict) and str(lead.get("name", "")).endswith(marker):
                return str(lead["id"])
        return None

    async def _create(self, data: Mapping[str, Any], name: str, marker: str, save: Save) -> Link:
        contact: dict[str, Any] = {"first_name": text(data, "client_name", 100) or "—"}
        values = []
        if data.get("phone"):
            values.append({"field_code": "PHONE", "values": [{"enum_code": "WORK", "value": str(data["phone"])}]})
        if data.get("email"):
            values.append({"field_code": "EMAIL", "values": [{"enum_code": "WORK", "value": str(data["email"])}]})
        if values:
            contact["custom_fields_values"] = values
        tags = [{"name": str(t)[:50]} for t in (self.mapping.get("tags") or ["otklik"])]
        if data.get("source"):
            tags.append({"name": text(data, "source", 40)})
        lead: dict[str, Any] = {"name": f"{name[:200]} {marker}", "_embedded": {"contacts": [contact], "tags": tags}}
        for key in ("pipeline_id", "status_id", "responsible_user_id"):
            if self.mapping.get(key):
                lead[key] = int(self.mapping[key])
        if data.get("price") not in (None, ""):
            try:
                lead["price"] = int(float(str(data["price"])))
            except ValueError:
                pass
        if custom := self._custom(data):
            lead["custom_fields_values"] = custom
        answer = await self.call("POST", "/api/v4/leads/complex", [lead])
        if not isinstance(answer, list) or not answer or not isinstance(answer[0], dict) or not answer[0].get("id"):
            raise CrmError("amoCRM answered leads/complex without a lead id", retry=True)
        link = Link(contact=str(answer[0].get("contact_id") or "") or None, record=str(answer[0]["id"]))
        await save(link)
        return link

    async def _add_note(self, record: str, data: Mapping[str, Any]) -> None:
        await self.call(
            "POST", f"/api/v4/leads/{record}/notes", [{"note_type": "common", "params": {"text": self._note(data)}}]
        )

    async def lead(self, data: Mapping[str, Any], link: Link | None, save: Save, *, retrying: bool) -> Link:
        await self.check_mapping()
        marker = f"#L{data.get('lead_id')}"
        current = link or Link()
        if not current.record and retrying and (found := await self._find(marker)):
            current = current.but(record=found)
            await save(current)
        if not current.record:
            name = " · ".join(p for p in (text(data, "client_name", 100), text(data, "service", 100)) if p) or "Заявка"
            current = await self._create(data, name, marker, save)
        if current.activity != "note":
            await self._add_note(current.record or "", data)
            current = current.but(activity="note")
            await save(current)
        return current

    def _task_text(self, event: str, data: Mapping[str, Any]) -> str:
        what = {"booking.cancelled": "ОТМЕНЕНА", "booking.moved": "перенесена", "booking.no_show": "клиент не пришёл"}
        head = f"Запись {what.get(event, '')}".strip()
        staff = f", мастер {text(data, 'staff', 100)}" if data.get("staff") else ""
        return f"{head}: {text(data, 'service', 100)}{staff}, {text(data, 'start', 40)} ({text(data, 'timezone', 40)})"

    async def booking(
        self, event: str, data: Mapping[str, Any], lead: Link | None, link: Link | None, save: Save, *, retrying: bool
    ) -> Link:
        await self.check_mapping()
        current = link or Link()
        if not current.record and lead is not None and lead.record:
            current = current.but(record=lead.record, contact=lead.contact)
            await save(current)
        marker = f"#B{data.get('booking_id')}"
        if not current.record and retrying and (found := await self._find(marker)):
            current = current.but(record=found)
            await save(current)
        if not current.record:
            name = "Запись: " + " · ".join(p for p in (text(data, "client_name", 80), text(data, "service", 80)) if p)
            current = await self._create(data, name, marker, save)
            await self._add_note(current.record or "", data)
        due = _unix(data.get("start"))
        task_text = self._task_text(event, data)
        if not current.activity:
            answer = await self.call(
                "POST", "/api/v4/tasks",
                [{"text": task_text, "complete_till": due, "entity_id": int(current.record or 0), "entity_type": "leads",
                  "task_type_id": 2}],
            )  # fmt: skip
            tasks = (answer or {}).get("_embedded", {}).get("tasks", []) if isinstance(answer, dict) else []
            if not tasks:
                raise CrmError("amoCRM answered tasks without a task id", retry=True)
            current = current.but(activity=str(tasks[0]["id"]))
            await save(current)
        elif event == "booking.moved":
            await self.call("PATCH", f"/api/v4/tasks/{current.activity}", {"text": task_text, "complete_till": due})
        statuses = self.mapping.get("statuses") or {}
        status = statuses.get(event.split(".", 1)[1]) if isinstance(statuses, dict) else None
        if event == "booking.cancelled" and not status:
            status = LOST
        patch: dict[str, Any] = {}
        if status:
            patch["status_id"] = int(status)
            if self.mapping.get("pipeline_id"):
                patch["pipeline_id"] = int(self.mapping["pipeline_id"])
        if (custom := self._custom(data)) and event != "booking.created":
            patch["custom_fields_values"] = custom
        if patch:
            await self.call("PATCH", f"/api/v4/leads/{current.record}", patch)
        if event in ("booking.cancelled", "booking.no_show", "booking.completed"):
            await self.call(
                "PATCH", f"/api/v4/tasks/{current.activity}", {"is_completed": True, "result": {"text": task_text}}
            )
        return current


def _problems(answer: Any) -> str:
    if not isinstance(answer, dict):
        return "not an amoCRM answer"
    details = []
    for block in answer.get("validation-errors") or []:
        for error in block.get("errors", []) if isinstance(block, dict) else []:
            details.append(f"{error.get('path', '')}: {error.get('detail', error.get('code', ''))}")
    return (str(answer.get("detail") or answer.get("title") or "") + (" — " + "; ".join(details) if details else ""))[
        :300
    ]
