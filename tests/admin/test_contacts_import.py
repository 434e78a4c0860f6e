"""`/admin/contacts/import`: upload → the dry-run report (nothing written) → "Import" applies exactly that
file by its sha256; owner/admin only, CSRF, hostile files refused with a clear message, output escaped.
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
from sqlalchemy import func, select

from otklik.adapters.db.models import Contact, EventLog
from otklik.bootstrap import Otklik
from otklik.conversations import contact_import
from otklik.platform.users import Role
from tests.fixtures.admin import Admin

PAGE = "/admin/contacts/import"
CSV = b"phone;name;note\n+7 917 123-45-67;<b>Ivan</b>;=cmd|x\n8 916 111 22 33;Petr;\nbad;x;\n"


async def _upload(admin: Admin, data: bytes, **fields: str) -> httpx.Response:
    return await admin.http.post(PAGE, data={"csrf_token": admin.csrf, **fields}, files={"file": ("c.csv", data)})


def _confirm_fields(page: str) -> dict[str, str]:
    form = re.search(r'data-testid="confirm-form">(.*?)</form>', page, re.S)
    assert form is not None, "no confirm form on the page"
    return {k: v for k, v in re.findall(r'name="([a-z_0-9]+)" value="([^"]*)"', form.group(1)) if k != "csrf_token"}


def _counts(page: str) -> dict[str, int]:
    found = re.search(r'data-testid="counts" ([^>]*)>', page)
    assert found is not None
    return {k: int(v) for k, v in re.findall(r'data-([a-z]+)="(\d+)"', found.group(1))}


async def _count(otklik: Otklik, model: Any = Contact) -> int:
    async with otklik.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_preview_then_import_exactly_that_file(otklik: Otklik, as_role) -> None:  # type: ignore[no-untyped-def]
    admin = await as_role(Role.ADMIN)
    assert (await admin.http.get(PAGE)).status_code == 200
    page = await _upload(admin, CSV, region="RU", tag="Spring")
    assert page.status_code == 200, page.text[-500:]
    assert _counts(page.text) == {"read": 3, "created": 2, "updated": 0, "skipped": 1}
    assert 'data-row="4"' in page.text and "bad phone for region RU" in page.text
    assert "<b>Ivan</b>" not in page.text  # nothing of the file unescaped (and names are not listed at all)
    assert await _count(otklik) == 0  # a preview writes nothing
    fields = _confirm_fields(page.text)
    assert fields == {"sha256": hashlib.sha256(CSV).hexdigest(), "filename": "c.csv", "region": "RU", "tag": "Spring"}
    done = await admin.post(PAGE + "/confirm", fields)
    assert done.status_code == 200 and 'data-testid="done"' in done.text, done.text[-500:]
    assert _counts(done.text) == {"read": 3, "created": 2, "updated": 0, "skipped": 1}
    async with otklik.db.read() as session:
        rows = (await session.execute(select(Contact).order_by(Contact.id))).scalars().all()
        [entry] = (await session.execute(select(EventLog).where(EventLog.kind == "contacts.import"))).scalars()
    assert [(c.fields["phone"], c.display_name, c.tags["list"]) for c in rows] == [
        ("+79171234567", "<b>Ivan</b>", ["spring"]), ("+79161112233", "Petr", ["spring"])]  # fmt: skip
    assert rows[0].fields["note"] == "'=cmd|x"
    assert entry.actor == f"user:{admin.login}"
    assert entry.data["sha256"] == fields["sha256"] and entry.data["created"] == 2
    again = await admin.post(PAGE + "/confirm", fields)  # the same file again updates, never duplicates
    assert _counts(again.text)["updated"] == 2 and await _count(otklik) == 2


async def test_roles_csrf_and_hostile_input(otklik: Otklik, as_role, anon, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert (await anon.get(PAGE)).status_code in (302, 303, 401)
    for role in (Role.OPERATOR, Role.ANALYST):
        other = await as_role(role)
        assert (await other.http.get(PAGE)).status_code == 403
        assert (await _upload(other, CSV, region="RU")).status_code == 403
    owner = await as_role(Role.OWNER)
    no_csrf = await owner.http.post(PAGE, files={"file": ("c.csv", CSV)})
    assert no_csrf.status_code == 403
    cases = [
        (b"", 422, "empty"),
        (b"name\nIvan\n", 422, "no `phone` column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", 422, "not UTF-8"),
    ]
    for data, status, message in cases:
        response = await _upload(owner, data, region="RU")
        assert response.status_code == status and message in response.text, (data, response.status_code)
    bad_region = await _upload(owner, CSV, region="<x>")
    assert bad_region.status_code == 422 and "unknown phone region" in bad_region.text and "<x>" not in bad_region.text
    no_file = await owner.http.post(PAGE, data={"csrf_token": owner.csrf, "region": "RU"})
    assert no_file.status_code == 422 and "choose a CSV file" in no_file.text
    monkeypatch.setattr(contact_import, "MAX_BYTES", 1000)
    big = await _upload(owner, b"phone\n" + b"1" * 1000, region="RU")
    assert big.status_code == 413 and "larger than" in big.text
    fields = _confirm_fields((await _upload(owner, CSV, region="RU")).text)
    for changed, status in [({"sha256": "f" * 64}, 410), ({"sha256": "../../etc/passwd"}, 422)]:
        response = await owner.post(PAGE + "/confirm", {**fields, **changed})
        assert response.status_code == status, (changed, response.status_code)
    async with otklik.db.read() as session:
        audited = (await session.execute(select(func.count()).where(EventLog.kind == "contacts.import"))).scalar_one()
    assert await _count(otklik) == 0 and audited == 0
