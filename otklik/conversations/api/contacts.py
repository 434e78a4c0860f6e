"""`/api/v1/contacts`: list, get, update fields and tags, export, erase (docs/api.md "Contacts").

Scopes: `contacts.read` (list, get, export), `contacts.write` (update), `contacts.erase` (erase: a separate
scope, so a token that syncs a CRM cannot erase people by mistake).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from otklik.adapters.db.models import Contact, ContactTag
from otklik.clock import utcnow
from otklik.conversations import people
from otklik.conversations.api.common import actor_of, answer, ctx_of
from otklik.conversations.tags import add_tag, clean_tag, remove_tag
from otklik.core.errors import InvalidInput
from otklik.platform.apitokens import ApiCaller, require_scope
from otklik.platform.audit import audit
from otklik.platform.restapi import (
    ApiError,
    check_query,
    decode_cursor,
    error_responses,
    idempotent,
    page,
    page_limit,
    read_json,
)
from otklik.platform.webkit.params import PathId

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])

FIELD_KEY = re.compile(r"[a-z_][a-z0-9_]{0,39}")
RESERVED_KEYS = frozenset({"first_name", "language", "tags"})  # what flows already read from the contact
MAX_FIELDS = 50
MAX_FIELD_VALUE = 1000
MAX_TAG_CHANGES = 50

CONTACT_EXAMPLE = {
    "id": 17,
    "display_name": "Ana Pérez",
    "language": "es",
    "subscribed": True,
    "reachable": True,
    "tags": ["vip"],
    "fields": {"city": "Córdoba", "crm_id": "C-2291"},
    "created_at": "2026-12-01T14:03:11.000Z",
    "last_seen_at": "2026-12-05T09:12:40.120Z",
}


def _json(example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


@router.get(
    "",
    summary="List contacts, newest first",
    responses={200: _json({"data": [CONTACT_EXAMPLE], "next_cursor": "Y29udGFjdHM6MTc"}, "a page of contacts")}
    | error_responses(401, 403, 422, 429),
)
async def list_contacts(
    request: Request,
    limit: int | None = Query(None, ge=1, le=200, description="1-200, default 50"),
    cursor: str | None = Query(None, max_length=64, description="next_cursor of the previous page"),
    tag: str | None = Query(None, max_length=64, description="only contacts with this tag"),
    _caller: ApiCaller = Depends(require_scope("contacts.read")),
) -> JSONResponse:
    check_query(request, ("limit", "cursor", "tag"))
    size = page_limit(limit)
    after = decode_cursor("contacts", cursor)
    query = select(Contact).order_by(Contact.id.desc()).limit(size + 1)
    if after is not None:
        query = query.where(Contact.id < after)
    if tag is not None:
        try:
            wanted = clean_tag(tag)
        except InvalidInput as exc:
            raise ApiError(422, "tag", f"tag: {exc.user_message}") from None
        query = query.where(Contact.id.in_(select(ContactTag.contact_id).where(ContactTag.tag == wanted)))
    async with ctx_of(request).db.read() as session:
        rows = list((await session.execute(query)).scalars().all())
    items = [people.contact_view(r) for r in rows[:size]]
    return answer(page("contacts", items, size, len(rows) > size))


@router.get(
    "/{contact_id}",
    summary="A contact, with its channel identities",
    responses={
        200: _json(
            CONTACT_EXAMPLE
            | {
                "identities": [
                    {
                        "channel": "telegram",
                        "channel_account_id": 2,
                        "external_id": "381920311",
                        "created_at": "2026-12-01T14:03:11.000Z",
                    }
                ]
            },
            "the contact",
        )
    }
    | error_responses(401, 403, 404, 429),
)
async def get_contact(
    request: Request, contact_id: PathId, _caller: ApiCaller = Depends(require_scope("contacts.read"))
) -> JSONResponse:
    check_query(request, ())
    async with ctx_of(request).db.read() as session:
        row = await session.get(Contact, contact_id)
        if row is None:
            raise ApiError(404, "not_found", f"no contact {contact_id}")
        return answer(people.contact_view(row, await people.identities_of(session, contact_id)))


def _fields(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ApiError(422, "fields", 'fields: an object like {"city": "Córdoba"} (null removes a field)')
    if len(raw) > MAX_FIELDS:
        raise ApiError(422, "fields", f"fields: at most {MAX_FIELDS} at once")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not FIELD_KEY.fullmatch(str(key)) or key in RESERVED_KEYS:
            raise ApiError(
                422,
                "fields",
                f"fields: {str(key)[:40]!r} is not a field name (a-z, 0-9, _; not first_name, language, tags)",
            )
        if value is not None and (
            isinstance(value, dict | list) or (isinstance(value, str) and len(value) > MAX_FIELD_VALUE)
        ):
            raise ApiError(
                422,
                "fields",
                f"fields.{key}: a string of at most {MAX_FIELD_VALUE} characters, a number, true/false or null",
            )
        if isinstance(value, str) and not value.replace("\n", " ").isprintable():
            raise ApiError(422, "fields", f"fields.{key}: no control characters")
        out[str(key)] = str(value) if value is not None and not isinstance(value, bool | int | str) else value
    return out


def _tag_list(raw: Any, name: str) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_TAG_CHANGES or not all(isinstance(t, str) for t in raw):
        raise ApiError(422, "tags", f"tags.{name}: a list of at most {MAX_TAG_CHANGES} tags")
    try:
        return [clean_tag(t) for t in raw]
    except InvalidInput as exc:
        raise ApiError(422, "tags", f"tags.{name}: {exc.user_message}") from None


@router.patch(
    "/{contact_id}",
    summary="Update a contact's fields and tags",
    description=(
        "Fields are merged (`null` removes one); tags are added and removed. Every change is audited as "
        "`contact.update` by `api:<token name>`."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "example": {
                        "fields": {"crm_id": "C-2291", "city": None},
                        "tags": {"add": ["vip"], "remove": ["lead"]},
                    }
                }
            },
        }
    },
    responses={200: _json(CONTACT_EXAMPLE, "the contact after the change")}
    | error_responses(401, 403, 404, 413, 422, 429),
)
async def update_contact(
    request: Request, contact_id: PathId, caller: ApiCaller = Depends(require_scope("contacts.write"))
) -> JSONResponse:
    check_query(request, ())
    data = await read_json(request, ("fields", "tags", "display_name", "language"))
    fields = _fields(data["fields"]) if data.get("fields") is not None else {}
    tags = data.get("tags")
    if tags is not None and (not isinstance(tags, dict) or set(tags) - {"add", "remove"}):
        raise ApiError(422, "tags", 'tags: an object like {"add": ["vip"], "remove": ["lead"]}')
    add = _tag_list((tags or {}).get("add"), "add")
    remove = _tag_list((tags or {}).get("remove"), "remove")
    name = data.get("display_name")
    if name is not None and (not isinstance(name, str) or len(name) > 200 or not name.isprintable()):
        raise ApiError(422, "display_name", "display_name: at most 200 printable characters")
    language = data.get("language")
    if language is not None and (
        not isinstance(language, str) or not re.fullmatch(r"[a-z]{2}(-[A-Za-z]{2})?", language)
    ):
        raise ApiError(422, "language", "language: a code like es or ru")
    now = utcnow()
    ctx = ctx_of(request)
    async with ctx.db.write() as session:
        row = await session.get(Contact, contact_id)
        if row is None:
            raise ApiError(404, "not_found", f"no contact {contact_id}")
        if fields:
            merged = {**(row.fields or {}), **fields}
            merged = {k: v for k, v in merged.items() if v is not None}
            if len(merged) > MAX_FIELDS:
                raise ApiError(422, "fields", f"fields: a contact keeps at most {MAX_FIELDS}")
            row.fields = merged
        if name is not None:
            row.display_name = name.strip()
        if language is not None:
            row.language = language
        await session.flush()
        for tag in add:
            await add_tag(session, contact_id, tag, now)
        for tag in remove:
            await remove_tag(session, contact_id, tag)
        audit(session, actor_of(caller), "contact.update", "contact", contact_id,
              {"fields": sorted(fields), "add": add, "remove": remove}, now=now)  # fmt: skip
        await session.flush()
        await session.refresh(row)
        return answer(people.contact_view(row))


@router.get(
    "/{contact_id}/export",
    summary="Everything held about a contact (a personal-data request)",
    responses={
        200: _json(
            {
                "contact": CONTACT_EXAMPLE,
                "conversations": [{"id": 40, "channel_account_id": 2, "status": "closed", "messages": []}],
                "events": [],
            },
            "the contact, its conversations with every message, their event log",
        )
    }
    | error_responses(401, 403, 404, 429),
)
async def export_contact(
    request: Request, contact_id: PathId, _caller: ApiCaller = Depends(require_scope("contacts.read"))
) -> JSONResponse:
    check_query(request, ())
    async with ctx_of(request).db.read() as session:
        data = await people.export(session, contact_id)  # NotFound: 404 in the error shape
    return answer(data)


@router.post(
    "/{contact_id}/erase",
    summary="Erase a contact's personal data (a personal-data request)",
    description=(
        "Empties the texts, payloads and files of every message of the contact's conversations, the contact's "
        "name, fields and tags, and the channel ids of the person; keeps the rows the numbers are counted from. "
        "Cannot be undone. Idempotent: erasing twice answers the same. Scope `contacts.erase`."
    ),
    responses={
        200: _json(
            {
                "id": 17,
                "erased": True,
                "conversations": 2,
                "messages": 31,
                "identities": 1,
                "media": 1,
                "webhook_events": 4,
            },
            "erased",
        )
    }
    | error_responses(401, 403, 404, 409, 422, 429),
)
async def erase_contact(
    request: Request, contact_id: PathId, caller: ApiCaller = Depends(require_scope("contacts.erase"))
) -> JSONResponse:
    check_query(request, ())
    await read_json(request, ())

    async def run() -> JSONResponse:
        ctx = ctx_of(request)
        now = utcnow()
        async with ctx.db.write() as session:
            counts, media = await people.erase(
                session, contact_id, actor=actor_of(caller), now=now, erasers=ctx.erasers
            )
        counts["media"] = people.delete_media(ctx.media, media)
        body: dict[str, Any] = {"id": contact_id, "erased": True, **counts}
        return answer(body)

    return await idempotent(request, caller.token_id, run)
