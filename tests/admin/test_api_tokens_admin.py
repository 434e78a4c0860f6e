"""Settings → API tokens: owner/admin only, CSRF, the token shown once and only its hash stored, bad input
refused with nothing stored, revoke answers 401 at once, escaped output. SQLite and PostgreSQL."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from otklik.adapters.db.models import ApiToken, EventLog
from otklik.platform.apitokens import digest
from otklik.platform.users import Role

PAGE = "/admin/settings/api-tokens"


async def _tokens(otklik) -> list[ApiToken]:  # type: ignore[no-untyped-def]
    async with otklik.db.read() as session:
        return list((await session.execute(select(ApiToken).order_by(ApiToken.id))).scalars())


async def test_create_use_and_revoke(as_role, otklik, app) -> None:  # type: ignore[no-untyped-def]
    owner = await as_role(Role.OWNER)
    page = await owner.http.get(PAGE)
    assert page.status_code == 200 and 'value="contacts.erase"' in page.text and 'value="orders.read"' in page.text
    made = await owner.http.post(
        PAGE, data={"csrf_token": owner.csrf, "name": "n8n", "scope": ["contacts.read", "conversations.write"],
                    "scopes": "flows.read"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    token = re.search(r'data-testid="new-token">([^<]+)<', made.text).group(1)
    [row] = await _tokens(otklik)
    assert row.scopes == "contacts.read,conversations.write,flows.read" and row.token_hash == digest(token)
    assert token not in (await owner.http.get(PAGE)).text
    async with otklik.db.read() as session:
        audit = await session.scalar(select(EventLog).where(EventLog.kind == "api_token.create"))
    assert audit is not None and token not in str(audit.data) and audit.actor.endswith("owner")
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/api/v1/contacts", headers=auth)).status_code == 200
    revoked = await owner.post(f"{PAGE}/{row.id}/revoke")
    assert revoked.status_code == 303
    assert (await api.get("/api/v1/contacts", headers=auth)).status_code == 401
    assert (await owner.post(f"{PAGE}/{row.id}/revoke")).status_code == 303  # twice: harmless
    assert (await owner.post(f"{PAGE}/999999/revoke")).status_code == 404
    assert (await owner.post(f"{PAGE}/99999999999999999999/revoke")).status_code == 422


async def test_refusals_roles_and_csrf(as_role, otklik) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    for fields, words in (
        ({"name": "", "scopes": "contacts.read"}, "name"),
        ({"name": "<script>alert(1)</script>", "scopes": "contacts.read"}, "name"),
        ({"name": "x" * 81, "scopes": "contacts.read"}, "name"),
        ({"name": "ok", "scopes": ""}, "scopes"),
        ({"name": "ok", "scopes": "Contacts Read"}, "scopes"),
        ({"name": "ok", "scopes": ",".join(f"s{i}" for i in range(200))}, "too many"),
    ):
        refused = await admin.post(PAGE, fields)
        assert refused.status_code == 422 and words in refused.text, (fields, refused.text[:200])
        assert "<script>alert(1)</script>" not in refused.text
    assert (await admin.post(PAGE, {"name": "dup", "scopes": "orders.read"})).status_code == 201
    assert (await admin.post(PAGE, {"name": "dup", "scopes": "orders.read"})).status_code == 409
    assert [t.name for t in await _tokens(otklik)] == ["dup"]
    no_csrf = await admin.http.post(PAGE, data={"name": "x", "scopes": "orders.read"})
    assert no_csrf.status_code == 403
    for role in (Role.OPERATOR, Role.ANALYST, Role.MODERATOR):
        other = await as_role(role)
        assert (await other.http.get(PAGE)).status_code == 403
        assert (await other.post(PAGE, {"name": "sneaky", "scopes": "contacts.erase"})).status_code == 403
    assert [t.name for t in await _tokens(otklik)] == ["dup"]
