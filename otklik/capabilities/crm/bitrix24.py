"""Bitrix24 through an inbound webhook (`https://<portal>/rest/<user>/<code>/<method>.json`, JSON bodies).

- A lead: the contact found by phone (`crm.duplicate.findbycomm`) or created (`crm.contact.add`), then
  `crm.lead.add` with TITLE, NAME, PHONE / EMAIL multifields, SOURCE_ID (mapped per source),
  SOURCE_DESCRIPTION, COMMENTS (summary, comment and the admin link), UTM_*, the mapped `UF_CRM_*` fields,
  and ORIGINATOR_ID / ORIGIN_ID ("otklik", "lead:5") — so an attempt that may have created it already looks it
  up (`crm.lead.list`) instead of creating a second one. A new contact and its lead go in one `batch`.
- A booking: its lead (the lead's, else one created for it) and a to-do with the visit as deadline
  (`crm.activity.todo.add`, owner type 1 = lead); moved → `crm.activity.todo.updateDeadline`; every change →
  `crm.activity.todo.updateDescription` and `crm.lead.update` (mapped fields, the status mapped for a cancel).
- Limits: a leaky bucket of 2 requests a second, burst 50; `503 QUERY_LIMIT_EXCEEDED` fills it and the call
  waits and tries again (3 times, then the delivery is retried later).
- Mapped `UF_CRM_*` fields are checked against `crm.lead.fields` first (Bitrix24 silently drops unknown
  fields): a field that no longer exists is a clear failure, not a lead without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

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

KIND = "bitrix24"
RATE, BURST = 2.0, 50
LIMIT_RETRIES = 3
OWNER_LEAD = 1  # crm owner type: lead
SOURCES = ("CALL", "EMAIL", "WEB", "ADVERTISING", "PARTNER", "RECOMMENDATION", "WEBFORM", "CALLBACK", "OTHER")
MAPPABLE = ("service", "staff", "start", "end", "price", "source_detail", "preferred_time")
AUTH_ERRORS = ("INVALID_CREDENTIALS", "NO_AUTH_FOUND", "expired_token", "invalid_token", "insufficient_scope")
STATUS_TEXT = {
    "booking.created": "Запись",
    "booking.moved": "Запись перенесена",
    "booking.confirmed": "Запись подтверждена",
    "booking.cancelled": "Запись ОТМЕНЕНА",
    "booking.completed": "Визит состоялся",
    "booking.no_show": "Клиент не пришёл",
}


def check_webhook_url(raw: str) -> str:
    """`https://<portal>/rest/<user id>/<code>/`, normalised with the trailing slash."""
    url = check_base_url(raw, "webhook URL")
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if len(parts) < 3 or parts[-3] != "rest" or not parts[-2].isdigit() or not parts[-1].isalnum():
        raise InvalidInput("webhook URL: Bitrix24's inbound webhook, https://<portal>/rest/<user id>/<code>/")
    return url.rstrip("/") + "/"


def php_query(params: Mapping[str, Any], prefix: str = "") -> list[str]:
    """PHP's http_build_query: `fields[PHONE][0][VALUE]=...` (batch commands are query strings)."""
    out: list[str] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out += php_query(value, name)
        elif isinstance(value, list | tuple):
            out += php_query({str(i): v for i, v in enumerate(value)}, name)
        elif value is not None:
            raw = value if isinstance(value, str) and value.startswith("$result[") else str(value)
            out.append(f"{quote(name, safe='[]')}={quote(raw, safe='$[]')}")
    return out


def command(method: str, params: Mapping[str, Any]) -> str:
    return method + "?" + "&".join(php_query(params))


def _phone(value: str | None) -> list[dict[str, str]] | None:
    return [{"VALUE": value, "VALUE_TYPE": "WORK"}] if value else None


class Bitrix24:
    kind = KIND

    def __init__(
        self,
        webhook_url: str,
        mapping: Mapping[str, Any] | None = None,
        *,
        admin_base: str = "",
        bucket: LeakyBucket | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = check_webhook_url(webhook_url)
        self.mapping = dict(mapping or {})
        self.admin_base = admin_base.rstrip("/")
        self.bucket = bucket or LeakyBucket(RATE, BURST)
        self.client = http_client(transport)
        self._lead_fields: set[str] | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- transport ---------------------------------------------------------------------------------

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        for _ in range(LIMIT_RETRIES + 1):
            await self.bucket.acquire()
            try:
                response = await self.client.post(f"{self.url}{method}.json", json=dict(params or {}))
            except httpx.TimeoutException:
                raise CrmError(f"Bitrix24 did not answer {method} in time", retry=True) from None
            except httpx.HTTPError as exc:
                raise CrmError(f"Bitrix24 unreachable ({type(exc).__name__}: {exc})", retry=True) from None
            body = answer_json(response)
            error = str(body.get("error", "")) if isinstance(body, dict) else ""
            detail = str(body.get("error_description", "")) if isinstance(body, dict) else ""
            if error == "QUERY_LIMIT_EXCEEDED":
                self.bucket.fill()
                continue
            if response.status_code in (401, 403) or error in AUTH_ERRORS:
                raise CrmError(
                    f"Bitrix24 refused the inbound webhook ({response.status_code} {error}: {detail}): it was deleted,"
                    " its code changed or it lacks the crm scope; add it again (otklik crm add bitrix24)",
                    retry=False,
                )
            if response.status_code == 429 or response.status_code >= 500:
                raise CrmError(f"Bitrix24 answered {response.status_code} {error} to {method}", retry=True)
            if error or not isinstance(body, dict) or "result" not in body:
                shown = f"{error}: {detail}" if error else f"HTTP {response.status_code}, not a Bitrix24 answer"
                raise CrmError(f"Bitrix24 refused {method} ({shown})", retry=response.status_code >= 300 and not error)
            return body["result"]
        raise CrmError(f"Bitrix24 QUERY_LIMIT_EXCEEDED on {method} {LIMIT_RETRIES + 1} times", retry=True)

    async def batch(self, commands: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """`batch` with halt=0: the results and the errors by command name (PHP gives [] for none)."""
        result = await self.call("batch", {"halt": 0, "cmd": dict(commands)})
        done = result.get("result") if isinstance(result, dict) else None
        errors = result.get("result_error") if isinstance(result, dict) else None
        return (done if isinstance(done, dict) else {}), (errors if isinstance(errors, dict) else {})

    # --- use cases ---------------------------------------------------------------------------------

    async def check(self) -> str:
        fields = await self.lead_fields(refresh=True)
        await self.check_mapping()
        return f"Bitrix24 {urlsplit(self.url).hostname}: {len(fields)} lead fields, mapping OK"

    async def lead_fields(self, *, refresh: bool = False) -> set[str]:
        if self._lead_fields is None or refresh:
            result = await self.call("crm.lead.fields")
            self._lead_fields = set(result) if isinstance(result, dict) else set()
        return self._lead_fields

    def mapped(self) -> dict[str, str]:
        fields = self.mapping.get("fields") or {}
        return {str(k): str(v) for k, v in fields.items() if v} if isinstance(fields, dict) else {}

    async def check_mapping(self) -> None:
        known = await self.lead_fields()
        missing = [f"{code} (mapped to {what})" for what, code in self.mapped().items() if code not in known]
        if missing:
            self._lead_fields = None  # look again next time: it may be created meanwhile
            raise CrmError(
                "Bitrix24 has no lead field " + ", ".join(missing) + ": it was deleted or renamed; fix the mapping"
                " in Settings → CRM, then retry",
                retry=False,
            )

    def _uf(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values = {"start": data.get("preferred_time"), **data}  # a lead's wished time until it is booked
        return {code: values.get(what) for what, code in self.mapped().items() if values.get(what) is not None}

    def _source_id(self, source: str) -> str:
        sources = self.mapping.get("sources") or {}
        chosen = sources.get(source) if isinstance(sources, dict) else None
        return str(chosen or self.mapping.get("default_source") or "WEB")[:50]

    def _comments(self, data: Mapping[str, Any]) -> str:
        parts = [text(data, "summary", 2000), text(data, "comment", 2000), text(data, "notes", 2000)]
        if data.get("preferred_time"):
            parts.append(f"Желаемое время: {data['preferred_time']}")
        admin = text(data, "admin_url", 300)
        if admin:
            parts.append(f"Диалог и заявка: {self.admin_base}{admin}")
        return "\n\n".join(p for p in parts if p)

    def _lead_fields_of(self, data: Mapping[str, Any], origin: str, title: str) -> dict[str, Any]:
        raw_utm = data.get("utm")
        utm: dict[str, Any] = raw_utm if isinstance(raw_utm, dict) else {}
        fields: dict[str, Any] = {
            "TITLE": title[:255],
            "NAME": text(data, "client_name", 50) or None,
            "PHONE": _phone(data.get("phone")),
            "EMAIL": [{"VALUE": data["email"], "VALUE_TYPE": "WORK"}] if data.get("email") else None,
            "SOURCE_ID": self._source_id(text(data, "source", 40)),
            "SOURCE_DESCRIPTION": " · ".join(
                p for p in (f"otklik: {text(data, 'source', 40)}", text(data, "source_detail", 200)) if p
            ),
            "COMMENTS": self._comments(data),
            "ORIGINATOR_ID": "otklik",
            "ORIGIN_ID": origin,
            **{
                f"UTM_{k.upper()}": str(v)[:255]
                for k, v in utm.items()
                if k in ("source", "medium", "campaign", "content", "term") and v
            },
            **self._uf(data),
        }
        if self.mapping.get("responsible_id"):
            fields["ASSIGNED_BY_ID"] = self.mapping["responsible_id"]
        return {k: v for k, v in fields.items() if v is not None}

    async def _find_origin(self, origin: str) -> str | None:
        rows = await self.call(
            "crm.lead.list",
            {"filter": {"ORIGINATOR_ID": "otklik", "ORIGIN_ID": origin}, "select": ["ID", "CONTACT_ID"]},
        )
        return str(rows[0]["ID"]) if isinstance(rows, list) and rows else None

    async def _contact(self, data: Mapping[str, Any]) -> str | None:
        phone = data.get("phone")
        if not phone:
            return None
        found = await self.call(
            "crm.duplicate.findbycomm", {"entity_type": "CONTACT", "type": "PHONE", "values": [phone]}
        )
        ids = found.get("CONTACT") if isinstance(found, dict) else None
        return str(ids[0]) if ids else None

    async def _create(
        self, data: Mapping[str, Any], fields: dict[str, Any], save: Save, todo: dict[str, Any] | None = None
    ) -> Link:
        """The contact (found, or created in the batch), the lead and maybe its to-do, in one `batch`."""
        contact = await self._contact(data)
        commands: dict[str, str] = {}
        if contact is None and data.get("phone"):
            commands["contact"] = command(
                "crm.contact.add",
                {
                    "fields": {
                        "NAME": fields.get("NAME") or "—",
                        "PHONE": fields["PHONE"],
                        "SOURCE_ID": fields["SOURCE_ID"],
                    }
                },
            )
            fields = {**fields, "CONTACT_ID": "$result[contact]"}
        elif contact is not None:
            fields = {**fields, "CONTACT_ID": contact}
        commands["lead"] = command("crm.lead.add", {"fields": fields, "params": {"REGISTER_SONET_EVENT": "Y"}})
        if todo is not None:
            commands["todo"] = command(
                "crm.activity.todo.add", {**todo, "ownerTypeId": OWNER_LEAD, "ownerId": "$result[lead]"}
            )
        done, errors = await self.batch(commands)
        link = Link(
            contact=str(done["contact"]) if done.get("contact") else contact,
            record=str(done["lead"]) if done.get("lead") else None,
            activity=_todo_id(done.get("todo")),
        )
        if link.record:
            await save(link)
        if errors or not link.record:
            shown = "; ".join(f"{k}: {_err(v)}" for k, v in errors.items()) or "no lead id in the answer"
            raise CrmError(f"Bitrix24 batch failed ({shown})", retry=not link.record and not errors)
        return link

    async def lead(self, data: Mapping[str, Any], link: Link | None, save: Save, *, retrying: bool) -> Link:
        if link is not None and link.record:
            return link
        await self.check_mapping()
        origin = f"lead:{data.get('lead_id')}"
        if retrying and (found := await self._find_origin(origin)):
            link = Link(record=found)
            await save(link)
            return link
        title = " · ".join(p for p in (text(data, "client_name", 100), text(data, "service", 100)) if p)
        return await self._create(data, self._lead_fields_of(data, origin, title or "Заявка"), save)

    def _todo(self, event: str, data: Mapping[str, Any]) -> dict[str, Any]:
        lines = [
            f"{STATUS_TEXT.get(event, event)}: {text(data, 'service', 100)}",
            f"Мастер: {text(data, 'staff', 100)}" if data.get("staff") else "",
            f"{text(data, 'start', 40)} — {text(data, 'end', 40)} ({text(data, 'timezone', 40)})",
            f"Клиент: {text(data, 'client_name', 100)} {text(data, 'phone', 20)}".strip(),
            f"{self.admin_base}{text(data, 'admin_url', 300)}" if data.get("admin_url") else "",
        ]
        return {"deadline": text(data, "start", 40), "description": "\n".join(line for line in lines if line)}

    async def booking(
        self, event: str, data: Mapping[str, Any], lead: Link | None, link: Link | None, save: Save, *, retrying: bool
    ) -> Link:
        await self.check_mapping()
        current = link or Link()
        if not current.record and lead is not None and lead.record:
            current = current.but(record=lead.record, contact=lead.contact)
            await save(current)
        origin = f"booking:{data.get('booking_id')}"
        if not current.record and retrying and (found := await self._find_origin(origin)):
            current = current.but(record=found)
            await save(current)
        todo = self._todo(event, data)
        if not current.record:
            title = "Запись: " + " · ".join(
                p for p in (text(data, "client_name", 80), text(data, "service", 80), text(data, "start", 16)) if p
            )
            created = await self._create(data, self._lead_fields_of(data, origin, title), save, todo)
            if event == "booking.created" or event == "booking.confirmed":
                return created
            current = created
        elif not current.activity:
            result = await self.call(
                "crm.activity.todo.add", {**todo, "ownerTypeId": OWNER_LEAD, "ownerId": current.record}
            )
            current = current.but(activity=_todo_id(result))
            await save(current)
        return await self._update(event, data, current, todo)

    async def _update(self, event: str, data: Mapping[str, Any], link: Link, todo: dict[str, Any]) -> Link:
        owner = {"ownerTypeId": OWNER_LEAD, "ownerId": link.record, "id": link.activity}
        fields = self._uf(data)
        statuses = self.mapping.get("statuses") or {}
        status = statuses.get(event.split(".", 1)[1]) if isinstance(statuses, dict) else None
        if event == "booking.cancelled" and not status:
            status = "JUNK"
        if status:
            fields["STATUS_ID"] = str(status)
        commands: dict[str, str] = {}
        if fields:
            commands["lead"] = command("crm.lead.update", {"id": link.record, "fields": fields})
        if link.activity:
            if event == "booking.moved":
                commands["deadline"] = command("crm.activity.todo.updateDeadline", {**owner, "value": todo["deadline"]})
            commands["description"] = command(
                "crm.activity.todo.updateDescription", {**owner, "value": todo["description"]}
            )
        if commands:
            _, errors = await self.batch(commands)
            if errors:
                shown = "; ".join(f"{k}: {_err(v)}" for k, v in errors.items())
                raise CrmError(f"Bitrix24 refused the update of lead {link.record} ({shown})", retry=False)
        return link


def _todo_id(result: Any) -> str | None:
    if isinstance(result, dict) and result.get("id"):
        return str(result["id"])
    return None


def _err(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value.get('error', '')}: {value.get('error_description', '')}"[:200]
    return str(value)[:200]
